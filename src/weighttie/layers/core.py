"""Core layers: ``Dense``, ``EinsumDense``, the embeddings, ``InputLayer``,
``Lambda``, the activation layers and the regularization layers (dropout, noise),
and the layers that run code they were given (``TFSMLayer``, ``JaxLayer`` …).

``EinsumDense`` with ``...`` on the left keeps the elided axes in order (Keras
3.15's symbolic shape reverses them; the einsum does not). Its MACs are unknown:
its equation is config, not a fact both front ends have. ``Embedding`` is a
lookup: 0 MACs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from weighttie.layers.layer_class import (
    CALL_DECIDES,
    NONE,
    UNKNOWN,
    LayerClass,
    Variables,
    weightless,
)
from weighttie.layers.macs import MacCall, known_shape, roles
from weighttie.layers.quantization import (
    QUANTIZED_EMBEDDINGS,
    QUANTIZED_KERNEL,
    QUANTIZED_REVERSE,
    quantization_mode,
)
from weighttie.layers.shapes import (
    Config,
    ShapeCall,
    Shapes,
    clean_shape,
    int_of,
    same_shape,
    single,
    value_of,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


# -- Dense and EinsumDense ----------------------------------------------------------------


def _dense_shape(config: Config, shape: Shape) -> Shape:
    if len(shape) < 2:
        raise Unsure
    return (*shape[:-1], int_of(value_of(config, "units"), 1))


def _dense_macs(call: MacCall) -> int:
    """Positions × kernel size (positions: every input dimension but the batch and the last)."""
    kernel = roles(call.weights.own, ("kernel", "bias"))["kernel"]
    x = known_shape(call.inputs, 0)
    if len(kernel.shape) != 2 or x[-1] != kernel.shape[0]:
        raise Unsure
    return math.prod(x[:-1]) * kernel.size


def _kernel_names(config: dict[str, Any], has_bias: bool) -> list[str] | None:
    """A kernel, a bias, and what quantization adds (gptq and awq keep an order of their
    own, not tabled here)."""
    mode = quantization_mode(config)
    if mode is not None and mode not in QUANTIZED_KERNEL:
        return None
    return ["kernel"] + (["bias"] if has_bias else []) + QUANTIZED_KERNEL.get(mode or "", [])


_EINSUM_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), False),
    (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)"), True),
    (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0"), False),
)


def _einsum_parts(equation: str) -> tuple[str, str, str, bool]:
    """Input, weight and output specs of an ``EinsumDense`` equation; ``...`` on the left?"""
    replaced = equation.replace("...", "0")
    for pattern, left_elided in _EINSUM_FORMS:
        match = pattern.match(replaced)
        if match:
            input_spec, weight_spec, output_spec = match.groups()
            return input_spec, weight_spec, output_spec, left_elided
    raise Unsure


def _einsum_dense_shape(config: Config, shape: Shape) -> Shape:
    """Keras's ``_analyze_split_string``, output shape only."""
    equation = value_of(config, "equation")
    if not isinstance(equation, str):
        raise Unsure
    partial = value_of(config, "output_shape")
    if isinstance(partial, int) and not isinstance(partial, bool):
        partial = [partial]
    if not isinstance(partial, list | tuple):
        raise Unsure
    partial = [None if d is None else int_of(d, 1) for d in partial]
    input_spec, weight_spec, output_spec, left_elided = _einsum_parts(equation)
    elided = len(shape) - len(input_spec)
    if elided < 0 or (elided and "..." not in equation):
        raise Unsure
    output: list[int | None] = [shape[0], *partial]
    if elided > 0 and left_elided:
        # Keras 3.15 inserts these one by one at 1, reversing them in its symbolic
        # shape; the einsum keeps their order.
        output[1:1] = shape[1:elided]
    elif elided > 0:
        output.extend(shape[len(shape) - elided :])
    offset = elided if left_elided else 0
    in_index = {d: i + offset for i, d in enumerate(input_spec)}
    out_index = {d: i + offset for i, d in enumerate(output_spec)}
    if len(output) != len(output_spec) + elided:
        raise Unsure
    for dim in input_spec:
        if dim in out_index:
            stated = output[out_index[dim]]
            if stated is not None and stated != shape[in_index[dim]]:
                raise Unsure
    for dim in output_spec:
        if dim not in input_spec and dim not in weight_spec:
            raise Unsure
    if any(d not in in_index and d not in out_index for d in weight_spec):
        raise Unsure
    return tuple(output)


