"""A model config's graph: its layers, every call with its inbound tensors and the
shapes the file states, checked for wiring and cycles.

Keras 3 configs record each call as ``{"args": …, "kwargs": …}`` with
``__keras_tensor__`` entries; Keras 2 configs as lists of
``[layer, node_index, tensor_index, kwargs]`` references, numbering a nested
model's calls from 1 (:func:`_keras2_node_offsets` renumbers them from 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.facts import join_path
from weighttie.report import Shape

__all__ = [
    "ConfigCall",
    "entry_layer_name",
    "entry_trainable",
    "input_layer_shape",
    "is_index",
    "is_model_entry",
    "keras2_end_offsets",
    "layer_entries",
    "level_calls",
    "path_name",
]


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


def is_index(value: Any) -> bool:
    """A node or tensor index: a non-negative int (JSON ``false`` is not 0)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass
class ConfigCall:
    """One call as the config records it.

    ``inbound`` lists every tensor the call receives, as ``tree.flatten((args,
    kwargs))`` orders them (positional first, then keyword arguments by sorted
    key); ``input_shapes`` the shape the file states for each (or None).
    ``constants`` holds the shapes of constant positional operands (Keras 2's
    ``_CONSTANT_VALUE``, as in ``2.0 * x``) by their place among the inputs, and
    ``kwargs`` the call's keyword arguments as stored: both only feed the shape rules.
    """

    inbound: list[tuple[str, int, int]]
    input_shapes: list[Shape | None]
    keras2: bool = False  # Keras 2 list format: see _keras2_node_offsets
    kwargs: dict[str, Any] = field(default_factory=dict)
    constants: dict[int, Shape | None] = field(default_factory=dict)


def _calls(entry: dict[str, Any], where: str = "config.json") -> list[ConfigCall]:
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
                    and all(is_index(h) for h in history[1:])
                ):
                    raise FileFormatError(
                        f"{where}: an input of layer {entry_layer_name(entry)!r} has a malformed "
                        f"keras_history {str(history)[:60]!r}; expected [layer, call, tensor]"
                    )
                inbound.append((history[0], history[1], history[2]))
                shapes.append(_shape(tensor.get("shape")))
            kwargs = node.get("kwargs")
            calls.append(
                ConfigCall(inbound, shapes, kwargs=kwargs if isinstance(kwargs, dict) else {})
            )
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            calls.append(_keras2_call(node))
    return calls


#: How Keras 2 names a constant positional operand in a node (``2.0 * x``).
_CONSTANT = "_CONSTANT_VALUE"


def _keras2_ref(value: Any) -> bool:
    """A Keras 2 tensor reference ``[layer, node, tensor]`` (with a kwargs dict, or not),
    or a constant operand ``["_CONSTANT_VALUE", -1, value, kwargs]``."""
    if not (isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str)):
        return False
    if len(value) == 4 and not isinstance(value[3], dict):
        return False
    return value[0] == _CONSTANT or (is_index(value[1]) and is_index(value[2]))


def _keras2_call(node: list[Any]) -> ConfigCall:
    """One Keras 2 call: its first argument's references (a list of them, or, for an op
    layer's single tensor, the reference itself), then the tensors among its kwargs.

    Keras 2 writes every argument after the first as a keyword argument, in a dict
    that ends each reference of the first (``{"y": ["dense", 0, 0]}``).
    """
    refs: list[list[Any]] = []
    stack: list[Any] = [node] if _keras2_ref(node) else list(reversed(node))
    while stack:  # the first argument may nest (a list of lists of references)
        item = stack.pop()
        if _keras2_ref(item):
            refs.append(item)
        elif isinstance(item, list):
            stack.extend(reversed(item))
    call = ConfigCall([], [], keras2=True)
    for ref in refs:
        if ref[0] == _CONSTANT:
            call.constants[len(call.inbound) + len(call.constants)] = _constant_shape(ref[2])
        else:
            call.inbound.append((ref[0], ref[1], ref[2]))
    kwargs = refs[0][3] if refs and len(refs[0]) == 4 else {}
    call.kwargs = kwargs
    call.inbound += _keras2_kwarg_refs(kwargs)
    call.input_shapes = [None] * len(call.inbound)
    return call


