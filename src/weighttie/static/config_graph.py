"""A model config's graph: its layers, every call with its inbound tensors and the
shapes the file states, checked for wiring and cycles.

Keras 3 configs record each call as ``{"args": …, "kwargs": …}`` with
``__keras_tensor__`` entries; Keras 2 configs as lists of
``[layer, node_index, tensor_index, kwargs]`` references, numbering a nested
model's calls from 1 (:func:`_keras2_node_offsets` renumbers them from 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.graph import join_path
from weighttie.report import CallNode, InboundRef, Shape


def _shape(value: Any) -> Shape | None:
    if not isinstance(value, list | tuple):
        return None
    dims = []
    for d in value:
        if d is None or (isinstance(d, int) and not isinstance(d, bool)):
            dims.append(d)
        else:
            return None
    return tuple(dims)


def _keras_tensors(value: Any) -> Iterator[dict[str, Any]]:
    """The ``__keras_tensor__`` entries of a serialized call argument, in ``tree.flatten`` order.

    Iterative: however deeply the argument nests (the JSON parser bounds that), no
    Python recursion is involved.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                config = item.get("config")
                if isinstance(config, dict):
                    yield config
                continue
            stack.extend(item[key] for key in sorted(item, key=str, reverse=True))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _is_index(value: Any) -> bool:
    """A node or tensor index: a non-negative int (JSON ``false`` is not 0)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass
class _Call:
    inbound: list[tuple[str, int, int]]
    input_shapes: list[Shape | None]
    keras2: bool = False  # Keras 2 list format: see _keras2_node_offsets


def _calls(entry: dict[str, Any]) -> list[_Call]:
    """The calls a layer entry records (Keras 3 dict nodes or Keras 2 list nodes)."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list):
        return []
    calls = []
    for node in nodes:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            inbound, shapes = [], []
            arguments = [node.get("args", []), node.get("kwargs", {})]
            for tensor in _keras_tensors(arguments):
                history = tensor.get("keras_history")
                if not (
                    isinstance(history, list)
                    and len(history) == 3
                    and isinstance(history[0], str)
                    and all(_is_index(h) for h in history[1:])
                ):
                    raise FileFormatError(
                        f"config.json: an input of layer {_layer_name(entry)!r} has a malformed "
                        f"keras_history {str(history)[:60]!r}; expected [layer, call, tensor]"
                    )
                inbound.append((history[0], history[1], history[2]))
                shapes.append(_shape(tensor.get("shape")))
            calls.append(_Call(inbound, shapes))
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            inbound = [
                (ref[0], ref[1], ref[2])
                for ref in node
                if isinstance(ref, list)
                and len(ref) >= 3
                and isinstance(ref[0], str)
                and _is_index(ref[1])
                and _is_index(ref[2])
            ]
            calls.append(_Call(inbound, [None] * len(inbound), keras2=True))
    return calls


def _skips_first_node(entry: dict[str, Any]) -> bool:
    """Keras 2 numbers a nested model's calls from 1: call 0 is the model's own construction."""
    if not _is_model(entry):
        return False
    layers = entry["config"]["layers"]
    return (
        bool(layers) and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer"
    )


def _keras2_node_offsets(
    level: list[tuple[str, dict[str, Any]]], calls: dict[str, list[_Call]]
) -> None:
    """Renumber Keras 2 references to nested models' calls from 0, as Keras 3 numbers them."""
    skipping = {name for name, entry in level if _skips_first_node(entry)}
    if not skipping:
        return
    for layer_calls in calls.values():
        for call in layer_calls:
            if call.keras2:
                call.inbound = [
                    (src, node - 1 if src in skipping else node, t) for src, node, t in call.inbound
                ]


def _input_layer_shape(entry: dict[str, Any]) -> Shape | None:
    config = entry.get("config")
    if not isinstance(config, dict):
        return None
    return _shape(config.get("batch_shape", config.get("batch_input_shape")))


def _layer_name(entry: dict[str, Any]) -> str | None:
    config = entry.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return str(config["name"])
    name = entry.get("name")
    return name if isinstance(name, str) else None


def _layer_entries(
    model_entry: dict[str, Any], where: str = "config.json"
) -> list[tuple[str, dict[str, Any]]]:
    """The layers a model config lists, checked: each an object with a unique name and a class."""
    inner = model_entry.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return []
    result = []
    seen: set[str] = set()
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise FileFormatError(
                f"{where}: layer {i} of model {_layer_name(model_entry)!r} is "
                f"{type(entry).__name__}, expected an object"
            )
        name = _layer_name(entry)
        if name is None or not name or "/" in name:
            raise FileFormatError(
                f"{where}: layer {i} of model {_layer_name(model_entry)!r} has no valid name"
            )
        if not isinstance(entry.get("class_name"), str):
            raise FileFormatError(f"{where}: layer {name!r} has no class_name")
        if name in seen:
            raise FileFormatError(
                f"{where}: model {_layer_name(model_entry)!r} has two layers named {name!r}"
            )
        seen.add(name)
        result.append((name, entry))
    return result