# -- embeddings -------------------------------------------------------------------------------


def _embedding_shape(config: Config, shape: Shape) -> Shape:
    return (*shape, int_of(value_of(config, "output_dim"), 1))


def _reversible_embedding_shape(call: ShapeCall) -> Shapes:
    """``reverse=True`` maps back to the vocabulary (a tied output layer)."""
    shape = call.x
    if call.flag("reverse"):
        if not shape:
            raise Unsure
        return ((*shape[:-1], int_of(value_of(call.config, "input_dim"), 1)),)
    return ((*shape, int_of(value_of(call.config, "output_dim"), 1)),)


def _embedding_names(config: dict[str, Any]) -> list[str] | None:
    mode = quantization_mode(config)
    if mode is not None and mode not in QUANTIZED_EMBEDDINGS:
        return None
    return ["embeddings", *QUANTIZED_EMBEDDINGS.get(mode or "", [])]


def _reversible_embedding_names(config: dict[str, Any]) -> list[str] | None:
    """The embeddings, and, untied, the reverse embeddings after them."""
    names = _embedding_names(config)
    if names is None or config.get("tie_weights", True):
        return names
    return names + QUANTIZED_REVERSE[quantization_mode(config)]


# -- InputLayer ---------------------------------------------------------------------------------


def _input_layer_shape(call: ShapeCall) -> Shapes:
    if call.shapes:
        return (call.x,)
    for key in ("batch_shape", "batch_input_shape"):
        shape = clean_shape(call.config.get(key))
        if shape is not None:
            return (shape,)
    raise Unsure


# -- the classes ----------------------------------------------------------------------------------


def _user_code(name: str) -> LayerClass:
    """A Keras class that runs code it was given: what it computes, holds and reads is
    that code's to say."""
    return LayerClass(name, UNKNOWN, UNKNOWN, UNKNOWN, CALL_DECIDES)


CLASSES = (
    weightless("InputLayer", _input_layer_shape, 0),
    LayerClass(
        "Dense",
        shapes=single(_dense_shape),
        macs=_dense_macs,
        variables=Variables(lambda c: _kernel_names(c, c.get("use_bias", True)), lora=True),
        sublayers=NONE,
    ),
    LayerClass(
        "EinsumDense",
        shapes=single(_einsum_dense_shape),
        macs=UNKNOWN,  # its equation is config, not a fact both front ends have
        variables=Variables(lambda c: _kernel_names(c, bool(c.get("bias_axes"))), lora=True),
        sublayers=NONE,
    ),
    LayerClass(
        "Embedding",
        shapes=single(_embedding_shape),
        macs=0,  # a lookup
        variables=Variables(_embedding_names, lora=True),
        sublayers=NONE,
    ),
    LayerClass(
        "ReversibleEmbedding",  # keras_hub's class of the same name holds the same variables
        shapes=_reversible_embedding_shape,
        macs=UNKNOWN,
        variables=Variables(
            _reversible_embedding_names,
            lora=True,
            by_count={1: ("embeddings",), 2: ("embeddings", "reverse_embeddings")},
        ),
        sublayers=NONE,
    ),
    weightless("Identity", same_shape, 0),
    weightless("Masking", same_shape, 0),
    _user_code("Lambda"),
    _user_code("TFSMLayer"),
    _user_code("JaxLayer"),
    _user_code("FlaxLayer"),
    _user_code("TorchModuleWrapper"),
    # activations
    weightless("Activation", same_shape, 0),
    weightless("ReLU", same_shape, 0),
    weightless("LeakyReLU", same_shape, 0),
    weightless("ELU", same_shape, 0),
    weightless("Softmax", same_shape, 0),
    weightless("ThresholdedReLU", same_shape, UNKNOWN),  # tf_keras
    LayerClass("PReLU", same_shape, 0, Variables(lambda c: ["alpha"]), NONE),
    # regularization
    weightless("Dropout", same_shape, 0),
    weightless("SpatialDropout1D", same_shape, 0),
    weightless("SpatialDropout2D", same_shape, 0),
    weightless("SpatialDropout3D", same_shape, 0),
    weightless("GaussianNoise", same_shape, 0),
    weightless("GaussianDropout", same_shape, 0),
    weightless("AlphaDropout", same_shape, 0),
    weightless("ActivityRegularization", same_shape, 0),
)
