"""Convolutions 1D/2D/3D, their transposes, ``SeparableConv1D/2D`` and
``DepthwiseConv1D/2D``: padding valid/same/causal, strides, dilation, channels
first/last, ``output_padding``.

MACs: every kernel tap at every output position (a transposed convolution: every
input position scatters the whole kernel), ``groups`` included, since the kernel
holds ``in / groups`` inputs. Positions do not depend on ``data_format``
(:func:`~weighttie.layers.macs.positions`).
"""

from __future__ import annotations

from typing import Any

from weighttie.layers.layer_class import NONE, LayerClass, Variables
from weighttie.layers.macs import MacCall, MacRule, PerExample, known_shape, positions, roles
from weighttie.layers.shapes import (
    CONV_PADDING,
    Config,
    ShapeRule,
    int_of,
    ints_of,
    is_channels_first,
    join_channels,
    known_dim,
    padding_of,
    single,
    split_channels,
    value_of,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES", "conv_shape_rule"]

_CONV1D_PADDING = frozenset({"valid", "same", "causal"})


def _conv_length(
    size: int | None, kernel: int, stride: int, dilation: int, padding: str
) -> int | None:
    """A convolution's output length (``compute_conv_output_shape``)."""
    if size is None:
        return None
    if padding == "valid":
        length = (size - dilation * (kernel - 1) - 1) // stride + 1
        if length <= 0:
            raise Unsure  # Keras: "Computed output size would be zero or negative"
        return length
    return (size - 1) // stride + 1  # same, causal


def _deconv_length(
    size: int | None,
    kernel: int,
    stride: int,
    dilation: int,
    padding: str,
    output_padding: int | None,
) -> int | None:
    """A transposed convolution's output length (Keras's TF padding rule)."""
    if size is None:
        return None
    kernel = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(kernel, stride) - kernel if output_padding is None else output_padding
        return (size - 1) * stride + kernel + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + kernel % 2 + output_padding


def conv_shape_rule(rank: int, kind: str) -> ShapeRule:
    """Conv / SeparableConv / DepthwiseConv / ConvTranspose of ``rank`` spatial dims.

    ``causal`` padding is Conv1D's (and Keras 2's SeparableConv1D's); other kinds
    reject it (``"step"`` is a ConvLSTM's convolution of one step).
    """
    causal = rank == 1 and kind in ("conv", "separable")

    def compute(config: Config, shape: Shape) -> Shape:
        first = is_channels_first(config)
        spatial, channels = split_channels(shape, rank, first)
        kernel = ints_of(value_of(config, "kernel_size"), rank)
        strides = ints_of(config.get("strides", 1), rank)
        dilation = ints_of(config.get("dilation_rate", 1), rank)
        if max(strides) > 1 and max(dilation) > 1:
            raise Unsure  # Keras: "`strides > 1` not supported with `dilation_rate > 1`"
        if kind == "transpose":
            padding = padding_of(config, CONV_PADDING)
            extra = config.get("output_padding")
            output_padding = (None,) * rank if extra is None else ints_of(extra, rank, minimum=0)
            if any(p is not None and p >= s for p, s in zip(output_padding, strides, strict=True)):
                raise Unsure  # Keras: "`output_padding` must be strictly less than `strides`"
            lengths = [
                _deconv_length(n, k, s, d, padding, p)
                for n, k, s, d, p in zip(
                    spatial, kernel, strides, dilation, output_padding, strict=True
                )
            ]
        else:
            padding = padding_of(config, _CONV1D_PADDING if causal else CONV_PADDING)
            lengths = [
                _conv_length(n, k, s, d, padding)
                for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=True)
            ]
        if kind == "depthwise":
            filters = int_of(config.get("depth_multiplier", 1), 1) * known_dim(channels)
        else:
            filters = int_of(value_of(config, "filters"), 1)
        return join_channels(shape[0], lengths, filters, first)

    return single(compute)


# -- MACs ---------------------------------------------------------------------------------


def _kernel_at_every_position(call: MacCall, shapes: PerExample) -> int:
    """Positions of ``shapes``' first shape × kernel size."""
    kernel = roles(call.weights.own, ("kernel", "bias"))["kernel"]
    shape = known_shape(shapes, 0)
    if len(shape) != len(kernel.shape) - 1:
        raise Unsure
    return positions(shape, kernel.shape[-1]) * kernel.size


def _conv_macs(call: MacCall) -> int:
    """Output positions × kernel size."""
    return _kernel_at_every_position(call, call.outputs)


def _depthwise_macs(call: MacCall) -> int:
    kernel = roles(call.weights.own, ("kernel", "bias"), {"depthwise_kernel": "kernel"})["kernel"]
    y = known_shape(call.outputs, 0)
    if len(y) != len(kernel.shape) - 1:
        raise Unsure
    return positions(y, kernel.shape[-2] * kernel.shape[-1]) * kernel.size


def _separable_macs(call: MacCall) -> int:
    """A depthwise convolution, then a 1×1 one at the same output positions."""
    found = roles(call.weights.own, ("depthwise_kernel", "pointwise_kernel", "bias"))
    depthwise, pointwise = found["depthwise_kernel"], found.get("pointwise_kernel")
    y = known_shape(call.outputs, 0)
    if pointwise is None or len(y) != len(pointwise.shape) - 1:
        raise Unsure
    if pointwise.shape[-2] != depthwise.shape[-2] * depthwise.shape[-1]:
        raise Unsure
    return positions(y, pointwise.shape[-1]) * (depthwise.size + pointwise.size)


def _transpose_macs(call: MacCall) -> int:
    """Every input position scatters the whole kernel (``(k…, out, in)``)."""
    return _kernel_at_every_position(call, call.inputs)


# -- variables ------------------------------------------------------------------------------


def _kernel_bias(config: dict[str, Any]) -> list[str]:
    return ["kernel"] + (["bias"] if config.get("use_bias", True) else [])


def _separable_names(config: dict[str, Any]) -> list[str]:
    return ["depthwise_kernel", "pointwise_kernel"] + (
        ["bias"] if config.get("use_bias", True) else []
    )


# -- the classes ------------------------------------------------------------------------------


def _conv_class(
    name: str, kind: str, rank: int, macs: MacRule, variables: Variables, *aliases: str
) -> LayerClass:
    """A convolution of ``rank`` spatial dims: it holds its kernels, no sublayer."""
    return LayerClass(name, conv_shape_rule(rank, kind), macs, variables, NONE, aliases)


CLASSES = (
    *(
        _conv_class(
            f"Conv{r}D",
            "conv",
            r,
            _conv_macs,
            Variables(_kernel_bias, lora=True),
            f"Convolution{r}D",
        )
        for r in (1, 2, 3)
    ),
    *(
        _conv_class(
            f"Conv{r}DTranspose",
            "transpose",
            r,
            _transpose_macs,
            Variables(_kernel_bias),
            f"Convolution{r}DTranspose",
        )
        for r in (1, 2, 3)
    ),
    *(
        _conv_class(
            f"SeparableConv{r}D",
            "separable",
            r,
            _separable_macs,
            Variables(_separable_names),
            f"SeparableConvolution{r}D",
        )
        for r in (1, 2)
    ),
    *(
        _conv_class(f"DepthwiseConv{r}D", "depthwise", r, _depthwise_macs, Variables(_kernel_bias))
        for r in (1, 2)
    ),
)
