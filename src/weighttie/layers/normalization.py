"""Normalization: batch, layer, group, unit and RMS normalization (shape-preserving
once the axis is valid; 0 MACs, docs/cost.md), tf_keras's ``SyncBatchNormalization``,
and ``SpectralNormalization``, which wraps a layer and holds its kernel as its own.

BatchNormalization's moving statistics are created non-trainable, whatever the
config says; so is SpectralNormalization's ``vector_u``.
"""

from __future__ import annotations

from typing import Any

from weighttie.layers.layer_class import NONE, UNKNOWN, LayerClass, Sublayers, Variables, weightless
from weighttie.layers.shapes import (
    Config,
    ShapeCall,
    ShapeRule,
    Shapes,
    apply_inner,
    axes_of,
    single,
    wrapped_layer,
)
from weighttie.report import Shape

__all__ = ["CLASSES"]


def _normalization(default_axis: int | None) -> ShapeRule:
    """Shape-preserving, once the configured axis is valid for the input."""

    def compute(config: Config, shape: Shape) -> Shape:
        value = config.get("axis", default_axis)
        if value is not None:
            axes_of(value, len(shape))
        return shape

    return single(compute)


def _spectral_normalization(call: ShapeCall) -> Shapes:
    class_name, config = wrapped_layer(call)
    return apply_inner(call, class_name, config, (call.x,))


def _gamma_beta(config: dict[str, Any]) -> list[str]:
    names = []
    if config.get("scale", True):
        names.append("gamma")
    if config.get("center", True):
        names.append("beta")
    return names


def _batch_norm_names(config: dict[str, Any]) -> list[str]:
    names = [*_gamma_beta(config), "moving_mean", "moving_variance"]
    renorm = ["moving_stddev", "renorm_mean", "renorm_stddev"] if config.get("renorm") else []
    return names + renorm


def _spectral_names(config: dict[str, Any]) -> list[str]:
    layer = config.get("layer")
    wrapped = layer.get("class_name") if isinstance(layer, dict) else None
    return ["embeddings" if wrapped == "Embedding" else "kernel", "vector_u"]


#: Statistics batch normalization creates non-trainable (Keras 3 and tf_keras).
_STATISTICS = frozenset(
    {"moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev"}
)

CLASSES = (
    LayerClass(
        "BatchNormalization",
        shapes=_normalization(-1),
        macs=0,
        variables=Variables(_batch_norm_names, non_trainable=_STATISTICS),
        sublayers=NONE,
    ),
    LayerClass(
        "SyncBatchNormalization",  # tf_keras
        shapes=UNKNOWN,
        macs=UNKNOWN,
        variables=Variables(_batch_norm_names, non_trainable=_STATISTICS),
        sublayers=NONE,
    ),
    LayerClass("LayerNormalization", _normalization(-1), 0, Variables(_gamma_beta), NONE),
    LayerClass("GroupNormalization", _normalization(-1), 0, Variables(_gamma_beta), NONE),
    weightless("UnitNormalization", _normalization(-1), 0),
    LayerClass(
        "RMSNormalization",  # keras_hub's class of the same name holds the same variable
        shapes=_normalization(-1),
        macs=0,
        variables=Variables(None, by_count={1: ("scale",)}),
        sublayers=NONE,
    ),
    LayerClass(
        "SpectralNormalization",
        shapes=_spectral_normalization,
        macs=UNKNOWN,
        variables=Variables(_spectral_names, non_trainable=frozenset({"vector_u"})),
        sublayers=Sublayers(
            runs_once=True, given="layer", held=frozenset({"kernel", "embeddings"})
        ),
    ),
)