def _is_model(entry: dict[str, Any]) -> bool:
    config = entry.get("config")
    return isinstance(config, dict) and isinstance(config.get("layers"), list)


def _trainable(entry: dict[str, Any]) -> bool:
    config = entry.get("config")
    return not (isinstance(config, dict) and config.get("trainable") is False)


def _graph_nodes(
    level: list[tuple[str, dict[str, Any]]], parent: str, sequential: bool
) -> dict[str, tuple[CallNode, ...]]:
    """Every call at one graph level, with inbound paths and the shapes the file states."""
    calls: dict[str, list[_Call]] = {}
    if sequential:
        previous: tuple[str, Shape | None] | None = None
        for name, entry in level:
            if entry.get("class_name") == "InputLayer":
                calls[name] = [_Call([], [])]
                previous = (name, _input_layer_shape(entry))
                continue
            build = entry.get("build_config")
            shape = _shape(build.get("input_shape")) if isinstance(build, dict) else None
            if previous is None:
                calls[name] = [_Call([], [shape])]
            else:
                calls[name] = [_Call([(previous[0], 0, 0)], [shape or previous[1]])]
            previous = (name, None)
    else:
        for name, entry in level:
            calls[name] = _calls(entry)
            if entry.get("class_name") == "InputLayer" and not calls[name]:
                calls[name] = [_Call([], [])]

    _keras2_node_offsets(level, calls)
    _check_wiring(calls, parent)

    # Output shapes: what the consumers of each (layer, call, tensor) say it is.
    produced: dict[tuple[str, int], dict[int, Shape | None]] = {}
    for name, entry in level:
        if entry.get("class_name") == "InputLayer":
            produced.setdefault((name, 0), {})[0] = _input_layer_shape(entry)
    for layer_calls in calls.values():
        for call in layer_calls:
            for (src, node, tensor), shape in zip(call.inbound, call.input_shapes, strict=True):
                slot = produced.setdefault((src, node), {})
                if slot.get(tensor) is None:
                    slot[tensor] = shape
    result = {}
    for name, layer_calls in calls.items():
        nodes = []
        for index, call in enumerate(layer_calls):
            outputs = produced.get((name, index), {})
            count = max(outputs, default=-1) + 1 or 1
            nodes.append(
                CallNode(
                    index=index,
                    inbound=tuple(
                        InboundRef(join_path(parent, s), n, t) for s, n, t in call.inbound
                    ),
                    input_shapes=tuple(call.input_shapes),
                    output_shapes=tuple(outputs.get(t) for t in range(count)),
                )
            )
        result[name] = tuple(nodes)
    return result


def _check_wiring(calls: dict[str, list[_Call]], parent: str) -> None:
    """Every input names a call that exists, and no call depends on itself."""
    where = f"model {parent!r}" if parent else "the model"
    for name, layer_calls in calls.items():
        for index, call in enumerate(layer_calls):
            for source, node, _ in call.inbound:
                if source not in calls:
                    raise FileFormatError(
                        f"config.json: call {index} of layer {join_path(parent, name)!r} takes "
                        f"its input from {source!r}, which is not a layer of {where}"
                    )
                if not 0 <= node < len(calls[source]):
                    raise FileFormatError(
                        f"config.json: call {index} of layer {join_path(parent, name)!r} takes "
                        f"its input from call {node} of {source!r}, which has "
                        f"{len(calls[source])} call(s)"
                    )
    # Cycle check over (layer, call) pairs, iteratively (graphs can be deep).
    state: dict[tuple[str, int], int] = {}  # 1 on the current path, 2 done
    for start_name, layer_calls in calls.items():
        for start_index in range(len(layer_calls)):
            if state.get((start_name, start_index)) == 2:
                continue
            stack = [((start_name, start_index), False)]
            while stack:
                key, leaving = stack.pop()
                if leaving:
                    state[key] = 2
                    continue
                if state.get(key) == 2:
                    continue
                state[key] = 1
                stack.append((key, True))
                for source, node, _ in calls[key[0]][key[1]].inbound:
                    mark = state.get((source, node))
                    if mark == 1:
                        raise FileFormatError(
                            f"config.json: the graph of {where} has a cycle through layer "
                            f"{join_path(parent, source)!r}"
                        )
                    if mark is None:
                        stack.append(((source, node), False))
