"""The oracle for uses: one eager forward pass on real data, counting reads of variables.

A *use* is a read of a variable by a layer call, counted at the innermost layer call
that reads it (docs/concepts.md). This counts them without anything weighttie uses
to count them: weighttie traces a symbolic pass and watches Keras's
``Variable.value``; this runs the model eagerly on arrays and hooks TensorFlow's own
read of a resource variable (``_read_variable_op``), attributing each read to the
innermost layer whose ``call`` is running. Inside a layer that runs its sublayers in
a loop (an RNN, TimeDistributed), a sublayer's reads during one call of the loop
are one use, whatever the number of steps: the definition's rule, not an artefact.

TensorFlow only (the other backends have no such hook): callers skip without it.
"""

from __future__ import annotations

import itertools
from typing import Any

import keras
import numpy as np

__all__ = ["eager_uses", "layer_at", "oracle_counts", "sample_inputs", "variable_objects"]


def sample_inputs(model: keras.Model, batch: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Arrays for ``model``'s inputs: unknown dimensions are 3, integers lie in [0, 5)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = tuple(batch if i == 0 else (d or 3) for i, d in enumerate(tensor.shape))
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 5, size=shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.standard_normal(shape).astype(str(tensor.dtype)))
    return arrays


def eager_uses(model: keras.Model, data: Any) -> dict[int, int]:
    """``{id(variable): uses}`` in one eager call of ``model`` on ``data``.

    Variables never read are absent.
    """
    from tensorflow.python.ops import resource_variable_ops

    resource = resource_variable_ops.BaseResourceVariable
    original_read = resource._read_variable_op
    layers = model._flatten_layers(include_self=True)
    by_tf = {id(v._value): v for layer in layers for v in layer.weights}
    loops = (keras.layers.RNN, keras.layers.TimeDistributed)
    serial = itertools.count()
    stack: list[tuple[int, Any]] = []  # (frame serial, layer)
    reads: set[tuple[tuple[int, int], int]] = set()  # ((use key), id(variable))

    def use_key() -> tuple[int, int]:
        frame, layer = stack[-1]
        for outer, holder in reversed(stack[:-1]):
            if isinstance(holder, loops):  # one use per call of the looping layer
                return outer, id(layer)
        return frame, id(layer)

    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        variable = by_tf.get(id(self))
        if variable is not None and stack:
            reads.add((use_key(), id(variable)))
        return original_read(self, *args, **kwargs)

    def watch(layer: Any) -> None:
        bound = layer.call

        def call(*args: Any, **kwargs: Any) -> Any:
            stack.append((next(serial), layer))
            try:
                return bound(*args, **kwargs)
            finally:
                stack.pop()

        object.__setattr__(layer, "call", call)

    resource._read_variable_op = read
    try:
        for layer in layers:
            watch(layer)
        model(data)
    finally:
        resource._read_variable_op = original_read
        for layer in layers:
            if "call" in vars(layer):
                object.__delattr__(layer, "call")
    uses: dict[int, int] = {}
    for _, variable in reads:
        uses[variable] = uses.get(variable, 0) + 1
    return uses


def layer_at(model: keras.Model, path: str) -> Any:
    """The layer object at a report path (names joined by "/", as weighttie writes them)."""
    layer = model
    for name in path.split("/"):
        name = name.split("#", 1)[0]
        children = list(getattr(layer, "layers", None) or []) + list(layer._layers)
        matches = [child for child in children if child.name == name]
        assert matches, f"no layer {name!r} under {layer.name!r} (path {path!r})"
        layer = matches[0]
    return layer


def variable_objects(model: keras.Model, report: Any) -> dict[str, Any]:
    """Each report variable's object: its first holder's own variable of that name."""
    objects = {}
    for info in report.variables:
        holder = layer_at(model, info.layers[0])
        name = info.path.rsplit("/", 1)[-1].split("#", 1)[0]
        own = [*holder._trainable_variables, *holder._non_trainable_variables]
        (objects[info.path],) = [v for v in own if v.name == name]
    return objects


def oracle_counts(model: keras.Model, report: Any) -> tuple[dict[str, int], int]:
    """Per report variable, its uses in an eager pass; and the per-use total they give."""
    uses = eager_uses(model, sample_inputs(model))
    objects = variable_objects(model, report)
    per_variable = {path: uses.get(id(v), 0) for path, v in objects.items()}
    per_use = sum(info.size * per_variable[info.path] for info in report.variables)
    return per_variable, per_use
