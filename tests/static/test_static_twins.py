"""The same findings from a model's ``.keras`` file and from its Keras 2 ``.h5``.

Each builder takes the Keras module (Keras 3, or tf_keras for the ``.h5``) and builds
the same model with it; the findings read statically from either file must equal
those of live :func:`weighttie.analyze` on the Keras 3 model. ``twin-branches``
compares layer configs without names, so the static reader must give every layer it
lists a config: the legacy reader once gave none, and every twin was missed in
``.h5`` files (regression test). A sublayer the weights file shows (an LSTM's cell,
a Bidirectional's forward and backward layers) is given the config its parent's
config holds for it, and Keras 2 weight names are nested as deep as they go
(``bi/forward_gru/gru_cell/kernel``), as Keras 3 files nest them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pytest

import weighttie
from weighttie.report import Report
from weighttie.static import read_report


def _tower(k: Any, name: str, recurrent: bool = False) -> Any:
    if recurrent:
        x = k.Input((5, 3), name=f"{name}_in")
        y = k.layers.LSTM(4, name=f"{name}_lstm")(x)
    else:
        x = k.Input((8,), name=f"{name}_in")
        y = k.layers.Dense(4, activation="relu", name=f"{name}_hidden")(x)
    return k.Model(x, k.layers.Dense(2, name=f"{name}_out")(y), name=name)


def siamese_built_twice(k: Any, recurrent: bool = False) -> Any:
    """Two towers of one config built separately, each on its own input."""
    shape = (5, 3) if recurrent else (8,)
    left, right = k.Input(shape, name="left"), k.Input(shape, name="right")
    a, b = _tower(k, "tower_a", recurrent), _tower(k, "tower_b", recurrent)
    merged = k.layers.Concatenate(name="merge")([a(left), b(right)])
    return k.Model([left, right], k.layers.Dense(1, name="score")(merged))


def ensemble(k: Any, count: int, same_input: bool) -> Any:
    """``count`` identical sub-models built separately, outputs averaged."""
    towers = [_tower(k, f"member_{i}") for i in range(count)]
    if same_input:
        x = k.Input((8,), name="x")
        inputs, outputs = [x], [t(x) for t in towers]
    else:
        inputs = [k.Input((8,), name=f"x{i}") for i in range(count)]
        outputs = [t(x) for t, x in zip(towers, inputs, strict=True)]
    return k.Model(inputs, k.layers.Average(name="mean")(outputs))


def nested_twins(k: Any) -> Any:
    """A nested model holding a pair of twin towers, itself called once by the outer model."""
    x = k.Input((8,), name="inner_x")
    merged = k.layers.Add(name="sum")([_tower(k, "twin_a")(x), _tower(k, "twin_b")(x)])
    inner = k.Model(x, merged, name="pair")
    outer_x = k.Input((8,), name="x")
    return k.Model(outer_x, k.layers.Dense(1, name="head")(inner(outer_x)))


def sequential_twins(k: Any) -> Any:
    """Two Sequential towers (Conv, BatchNormalization, pooling, Dense) built separately."""

    def tower(name: str) -> Any:
        return k.Sequential(
            [
                k.Input((8, 8, 3)),
                k.layers.Conv2D(4, 3, name=f"{name}_conv"),
                k.layers.BatchNormalization(name=f"{name}_bn"),
                k.layers.GlobalAveragePooling2D(name=f"{name}_pool"),
                k.layers.Dense(2, name=f"{name}_out"),
            ],
            name=name,
        )

    left, right = k.Input((8, 8, 3), name="left"), k.Input((8, 8, 3), name="right")
    merged = k.layers.Subtract(name="diff")([tower("seq_a")(left), tower("seq_b")(right)])
    return k.Model([left, right], merged)


def bidirectional_twins(k: Any) -> Any:
    """Two Bidirectional GRU layers of one config on two inputs (sublayers in the weights)."""
    left, right = k.Input((5, 3), name="left"), k.Input((5, 3), name="right")
    # named: the names Keras and tf_keras count up differ within one process
    a = k.layers.Bidirectional(k.layers.GRU(4, name="gru_a"), name="bi_a")(left)
    b = k.layers.Bidirectional(k.layers.GRU(4, name="gru_b"), name="bi_b")(right)
    return k.Model([left, right], k.layers.Concatenate(name="merge")([a, b]))


def shared_tower(k: Any) -> Any:
    """One tower called on both inputs: shared, not twins (no finding)."""
    left, right = k.Input((8,), name="left"), k.Input((8,), name="right")
    tower = _tower(k, "tower")
    return k.Model([left, right], k.layers.Concatenate(name="merge")([tower(left), tower(right)]))


def different_towers(k: Any) -> Any:
    """Two towers whose configs differ (activation): not twins (no finding)."""
    x = k.Input((8,), name="x")
    a = _tower(k, "tower_a")
    y = k.Input((8,), name="b_in")
    b = k.Model(y, k.layers.Dense(2, name="b_out")(k.layers.Dense(4, name="b_hidden")(y)))
    return k.Model(x, k.layers.Average(name="mean")([a(x), b(x)]))


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "siamese-built-twice": siamese_built_twice,
    "siamese-lstm-built-twice": lambda k: siamese_built_twice(k, recurrent=True),
    "ensemble-of-2": lambda k: ensemble(k, 2, same_input=True),
    "ensemble-of-3": lambda k: ensemble(k, 3, same_input=True),
    "ensemble-of-3-own-inputs": lambda k: ensemble(k, 3, same_input=False),
    "nested-twins": nested_twins,
    "sequential-twins": sequential_twins,
    "bidirectional-twins": bidirectional_twins,
    "shared-tower": shared_tower,
    "different-towers": different_towers,
}


def _findings(report: Report) -> list[tuple[str, tuple[str, ...], int]]:
    return [(f.kind.value, f.layers, f.params) for f in report.findings]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_keras_and_h5_files_give_the_live_findings(name: str, tmp_path: Path) -> None:
    k2 = pytest.importorskip("tf_keras")
    model = BUILDERS[name](keras)
    model.save(tmp_path / "m.keras")
    legacy = BUILDERS[name](k2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5 file")
        legacy.save(tmp_path / "m.h5")
    live = _findings(weighttie.analyze(model))
    assert _findings(read_report(tmp_path / "m.keras")) == live
    assert _findings(read_report(tmp_path / "m.h5")) == live
    twins = [layers for kind, layers, _ in live if kind == "twin-branches"]
    expected = {"shared-tower": 0, "different-towers": 0, "bidirectional-twins": 2}
    assert len(twins) == expected.get(name, 1)
