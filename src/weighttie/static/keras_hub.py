"""What a graphless model's file tells about its layers: keras_hub models and other
subclassed models, whose ``config.json`` holds constructor arguments, not a graph.

The weights file is then the only map of the model: every saveable group holds a
layer's variables (shape, dtype) and, in ``vars``' ``name`` attribute, the layer's
name. A model's ``layers`` list is saved under the snake-cased class name of each
layer (``reversible_embedding``, ``transformer_decoder_1``); where that name is a
class the layer catalogue lists for it (:mod:`weighttie.layers.keras_hub`), or one
the config names (a task's ``backbone``), the layer's class is known, and with it
its variables' names (:func:`weighttie.layers.hub_variable_names`) and which are
trainable. A list a layer keeps (``stages_list``: a group without ``vars``) saves its
members the same way, under their classes' names. Sublayers kept as attributes
(``_self_attention_layer``) are saved under the attribute's name, which does not say
their class, unless the catalogue's entry of their parent's class names it
(a convolution block's ``bn1`` is a BatchNormalization).

What the file cannot tell is said, never guessed: which layer calls which, and how
many times (uses and per-use counts are unknown), and the class of a layer whose
group name is no known class (``?``, variables numbered).

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from weighttie.layers import UNKNOWN_CLASS, graphless_classes

__all__ = ["GraphlessConfig", "graphless_notes", "snake_case"]

_SUFFIX = re.compile(r"_\d+$")


def snake_case(name: str) -> str:
    """The group name Keras gives a layer of class ``name`` (``keras.src.utils.naming``).

    Example:
        >>> snake_case("GPT2Backbone"), snake_case("ReversibleEmbedding")
        ('gpt2_backbone', 'reversible_embedding')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: The classes a layers list's group names can stand for (:mod:`weighttie.layers.keras_hub`).
_BY_SNAKE = {snake_case(name): name for name in graphless_classes()}


class GraphlessConfig:
    """What a graphless model's config says: the classes it names (a task's
    backbone), whether they are trainable, and the ties it declares."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.classes: dict[str, tuple[str, bool]] = {}  # snake name → (class, trainable)
        self.ties: list[str] = []
        for where, entry in _entries(config, 0):
            class_name = entry["class_name"]
            inner = entry["config"]
            trainable = inner.get("trainable", True) is not False
            self.classes.setdefault(snake_case(class_name), (class_name, trainable))
            for key, value in sorted(inner.items()):
                if key.startswith("tie_") and value is True:
                    at = f" (its {where})" if where else ""
                    self.ties.append(f"the config of {class_name}{at} declares {key}=true")

    def layer_class(self, key: str) -> tuple[str, bool]:
        """The class (and trainable flag, from the config) of a layer saved under ``key``."""
        for name in (key, _SUFFIX.sub("", key)):
            if name in self.classes:
                return self.classes[name]
            if name in _BY_SNAKE:
                return _BY_SNAKE[name], True
        return UNKNOWN_CLASS, True


def _entries(entry: Any, depth: int, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The serialized objects (``class_name`` and ``config``) of a config, nested ones
    included (a task's ``backbone``), two levels deep at most."""
    if not isinstance(entry, dict):
        return
    inner = entry.get("config")
    if not isinstance(entry.get("class_name"), str) or not isinstance(inner, dict):
        return
    yield where, entry
    if depth < 2:
        for key, value in sorted(inner.items()):
            yield from _entries(value, depth + 1, key)


def graphless_notes(class_name: str, unknown_classes: int, ties: list[str]) -> tuple[str, ...]:
    """The notes of a static report of a graphless model: what its file cannot tell."""
    notes = [
        f"{class_name}'s config holds constructor arguments, not a graph: which "
        "layers call which, and how many times, is not in the file, so uses and "
        "per-use counts are unknown (--load on a .keras file counts them through Keras)"
    ]
    if unknown_classes:
        notes.append(
            f"{unknown_classes} layer{'s' if unknown_classes != 1 else ''} holding "
            "variables are saved under attribute names that do not say their class "
            "(shown as ?): their variables are numbered and counted as trainable"
        )
    notes += [
        f"{tie}: tied weights are stored once, so the weights file shows neither the tie "
        "nor which calls share them"
        for tie in ties
    ]
    return tuple(notes)
