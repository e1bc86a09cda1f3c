"""The shapes of every call at one graph level: the file's where it states them,
:mod:`weighttie.layers`' rules elsewhere.

Calls are visited in topological order. A call's input shapes are the file's
(Keras 3 states the shape of each inbound tensor) or else the output shapes
already found for the call that made the tensor; its output shapes are those
its consumers state, or else the layer's rule applied to its inputs. A nested
model's call gives the shapes of the inner graph's outputs for the call's
inputs. A stated shape is never replaced by a computed one, and where neither
the file nor a rule knows a shape it stays None ("unknown").

Only Keras's built-in layers get a rule (:func:`weighttie.layers.is_builtin`): a
Keras 3 entry whose ``module`` is ``keras.layers`` (a Keras 3 op,
``keras.src.ops.numpy.Add``, shares names with layers) or a Keras 2 entry (no
``module``) of a class the catalogue knows, not registered under another name.
"""

from __future__ import annotations

from typing import Any

from weighttie.errors import FileFormatError
from weighttie.facts import join_path
from weighttie.layers import is_builtin, output_shapes
from weighttie.report import CallNode, InboundRef, Shape
from weighttie.static.config_graph import (
    ConfigCall,
    input_layer_shape,
    is_index,
    is_model_entry,
    keras2_end_offsets,
    layer_entries,
    level_calls,
    path_name,
)

__all__ = ["Shapes", "graph_nodes", "model_ends"]

#: Shapes found per call: (layer name, call index) → one shape (or None) per tensor.
_Found = dict[tuple[str, int], list[Shape | None]]
_Memo = dict[tuple[int, tuple[Shape | None, ...]], tuple[Shape | None, ...] | None]


def graph_nodes(
    level: list[tuple[str, dict[str, Any]]],
    parent: str,
    sequential: bool,
    shapes: Shapes,
    depth: int,
    ends: list[tuple[str, int, int]] | None = None,
) -> dict[str, tuple[CallNode, ...]]:
    """Every call at one graph level, with inbound paths, input and output shapes.

    ``depth``: the level's depth of nesting (nested models are entered to find the
    shapes of their outputs up to ``shapes.max_depth``). ``ends``: the level's
    model outputs (``output_layers``), which name tensors no layer consumes.
    """
    calls, order = level_calls(level, parent, sequential, shapes.where)
    if shapes.keras2 and ends:
        ends = keras2_end_offsets(level, ends)
    inputs, outputs = _level_shapes(level, calls, order, None, shapes, depth, ends or [])
    result = {}
    for name, layer_calls in calls.items():
        result[name] = tuple(
            CallNode(
                index=index,
                inbound=tuple(
                    InboundRef(join_path(parent, path_name(s)), n, t) for s, n, t in call.inbound
                ),
                input_shapes=tuple(inputs[(name, index)]),
                output_shapes=tuple(outputs[(name, index)]),
            )
            for index, call in enumerate(layer_calls)
        )
    return result


class Shapes:
    """What finding shapes needs across one file: its name for messages, its Keras
    generation, how deep nested models may be entered, and a budget of calls that
    entering them may visit.

    Finding a nested model's outputs visits its graph again for each distinct set
    of input shapes (remembered by model and shapes); a file built to make that
    work grow (many models, each called on many shapes) ends the budget, and the
    shapes left are unknown rather than the reader slow.
    """

    def __init__(self, where: str, keras2: bool, max_depth: int, budget: int) -> None:
        self.where, self.keras2 = where, keras2
        self.max_depth, self.budget = max_depth, budget
        self.memo: _Memo = {}


def _level_shapes(
    level: list[tuple[str, dict[str, Any]]],
    calls: dict[str, list[ConfigCall]],
    order: list[tuple[str, int]],
    inputs_given: dict[str, Shape | None] | None,
    shapes: Shapes,
    depth: int = 0,
    ends: list[tuple[str, int, int]] | None = None,
) -> tuple[_Found, _Found]:
    """Input and output shapes of each call, visiting ``order``.

    A call has as many outputs as its rule gives, or as the tensors its consumers
    and the model's outputs (``ends``) take from it say, whichever is more: a
    custom layer returning two tensors has two, of unknown shapes.

    ``inputs_given``: the shapes of the InputLayers' tensors when the level is a
    nested model called on inputs other than those it was built for; the shapes the
    file states inside are then not used (they are the shapes it was built for).
    """
    entries = dict(level)
    stated: dict[tuple[str, int], dict[int, Shape | None]] = {}
    for name, entry in level:
        if entry.get("class_name") == "InputLayer":
            stated[(name, 0)] = {
                0: input_layer_shape(entry) if inputs_given is None else inputs_given.get(name)
            }
    if inputs_given is None:  # what the consumers of each (layer, call, tensor) say it is
        for layer_calls in calls.values():
            for call in layer_calls:
                for (src, node, tensor), shape in zip(
                    call.inbound, call.input_shapes, strict=False
                ):
                    slot = stated.setdefault((src, node), {})
                    if slot.get(tensor) is None:
                        slot[tensor] = shape
    for src, node, tensor in ends or ():  # a model output: a tensor, whether or not consumed
        stated.setdefault((src, node), {}).setdefault(tensor, None)
    inputs: _Found = {}
    outputs: _Found = {}
    for key in order:
        name, index = key
        call = calls[name][index]
        if call.inbound:
            found = [
                (shape if inputs_given is None else None) or _tensor_shape(outputs, ref)
                for ref, shape in zip(call.inbound, _padded(call.input_shapes, call), strict=True)
            ]
        else:  # a Sequential model's first layer: the shape it was built for
            found = list(call.input_shapes) if inputs_given is None else []
        inputs[key] = found[: len(call.inbound)] if call.inbound else list(call.input_shapes)
        computed = _call_outputs(entries[name], call, found, shapes, depth)
        said = stated.get(key, {})
        count = max(len(computed or ()), max(said, default=-1) + 1, 1)
        outputs[key] = [
            said[t] if said.get(t) is not None else _at(computed, t) for t in range(count)
        ]
    return inputs, outputs