def _keras2_kwarg_refs(kwargs: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The tensor references among a Keras 2 call's kwargs, in ``tree.flatten`` order
    (dict keys sorted, depth first)."""
    found = []
    stack: list[Any] = [kwargs]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item[key] for key in sorted(item, key=str, reverse=True))
        elif isinstance(item, list):
            if len(item) == 3 and _keras2_ref(item) and item[0] != _CONSTANT:
                found.append((item[0], item[1], item[2]))
            else:
                stack.extend(reversed(item))
    return found


def _constant_shape(value: Any) -> Shape | None:
    """The shape of a constant operand (a number or a regular nested list), else None."""
    dims: list[int | None] = []
    level = [value]
    while all(isinstance(v, list) for v in level):
        size = len(level[0])
        if not size or any(len(v) != size for v in level) or len(level) * size > 100_000:
            return None
        dims.append(size)
        level = [item for v in level for item in v]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in level):
        return None
    return tuple(dims)


def _skips_first_node(entry: dict[str, Any]) -> bool:
    """Keras 2 numbers a nested model's calls from 1: call 0 is the model's own construction."""
    if not is_model_entry(entry):
        return False
    layers = entry["config"]["layers"]
    return (
        bool(layers) and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer"
    )


def _keras2_node_offsets(
    level: list[tuple[str, dict[str, Any]]], calls: dict[str, list[ConfigCall]]
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


def keras2_end_offsets(
    level: list[tuple[str, dict[str, Any]]], ends: list[tuple[str, int, int]]
) -> list[tuple[str, int, int]]:
    """A Keras 2 model's output references renumbered as its calls' are
    (:func:`_keras2_node_offsets`): a nested model's output taken straight from another
    nested model (``["tower", 1, 0]``) names that model's call 0."""
    skipping = {name for name, entry in level if _skips_first_node(entry)}
    return [(src, node - 1 if src in skipping else node, t) for src, node, t in ends]


def _numbers_across_models(
    level: list[tuple[str, dict[str, Any]]], calls: dict[str, list[ConfigCall]]
) -> None:
    """Renumber references Keras 3.0 and 3.1 wrote with a nested model's call numbers
    across every model that calls it: a nested model called inside another nested
    model first, then by this one, is referred to here as call 1 though this level
    lists one call of it. Where a level refers to as many call numbers of a nested
    model as it lists calls, some past them, they are taken in order for its calls
    (Keras numbers calls in the order they are made); any other reference past a
    layer's calls is left to be refused as damaged."""
    models = {name for name, entry in level if is_model_entry(entry)}
    used: dict[str, set[int]] = {}
    for layer_calls in calls.values():
        for call in layer_calls:
            for source, node, _ in call.inbound:
                used.setdefault(source, set()).add(node)
    for source, nodes in used.items():
        count = len(calls.get(source, ()))
        if source not in models or max(nodes) < count or len(nodes) != count:
            continue
        rank = {node: i for i, node in enumerate(sorted(nodes))}
        for layer_calls in calls.values():
            for call in layer_calls:
                call.inbound = [
                    (src, rank[node] if src == source else node, t) for src, node, t in call.inbound
                ]


def input_layer_shape(entry: dict[str, Any]) -> Shape | None:
    config = entry.get("config")
    if not isinstance(config, dict):
        return None
    return _shape(config.get("batch_shape", config.get("batch_input_shape")))


def entry_layer_name(entry: dict[str, Any]) -> str | None:
    config = entry.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return str(config["name"])
    name = entry.get("name")
    return name if isinstance(name, str) else None


def _model_words(entry: dict[str, Any]) -> str:
    """How a message names a model: ``model 'tower'``, or ``a model without a name``."""
    name = entry_layer_name(entry)
    return f"model {name!r}" if name is not None else "a model without a name"


def layer_entries(
    model_entry: dict[str, Any], where: str = "config.json", keras2: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """The layers a model config lists, checked: each an object with a unique name and a class.

    Keras 3 refuses ``/`` in a layer's name; Keras 2 (``keras2``) allows it
    (tf_keras DenseNet's ``conv1/conv``): see :func:`path_name`.
    """
    inner = model_entry.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return []
    result = []
    seen: set[str] = set()
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise FileFormatError(
                f"{where}: layer {i} of {_model_words(model_entry)} is "
                f"{type(entry).__name__}, expected an object"
            )
        name = entry_layer_name(entry)
        if name is None or not name or ("/" in name and not keras2):
            raise FileFormatError(
                f"{where}: layer {i} of {_model_words(model_entry)} has no valid name"
            )
        if not isinstance(entry.get("class_name"), str):
            raise FileFormatError(f"{where}: layer {name!r} has no class_name")
        if name in seen or path_name(name) in seen:
            raise FileFormatError(
                f"{where}: {_model_words(model_entry)} has two layers named {name!r}"
            )
        seen.add(name)
        seen.add(path_name(name))
        result.append((name, entry))
    return result


def path_name(name: str) -> str:
    """A layer's name as one step of a path: a Keras 2 name holding ``/`` has it written
    ``%2F`` (and ``%`` written ``%25``) so that the path still parts at layers; other
    names are kept as they are."""
    if "/" not in name:
        return name
    return name.replace("%", "%25").replace("/", "%2F")


def is_model_entry(entry: dict[str, Any]) -> bool:
    config = entry.get("config")
    return isinstance(config, dict) and isinstance(config.get("layers"), list)


def entry_trainable(entry: dict[str, Any]) -> bool:
    config = entry.get("config")
    return not (isinstance(config, dict) and config.get("trainable") is False)


def level_calls(
    level: list[tuple[str, dict[str, Any]]], parent: str, sequential: bool, where: str
) -> tuple[dict[str, list[ConfigCall]], list[tuple[str, int]]]:
    """Every call at one graph level, checked (:func:`_check_wiring`), and the calls in
    an order where each comes after those it takes inputs from."""
    calls: dict[str, list[ConfigCall]] = {}
    if sequential:
        previous: tuple[str, Shape | None] | None = None
        for name, entry in level:
            if entry.get("class_name") == "InputLayer":
                calls[name] = [ConfigCall([], [])]
                previous = (name, input_layer_shape(entry))
                continue
            build = entry.get("build_config")
            shape = _shape(build.get("input_shape")) if isinstance(build, dict) else None
            if previous is None:
                calls[name] = [ConfigCall([], [shape or input_layer_shape(entry)])]
            else:
                calls[name] = [ConfigCall([(previous[0], 0, 0)], [shape or previous[1]])]
            previous = (name, None)
    else:
        for name, entry in level:
            calls[name] = _calls(entry, where)
            if entry.get("class_name") == "InputLayer" and not calls[name]:
                calls[name] = [ConfigCall([], [])]

    _keras2_node_offsets(level, calls)
    _numbers_across_models(level, calls)
    return calls, _check_wiring(calls, parent, where)


def _check_wiring(
    calls: dict[str, list[ConfigCall]], parent: str, where_file: str
) -> list[tuple[str, int]]:
    """Every input names a call that exists, and no call depends on itself; returns the
    calls in topological order (each after the calls it takes inputs from)."""
    where = f"model {parent!r}" if parent else "the model"
    for name, layer_calls in calls.items():
        for index, call in enumerate(layer_calls):
            for source, node, _ in call.inbound:
                if source not in calls:
                    raise FileFormatError(
                        f"{where_file}: call {index} of layer {join_path(parent, name)!r} takes "
                        f"its input from {source!r}, which is not a layer of {where}"
                    )
                if not 0 <= node < len(calls[source]):
                    raise FileFormatError(
                        f"{where_file}: call {index} of layer {join_path(parent, name)!r} takes "
                        f"its input from call {node} of {source!r}, which has "
                        f"{len(calls[source])} call(s)"
                    )
    # Cycle check over (layer, call) pairs, iteratively (graphs can be deep).
    state: dict[tuple[str, int], int] = {}  # 1 on the current path, 2 done
    order: list[tuple[str, int]] = []
    for start_name, layer_calls in calls.items():
        for start_index in range(len(layer_calls)):
            if state.get((start_name, start_index)) == 2:
                continue
            stack = [((start_name, start_index), False)]
            while stack:
                key, leaving = stack.pop()
                if leaving:
                    state[key] = 2
                    order.append(key)
                    continue
                if state.get(key) == 2:
                    continue
                state[key] = 1
                stack.append((key, True))
                for source, node, _ in calls[key[0]][key[1]].inbound:
                    mark = state.get((source, node))
                    if mark == 1:
                        raise FileFormatError(
                            f"{where_file}: the graph of {where} has a cycle through layer "
                            f"{join_path(parent, source)!r}"
                        )
                    if mark is None:
                        stack.append(((source, node), False))
    return order
