"""keras_hub's layers (weighttie.layers.keras_hub): the names a graphless file's groups
give their variables, against keras_hub's own layers; which classes a layers list's
group names stand for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from weighttie.layers import (
    CATALOGUE,
    graphless_classes,
    hub_variable_names,
    is_builtin,
    keras_hub,
)
from weighttie.layers.layer_class import Sublayers


def _hub_layers() -> dict[str, tuple[Callable[[], Any], tuple[int | None, ...]]]:
    hub = pytest.importorskip("keras_hub")
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

    layers = hub.layers
    return {
        "PositionEmbedding": (lambda: layers.PositionEmbedding(sequence_length=4), (None, 4, 3)),
        "T5LayerNorm": (T5LayerNorm, (None, 3)),
        "RMSNormalization": (lambda: layers.RMSNormalization(input_dim=3), (None, 3)),
        "ReversibleEmbedding": (lambda: layers.ReversibleEmbedding(10, 4), (None, 3)),
        "ReversibleEmbedding-untied": (
            lambda: layers.ReversibleEmbedding(10, 4, tie_weights=False),
            (None, 3),
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "PositionEmbedding",
        "T5LayerNorm",
        "RMSNormalization",
        "ReversibleEmbedding",
        "ReversibleEmbedding-untied",
    ],
)
def test_names_by_count_are_keras_hubs(name: str) -> None:
    """A graphless file gives a layer's variables and its group's class, no config: the
    names by count are those keras_hub's layer gives them."""
    make, shape = _hub_layers()[name]
    layer = make()
    layer.build(shape)
    names = [v.name for v in layer.weights]
    assert hub_variable_names(type(layer).__name__, {}, len(names)) == names


def test_keras_hub_classes_are_not_keras_builtins() -> None:
    """keras_hub's blocks run their sublayers by their own code: a Keras 2 entry of such a
    name is no Keras layer."""
    for entry in keras_hub.CLASSES:
        assert CATALOGUE[entry.name].package == "keras_hub"
        assert not is_builtin({"class_name": entry.name})
        assert isinstance(entry.sublayers, Sublayers) and not entry.sublayers.runs_once


def test_layers_lists_name_known_classes() -> None:
    """Every class a graphless layers list can name is catalogued, once."""
    names = graphless_classes()
    assert len(names) == len(set(names))
    assert set(names) <= set(CATALOGUE)
    assert set(keras_hub.LISTED_KERAS_CLASSES) <= set(names)
