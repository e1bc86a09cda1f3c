"""Convolutions (weighttie.layers.conv): shapes, MACs and variables against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from keras import layers

from layers.family import FamilyOracle, built
from layers.mac_oracle import counted_macs, one_layer, profiled_macs
from layers.shape_oracle import SPATIAL, Case, data_format, image, unique
from weighttie.layers import conv


def _conv_cases() -> Iterator[Case]:
    """Convolutions: the kinds of one rank share the arithmetic, so each combination
    goes to one kind in turn (plain, separable, depthwise)."""
    kernels = {1: [1, 3, 4], 2: [3, (2, 4)], 3: [2, (1, 2, 3)]}
    strides = {1: [1, 2, 3], 2: [1, (2, 1), 3], 3: [1, 2]}
    dilations = {1: [1, 2], 2: [1, (2, 1)], 3: [1, 2]}
    for rank in (1, 2, 3):
        kinds = itertools.cycle(
            ["Conv", "SeparableConv", "DepthwiseConv"] if rank < 3 else ["Conv"]
        )
        paddings = ["valid", "same", "causal"] if rank == 1 else ["valid", "same"]
        for padding, stride, dilation, kernel, first, spatial in itertools.product(
            paddings, strides[rank], dilations[rank], kernels[rank], (False, True), SPATIAL[rank]
        ):
            if (padding == "causal" and first) or (stride != 1 and dilation != 1):
                continue  # Keras rejects both
            kind = "Conv" if padding == "causal" else next(kinds)  # Keras 3: Conv1D only
            kwargs = {"kernel_size": kernel, "strides": stride, "padding": padding}
            kwargs |= {"dilation_rate": dilation, "data_format": data_format(first)}
            kwargs |= {"depth_multiplier": 2} if kind == "DepthwiseConv" else {"filters": 4}
            yield Case(f"{kind}{rank}D", kwargs, (image(spatial, first),))


def _ints(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else value


def _conv_transpose_cases() -> Iterator[Case]:
    kernels = {1: [2, 3], 2: [3, (2, 4)], 3: [(1, 2, 3)]}
    strides = {1: [1, 2, 3], 2: [1, (2, 3)], 3: [2]}
    for rank in (1, 2, 3):
        for padding, stride, dilation, kernel, extra, first, spatial in itertools.product(
            ["valid", "same"], strides[rank], [1, 2], kernels[rank], [None, 0, 1, 2],
            (False, True), SPATIAL[rank][:2],
        ):  # fmt: skip
            if (stride != 1 and dilation != 1) or (
                extra is not None and extra >= min(_ints(stride))
            ):
                continue  # Keras rejects both
            if rank == 1 and first and extra == 0:
                continue  # keep the corpus small; the arithmetic does not look at the format
            kwargs = {"filters": 4, "kernel_size": kernel, "strides": stride, "padding": padding}
            kwargs |= {"dilation_rate": dilation, "output_padding": extra}
            kwargs |= {"data_format": data_format(first)}
            yield Case(f"Conv{rank}DTranspose", kwargs, (image(spatial, first),))


def _keras2_only_cases() -> Iterator[Case]:
    """Causal separable convolutions: Keras 2 spells them, Keras 3 does not."""
    for layer, dilation, stride in itertools.product(["Conv1D", "SeparableConv1D"], (1, 2), (1, 2)):
        if stride == 1 or dilation == 1:
            kwargs = {"filters": 2, "kernel_size": 3, "padding": "causal"}
            kwargs |= {"dilation_rate": dilation, "strides": stride}
            yield Case(layer, kwargs, ((None, 9, 3),))


KERAS2_ONLY = list(_keras2_only_cases())

UNSURE = {
    "causal depthwise (Keras 3 and tf_keras reject it)": (
        "DepthwiseConv1D",
        {"kernel_size": 3, "padding": "causal"},
        [(None, 8, 3)],
        None,
    ),
    "explicit padding": (
        "Conv2D",
        {"filters": 2, "kernel_size": 3, "padding": [[0, 0], [1, 1], [1, 1], [0, 0]]},
        [(None, 8, 8, 3)],
        None,
    ),
    "strides and dilation": (
        "Conv2D",
        {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2},
        [(None, 8, 8, 3)],
        None,
    ),
    "negative size": ("Conv1D", {"filters": 2, "kernel_size": 5}, [(None, 4, 3)], None),
    "channels unknown": ("DepthwiseConv2D", {"kernel_size": 3}, [(None, 8, 8, None)], None),
}

MAC_CASES = {
    "conv1d": (lambda: layers.Conv1D(5, 3), ((11, 4),)),
    "conv1d-causal-dilated": (
        lambda: layers.Conv1D(4, 3, padding="causal", dilation_rate=2),
        ((16, 3),),
    ),
    "conv1d-strided": (lambda: layers.Conv1D(6, 4, strides=3), ((20, 2),)),
    "conv2d": (lambda: layers.Conv2D(8, 3), ((12, 12, 3),)),
    "conv2d-same-strided": (
        lambda: layers.Conv2D(6, (3, 5), strides=2, padding="same"),
        ((13, 9, 4),),
    ),
    "conv2d-1x1-no-bias": (lambda: layers.Conv2D(16, 1, use_bias=False), ((7, 7, 8),)),
    "conv3d": (lambda: layers.Conv3D(4, 3), ((7, 7, 7, 2),)),
    "conv3d-strided-same": (
        lambda: layers.Conv3D(3, 2, strides=2, padding="same"),
        ((6, 8, 4, 3),),
    ),
    "depthwise2d": (lambda: layers.DepthwiseConv2D(3), ((10, 10, 4),)),
    "depthwise2d-multiplier": (
        lambda: layers.DepthwiseConv2D(3, depth_multiplier=3, strides=2, padding="same"),
        ((11, 11, 5),),
    ),
    "depthwise1d": (lambda: layers.DepthwiseConv1D(5, depth_multiplier=2), ((17, 3),)),
    "separable2d": (lambda: layers.SeparableConv2D(7, 3), ((10, 10, 4),)),
    "separable2d-multiplier-strided": (
        lambda: layers.SeparableConv2D(5, (3, 3), strides=2, depth_multiplier=2, padding="same"),
        ((12, 9, 3),),
    ),
    "separable1d": (lambda: layers.SeparableConv1D(6, 3, depth_multiplier=2), ((14, 4),)),
}

VARIABLE_CASES = {
    "Conv1D": lambda: built(layers.Conv1D(2, 3), 8, 2),
    "Conv2D": lambda: built(layers.Conv2D(2, 3), 8, 8, 2),
    "Conv2D-no-bias": lambda: built(layers.Conv2D(2, 3, use_bias=False), 8, 8, 2),
    "Conv2D-lora": lambda: built(layers.Conv2D(3, 2, lora_rank=2), 4, 4, 2),
    "Conv3D": lambda: built(layers.Conv3D(2, 2), 4, 4, 4, 1),
    "Conv1DTranspose": lambda: built(layers.Conv1DTranspose(2, 3), 5, 2),
    "Conv2DTranspose": lambda: built(layers.Conv2DTranspose(2, 3), 5, 5, 2),
    "Conv3DTranspose": lambda: built(layers.Conv3DTranspose(2, 2), 3, 3, 3, 2),
    "DepthwiseConv1D": lambda: built(layers.DepthwiseConv1D(3), 8, 2),
    "DepthwiseConv2D": lambda: built(layers.DepthwiseConv2D(3), 8, 8, 2),
    "SeparableConv1D": lambda: built(layers.SeparableConv1D(4, 3), 8, 2),
    "SeparableConv2D": lambda: built(layers.SeparableConv2D(4, 3), 8, 8, 2),
}


class TestConv(FamilyOracle):
    family = conv
    cases = unique(itertools.chain(_conv_cases(), _conv_transpose_cases()))
    keras2_only = KERAS2_ONLY
    #: tf_keras runs a channels-first SeparableConv2D through a transpose on CPU, which
    #: drops static sizes the rule knows.
    keras2_loses_sizes = frozenset({"SeparableConv2D"})
    unsure = UNSURE
    mac_cases = MAC_CASES
    variable_cases = VARIABLE_CASES
    #: A transposed conv's oracle is the forward conv's profile: test_transposed_conv_macs_….
    checked_elsewhere = frozenset(f"Conv{r}DTranspose: MACs" for r in (1, 2, 3))


# -- MACs the profiler cannot count as they are -------------------------------------


@pytest.mark.parametrize(
    ("groups", "filters", "channels", "kernel"),
    [(2, 4, 6, 3), (3, 9, 6, (3, 1)), (4, 8, 8, 1)],
)
def test_grouped_conv_macs_are_groups_times_one_groups_conv(
    groups: int, filters: int, channels: int, kernel: int | tuple[int, int]
) -> None:
    grouped = one_layer(layers.Conv2D(filters, kernel, groups=groups), (9, 9, channels))
    one_group = one_layer(layers.Conv2D(filters // groups, kernel), (9, 9, channels // groups))
    assert counted_macs(grouped) == groups * profiled_macs(one_group)


@pytest.mark.parametrize(
    ("kernel", "dilation", "shape"), [(3, 2, (15, 15, 2)), ((2, 3), (3, 1), (12, 10, 3))]
)
def test_dilated_conv_macs_equal_an_undilated_conv_with_the_same_taps(
    kernel: int | tuple[int, int], dilation: int | tuple[int, int], shape: tuple[int, ...]
) -> None:
    """TensorFlow runs a dilated Conv2D as SpaceToBatchND + Conv2D on a padded tensor, so the
    profiler counts padding positions the layer never outputs. The same kernel taps at the
    same output positions, undilated, are what the layer computes."""
    model = one_layer(layers.Conv2D(4, kernel, dilation_rate=dilation), shape)
    out = model.outputs[0].shape[1:3]
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    undilated = one_layer(
        layers.Conv2D(4, kernel), (out[0] + k[0] - 1, out[1] + k[1] - 1, shape[-1])
    )
    assert undilated.outputs[0].shape == model.outputs[0].shape
    assert counted_macs(model) == profiled_macs(undilated)


@pytest.mark.parametrize(
    ("rank", "filters", "kernel", "strides", "padding", "shape"),
    [
        (2, 5, 3, 2, "valid", (4, 4, 3)),
        (2, 4, (3, 2), 1, "valid", (6, 5, 2)),
        (2, 6, 4, 2, "same", (5, 7, 3)),
        (1, 4, 3, 2, "valid", (9, 5)),
        (3, 2, 2, 2, "same", (3, 4, 3, 2)),
    ],
)
def test_transposed_conv_macs_equal_the_forward_conv_it_transposes(
    rank: int,
    filters: int,
    kernel: int | tuple[int, ...],
    strides: int,
    padding: str,
    shape: tuple[int, ...],
) -> None:
    """TensorFlow's flop count of ``Conv2DBackpropInput`` is not 2 × its MACs: the oracle is
    the profile of the forward convolution that maps its output back to its input."""
    transpose = getattr(layers, f"Conv{rank}DTranspose")(filters, kernel, strides, padding)
    model = one_layer(transpose, shape)
    forward = getattr(layers, f"Conv{rank}D")(shape[-1], kernel, strides, padding)
    back = one_layer(forward, tuple(model.outputs[0].shape[1:]))
    assert tuple(back.outputs[0].shape[1:]) == shape  # it maps the output back to the input
    assert counted_macs(model) == profiled_macs(back)