def _padded(shapes: list[Shape | None], call: ConfigCall) -> list[Shape | None]:
    return (shapes + [None] * len(call.inbound))[: len(call.inbound)]


def _at(shapes: tuple[Shape | None, ...] | None, index: int) -> Shape | None:
    return shapes[index] if shapes is not None and index < len(shapes) else None


def _tensor_shape(outputs: _Found, ref: tuple[str, int, int]) -> Shape | None:
    made = outputs.get((ref[0], ref[1]))
    return made[ref[2]] if made is not None and ref[2] < len(made) else None


def _call_outputs(
    entry: dict[str, Any], call: ConfigCall, found: list[Shape | None], shapes: Shapes, depth: int
) -> tuple[Shape | None, ...] | None:
    """The output shapes the rules give for one call (None: not known)."""
    if is_model_entry(entry):
        return _model_outputs(entry, found, shapes, depth + 1)
    config = entry.get("config")
    if not is_builtin(entry) or not isinstance(config, dict):
        return None
    operands = list(found)
    for position, shape in sorted(call.constants.items()):
        operands.insert(position, shape)
    return output_shapes(str(entry.get("class_name")), config, operands, call.kwargs)


def _model_outputs(
    entry: dict[str, Any], found: list[Shape | None], shapes: Shapes, depth: int
) -> tuple[Shape | None, ...] | None:
    """The shapes of a nested model's outputs when called on inputs of shapes ``found``."""
    key = (id(entry), tuple(found))
    if key in shapes.memo:
        return shapes.memo[key]
    shapes.memo[key] = None  # also what a model reached again through itself gets
    if depth > shapes.max_depth:
        return None
    try:
        level = layer_entries(entry, shapes.where, shapes.keras2)
        sequential = entry.get("class_name") == "Sequential"
        calls, order = level_calls(level, "", sequential, shapes.where)
    except FileFormatError:  # reported where the reader reaches that level
        return None
    config = entry["config"]
    if sequential:
        names = [name for name, _ in level]
        inputs = [(names[0], 0, 0)] if names else []
        ends = [(names[-1], 0, 0)] if names else []
    else:
        inputs = _refs(config.get("input_layers"))
        ends = _refs(config.get("output_layers"))
        if shapes.keras2:
            ends = keras2_end_offsets(level, ends)
    if not inputs or not ends or len(inputs) != len(found):
        return None
    built = []
    for name, _, _ in inputs:
        input_entry = dict(level).get(name)
        if input_entry is None:
            return None
        built.append(input_layer_shape(input_entry))
    given = (
        None if built == found else {name: s for (name, _, _), s in zip(inputs, found, strict=True)}
    )
    if given is not None and sequential and level and level[0][1].get("class_name") != "InputLayer":
        return None
    shapes.budget -= len(order)
    if shapes.budget < 0:
        return None
    _, outputs = _level_shapes(level, calls, order, given, shapes, depth, ends)
    if sequential:
        result = tuple(outputs.get((ends[0][0], 0), [None]))
    else:
        result = tuple(_tensor_shape(outputs, ref) for ref in ends)
    shapes.memo[key] = result
    return result


def model_ends(entry: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The ``[layer, node, tensor]`` references of a functional model's outputs."""
    config = entry.get("config")
    if entry.get("class_name") == "Sequential" or not isinstance(config, dict):
        return []
    return _refs(config.get("output_layers"))


def _refs(value: Any) -> list[tuple[str, int, int]]:
    """A model config's ``input_layers`` / ``output_layers``: one ``[layer, node,
    tensor]`` reference or a structure of them, in ``tree.flatten`` order."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and is_index(item[1])
            and is_index(item[2])
        ):
            found.append((item[0], item[1], item[2]))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(item[k] for k in sorted(item, key=str, reverse=True))
        else:
            return []
    return found
