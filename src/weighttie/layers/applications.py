"""The layers ``keras.applications`` defines for its models, as tf_keras saves them
(class names without a module): ConvNeXt's ``LayerScale`` and InceptionResNetV2's
``CustomScaleLayer``.

A rule accepts exactly that layer's config keys, so a custom layer of the same name
and other arguments stays unknown. Both are element-wise: no MAC rule (docs/cost.md
lists the models whose totals leave them out).
"""

from __future__ import annotations

from weighttie.layers.layer_class import NONE, UNKNOWN, LayerClass
from weighttie.layers.shapes import ShapeCall, Shapes, int_of
from weighttie.layers.unsure import Unsure

__all__ = ["CLASSES"]

#: Config keys every serialized layer may carry besides its own arguments.
_BASE_KEYS = frozenset({"name", "trainable", "dtype"})


def _application_layer(call: ShapeCall, keys: frozenset[str]) -> None:
    """A layer keras.applications defines: accepted only with exactly these config keys."""
    if set(call.config) - _BASE_KEYS != keys:
        raise Unsure


def _layer_scale(call: ShapeCall) -> Shapes:
    """``x * gamma``, gamma of shape ``(projection_dim,)``."""
    _application_layer(call, frozenset({"init_values", "projection_dim"}))
    shape = call.x
    if not shape or shape[-1] != int_of(call.config["projection_dim"], 1):
        raise Unsure
    return (shape,)


def _custom_scale(call: ShapeCall) -> Shapes:
    """``inputs[0] + inputs[1] * scale``."""
    _application_layer(call, frozenset({"scale"}))
    if len(call.shapes) != 2 or call.shapes[0] is None or call.shapes[0] != call.shapes[1]:
        raise Unsure
    return (call.shapes[0],)


CLASSES = (
    # its gamma is not tabled: numbered
    LayerClass("LayerScale", _layer_scale, UNKNOWN, UNKNOWN, NONE),
    # as tf_keras registers it too: Custom>CustomScaleLayer
    LayerClass(
        "CustomScaleLayer", _custom_scale, UNKNOWN, NONE, NONE, ("Custom>CustomScaleLayer",)
    ),
)
