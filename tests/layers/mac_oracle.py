"""MACs checked against TensorFlow's own count of the graph it runs: the MAC oracle.

The oracle traces each model into a TensorFlow graph (batch 1) and asks TF's
profiler for the float operations of its matrix products and convolutions
(``MatMul``, ``BatchMatMul*``, ``Conv2D``, ``Conv3D``, ``DepthwiseConv2dNative``:
2 flops per multiply-accumulate). Where the profiler cannot serve, a family's test
says why and counts something else TensorFlow states:

* ``Einsum`` ops (MultiHeadAttention's two attention products) have no registered
  flop count: the product of the sizes of the equation's indices, read from the op's
  own ``equation`` attribute and input shapes in the graph;
* a grouped ``Conv2D`` is counted as if ungrouped (the profiler reads the input
  channels from the input tensor): ``groups`` × the profile of one group's conv;
* ``Conv2DBackpropInput`` (a transposed convolution) has a flop count that is not
  2 × MACs: the profile of the forward convolution it is the transpose of, which
  maps its output back to its input with the same kernel;
* recurrent layers are built with ``unroll=True`` so every step is an op of its own
  (a while loop's body would be profiled once); the MACs do not depend on it.

Bias additions, activations, softmax and element-wise products are left out on both
sides (docs/cost.md). The oracle is TensorFlow's: under another backend its tests skip.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import pytest

import weighttie

#: A layer to cost and the per-example shapes of its inputs.
MacCase = tuple[Callable[[], keras.Layer], tuple[tuple[int, ...], ...]]

PRODUCTS = {
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Conv2D",
    "Conv3D",
    "DepthwiseConv2dNative",
}


def _tensorflow() -> Any:
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the oracle is TensorFlow's profiler")
    return tf


def _graph(tf: Any, model: keras.Model) -> Any:
    specs = [tf.TensorSpec((1, *tuple(i.shape[1:])), i.dtype) for i in model.inputs]

    def forward(*xs: Any) -> Any:
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    return tf.function(forward).get_concrete_function(*specs).graph


def _einsum_macs(op: Any) -> int:
    """The product of the sizes of an Einsum's indices, from the graph's own op."""
    equation = op.get_attr("equation").decode()
    sizes: dict[str, int] = {}
    for spec, tensor in zip(equation.split("->")[0].split(","), op.inputs, strict=True):
        for letter, dim in zip(spec, tensor.shape, strict=True):
            sizes[letter] = int(dim)
    return math.prod(sizes.values())


def _reaching_outputs(graph: Any) -> list[Any]:
    """The ops the graph's outputs depend on. Tracing leaves dead ops behind (Keras's RNN
    calls its cell once outside the loop to learn its state structure), which TensorFlow
    prunes before running; the profiler would count them."""
    seen: dict[str, Any] = {}
    stack = [t.op for t in graph.outputs]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return list(seen.values())


def profiled_macs(model: keras.Model) -> int:
    """MACs per example of ``model``'s forward pass, as TensorFlow counts its graph."""
    tf = _tensorflow()
    graph = _graph(tf, model)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    root = tf.compat.v1.profiler.profile(graph=graph, options=options)
    flops: dict[str, int] = {}
    stack = list(root.children)
    while stack:
        node = stack.pop()
        flops[node.name] = node.float_ops
        stack.extend(node.children)
    total = 0
    for op in _reaching_outputs(graph):
        if op.type == "Einsum":
            total += _einsum_macs(op)
        elif op.type in PRODUCTS:
            assert flops.get(op.name, 0) % 2 == 0
            total += flops.get(op.name, 0) // 2
        elif op.type in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
            raise AssertionError("transposed convolutions are profiled through their forward conv")
    return total


def one_layer(layer: keras.Layer, *shapes: tuple[int, ...]) -> keras.Model:
    """A model of one call of ``layer`` on inputs of per-example ``shapes``."""
    inputs = [keras.Input(s) for s in shapes]
    return keras.Model(inputs, layer(inputs if len(inputs) > 1 else inputs[0]))


def counted_macs(model: keras.Model) -> int | None:
    """weighttie's MACs of ``model``, every layer counted."""
    report = weighttie.analyze(model)
    assert report.cost.uncounted == 0
    return report.cost.macs


def assert_macs_equal_tensorflows(case: MacCase) -> str:
    """weighttie's MACs of one layer's call equal TensorFlow's; the layer's class."""
    _tensorflow()
    keras.utils.set_random_seed(0)
    make, shapes = case
    layer = make()
    model = one_layer(layer, *shapes)
    expected = profiled_macs(model)
    assert expected > 0
    assert counted_macs(model) == expected
    return type(layer).__name__
