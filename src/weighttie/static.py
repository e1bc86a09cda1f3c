"""The static reader: a model file → raw facts → :class:`Report`, without Keras.

It reads what the file states and nothing more:

* ``.keras`` (Keras 3): ``config.json`` gives the layers, nested models and every
  call with its inbound tensors and their shapes; ``model.weights.h5`` gives each
  layer's variables (shapes and dtypes, not values) under a group whose ``vars``
  carries the layer's name, and the sublayers a layer holds (an LSTM's ``cell``).
* legacy ``.h5`` (Keras 2 / tf.keras / tf_keras, and Keras 3's legacy format): the
  ``model_config`` attribute and the ``model_weights`` group, whose
  ``weight_names`` name every variable.

Where the file does not state a fact (a call's output shape that nothing
consumes, the class of a sublayer, the names of an unknown layer's variables) the
report says so (null, ``?``, numbered names) rather than guess. Ties declared in
the file are applied as :func:`weighttie.load_model` would bind them.

This module imports neither Keras nor any backend.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from weighttie.archive import MAX_DEPTH, KerasArchive, file_ties, iter_layer_configs
from weighttie.errors import FileFormatError
from weighttie.graph import ROOT, RawLayer, RawVariable, build_report, join_path
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.loading import FileKind, check_model_file
from weighttie.report import CallNode, Finding, InboundRef, ModelInfo, Report, Shape, Tie

__all__ = ["MODEL_CLASSES", "UNKNOWN_CLASS", "read_report", "variable_names"]

#: Classes whose config lists their layers (a functional graph or a layer stack).
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: The class shown for a sublayer the file does not name the class of.
UNKNOWN_CLASS = "?"
#: Most HDF5 objects weighttie visits in a weights file (a layer takes about four).
MAX_H5_OBJECTS = 500_000
#: Time allowed to walk a weights file: a base plus a share per object visited.
H5_SECONDS = 5.0
H5_SECONDS_PER_OBJECT = 0.002
#: Time allowed to read values for findings: a base, plus shares per megabyte read
#: and per variable read (healthy files: about 1 ms a variable, 1 ms a megabyte).
VALUES_SECONDS = 10.0
VALUES_SECONDS_PER_MB = 0.01
VALUES_SECONDS_PER_READ = 0.005

_NON_TRAINABLE = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
_RNN_CELLS = {"LSTM": "LSTMCell", "GRU": "GRUCell", "SimpleRNN": "SimpleRNNCell"}
_ROOT_SKIP = frozenset({"optimizer", "compile_metrics", "_compile_metrics", "loss", "metrics"})

# -- variable names by class ------------------------------------------------------


def _kernel_bias(config: dict[str, Any]) -> list[str]:
    return ["kernel"] + (["bias"] if config.get("use_bias", True) else [])


def _norm(config: dict[str, Any]) -> list[str]:
    names = []
    if config.get("scale", True):
        names.append("gamma")
    if config.get("center", True):
        names.append("beta")
    return names


_NAMES: dict[str, Any] = {
    **{
        cls: _kernel_bias
        for cls in (
            "Dense",
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "Conv1DTranspose",
            "Conv2DTranspose",
            "Conv3DTranspose",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
            "LSTMCell",
            "GRUCell",
            "SimpleRNNCell",
        )
    },
    "SeparableConv1D": lambda c: (
        ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if c.get("use_bias", True) else [])
    ),
    "SeparableConv2D": lambda c: (
        ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if c.get("use_bias", True) else [])
    ),
    "EinsumDense": lambda c: ["kernel"] + (["bias"] if c.get("bias_axes") else []),
    "Embedding": lambda c: ["embeddings"],
    "BatchNormalization": lambda c: [*_norm(c), "moving_mean", "moving_variance"],
    "LayerNormalization": _norm,
    "GroupNormalization": _norm,
    "PReLU": lambda c: ["alpha"],
}
_RECURRENT = ("LSTMCell", "GRUCell", "SimpleRNNCell")


def variable_names(class_name: str, config: dict[str, Any], count: int) -> list[str]:
    """The Keras names of a layer's ``count`` own variables, in saving order.

    Known classes are named as Keras names them; others, or a count that does not
    fit, are numbered ``"0"``, ``"1"`` … (the file does not name them).
    """
    builder = _NAMES.get(class_name)
    if builder is not None:
        names: list[str] = builder(config)
        if class_name in _RECURRENT:
            names = ["kernel", "recurrent_kernel", *names[1:]]
        if len(names) == count:
            return names
    return [str(i) for i in range(count)]


# -- shapes from config -----------------------------------------------------------


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


def _keras_tensors(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The ``__keras_tensor__`` entries of a serialized call argument, in ``tree.flatten`` order."""
    if depth > MAX_DEPTH:
        raise FileFormatError("a call argument in config.json is nested too deeply")
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            if isinstance(config, dict):
                yield config
            return
        for key in sorted(value, key=str):
            yield from _keras_tensors(value[key], depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _keras_tensors(item, depth + 1)


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
            for tensor in _keras_tensors([node.get("args", []), node.get("kwargs", {})]):
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


# -- the h5 tree of a .keras archive --------------------------------------------------


@dataclass
class _Group:
    """One saveable in model.weights.h5: its variables and its child saveables."""

    name: str | None
    variables: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    layers: list[_Group] = field(default_factory=list)  # under "layers/" (models)
    attributes: dict[str, _Group] = field(default_factory=dict)  # other child saveables


def _read_group(h5: Any, handles: dict[str, Any] | None = None) -> _Group:
    """Read the tree of saveables in model.weights.h5: names, variable shapes and dtypes.

    One pass of HDF5's own visitor (``h5o.visit``) over the file's objects: the
    high-level h5py API costs twice as much per object, which on a large model is
    most of the static reader's time.
    """
    import numpy as np
    from h5py import h5a, h5d, h5o

    root = _Group(name=None)
    groups: dict[str, _Group] = {"": root}
    datasets: list[tuple[str, tuple[int, ...], str]] = []
    named: list[tuple[str, Any]] = []
    fid = h5.id

    visited = 0
    started = time.monotonic()

    def visit(raw: bytes, info: Any) -> None:
        nonlocal visited
        visited += 1
        if visited > MAX_H5_OBJECTS:
            raise FileFormatError(
                f"model.weights.h5 holds more than {MAX_H5_OBJECTS:,} objects; refusing it"
            )
        # A damaged object can make one HDF5 call take seconds; a file of them must
        # not hang the reader. Healthy files take about 0.25 ms an object.
        budget = H5_SECONDS + H5_SECONDS_PER_OBJECT * visited
        if time.monotonic() - started > budget:
            raise FileFormatError(
                f"model.weights.h5 is damaged: reading {visited:,} objects took longer than "
                f"{budget:.0f} s"
            )
        name = raw.decode("utf-8", "replace")
        parts = name.split("/")
        if len(parts) > 3 * MAX_DEPTH:
            raise FileFormatError("model.weights.h5 is nested too deeply")
        if info.type == h5o.TYPE_DATASET:
            ds = h5d.open(fid, raw)
            datasets.append((name, tuple(int(d) for d in ds.shape), str(ds.dtype)))
            if handles is not None:  # kept open: findings read values through them
                handles["/" + name] = ds
        elif info.type == h5o.TYPE_GROUP:
            if parts[-1] == "vars":
                obj = h5o.open(fid, raw)
                if h5a.exists(obj, b"name"):
                    attr = h5a.open(obj, b"name")
                    if attr.shape == ():  # a layer name is one string; anything else is not
                        value = np.empty((), dtype=attr.dtype)
                        attr.read(value)
                        named.append((name, value[()]))
            elif parts[-1] != "layers":
                groups[name] = _Group(name=None)

    h5o.visit(fid, visit, info=True)
    # Link each saveable group to its parent: "a/layers/b" is a layer of "a",
    # "a/cell" an attribute of "a".
    for name in sorted(groups, key=lambda n: (n.count("/"), n)):
        if not name:
            continue
        parent, _, key = name.rpartition("/")
        if parent.endswith("layers") and parent.rpartition("/")[2] == "layers":
            owner = groups.get(parent.rpartition("/")[0])
            if owner is not None:
                owner.layers.append(groups[name])
            continue
        owner = groups.get(parent)
        if owner is not None:
            owner.attributes[key] = groups[name]
    for name, value in named:
        group = groups.get(name.rpartition("/")[0] if "/" in name else "")
        if group is not None:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            group.name = value if isinstance(value, str) else None
    for name, shape, dtype in datasets:
        owner_path, _, index = name.rpartition("/")
        vars_owner, _, leaf = owner_path.rpartition("/")
        if leaf != "vars" or not index.isdigit():
            continue
        group = groups.get(vars_owner if "/" in owner_path else "")
        if group is not None:
            group.variables.append(("/" + name, shape, dtype))
    for group in groups.values():
        group.variables.sort(key=lambda v: int(v[0].rpartition("/")[2]))
    return root


# -- building rows ------------------------------------------------------------------


class _Reader:
    def __init__(self) -> None:
        self.rows: list[RawLayer] = []
        self.variables: dict[Hashable, RawVariable] = {}
        self.entries: dict[str, dict[str, Any]] = {}

    def add(
        self,
        path: str,
        name: str,
        class_name: str,
        parent: str | None,
        is_model: bool,
        nodes: tuple[CallNode, ...] | None,
        variables: list[tuple[str, tuple[int, ...], str]],
        names: list[str],
        trainable: bool,
    ) -> None:
        keys = []
        for (key, shape, dtype), var_name in zip(variables, names, strict=True):
            self.variables[key] = RawVariable(
                key=key,
                name=var_name,
                shape=shape,
                dtype=dtype,
                trainable=trainable and var_name not in _NON_TRAINABLE,
            )
            keys.append(key)
        self.rows.append(
            RawLayer(
                path=path,
                name=name,
                class_name=class_name,
                parent=parent,
                identity=path,
                is_model=is_model,
                nodes=nodes,
                variables=tuple(keys),
            )
        )

    # .keras ---------------------------------------------------------------------

    def keras_model(
        self, entry: dict[str, Any], group: _Group | None, path: str, trainable: bool, depth: int
    ) -> None:
        if depth > MAX_DEPTH:
            raise FileFormatError("config.json nests models too deeply")
        level = _layer_entries(entry)
        sequential = entry.get("class_name") == "Sequential"
        nodes = _graph_nodes(level, path, sequential)
        by_name: dict[str, _Group] = {}
        if group is not None:
            for child in [*group.layers, *group.attributes.values()]:
                if child.name is not None:
                    by_name.setdefault(child.name, child)
        for name, child_entry in level:
            child_path = join_path(path, name)
            self.keras_layer(
                child_entry,
                by_name.get(name),
                child_path,
                path,
                nodes.get(name, ()),
                trainable and _trainable(child_entry),
                depth + 1,
            )

    def keras_layer(
        self,
        entry: dict[str, Any],
        group: _Group | None,
        path: str,
        parent: str,
        nodes: tuple[CallNode, ...] | None,
        trainable: bool,
        depth: int,
    ) -> None:
        class_name = str(entry.get("class_name", UNKNOWN_CLASS))
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        variables = group.variables if group is not None else []
        self.entries[path] = entry
        self.add(
            path,
            path.rsplit("/", 1)[-1],
            class_name,
            parent,
            _is_model(entry),
            nodes,
            variables,
            variable_names(class_name, config, len(variables)),  # type: ignore[arg-type]
            trainable,
        )
        if _is_model(entry):
            self.keras_model(entry, group, path, trainable, depth)
        elif group is not None:
            self.sublayers(group, class_name, config, path, trainable, depth)  # type: ignore[arg-type]

    def sublayers(
        self,
        group: _Group,
        class_name: str,
        config: dict[str, Any],
        path: str,
        trainable: bool,
        depth: int,
    ) -> None:
        if depth > MAX_DEPTH:
            raise FileFormatError("model.weights.h5 nests layers too deeply")
        children = [(key, child) for key, child in sorted(group.attributes.items())]
        children += [(str(i), child) for i, child in enumerate(group.layers)]
        taken: set[str] = set()
        for key, child in children:
            if child.name is None:
                continue
            child_path = join_path(path, child.name)
            if child_path in taken:
                continue
            taken.add(child_path)
            sub_class, sub_config = _sublayer_class(class_name, config, key)
            self.add(
                child_path,
                child.name,
                sub_class,
                path,
                False,
                None,
                child.variables,
                variable_names(sub_class, sub_config, len(child.variables)),
                trainable,
            )
            self.sublayers(child, sub_class, sub_config, child_path, trainable, depth + 1)


def _sublayer_class(
    parent_class: str, parent_config: dict[str, Any], key: str
) -> tuple[str, dict[str, Any]]:
    """The class of a sublayer saved under attribute ``key``, where the file says it."""
    if key == "cell" and parent_class in _RNN_CELLS:
        return _RNN_CELLS[parent_class], parent_config
    candidates = {"forward_layer": "layer", "backward_layer": "backward_layer", "layer": "layer"}
    config_key = candidates.get(key, key)
    sub = parent_config.get(config_key)
    if key == "backward_layer" and not isinstance(sub, dict):
        sub = parent_config.get("layer")
    if isinstance(sub, dict) and isinstance(sub.get("class_name"), str):
        sub_config = sub.get("config")
        return sub["class_name"], sub_config if isinstance(sub_config, dict) else {}
    return UNKNOWN_CLASS, {}


# -- ties -----------------------------------------------------------------------------


def _apply_ties(reader: _Reader, config: dict[str, Any]) -> list[Tie]:
    """Merge the variables of each declared tie's target into its source's, as load_model binds."""
    ties = file_ties(config)
    if not ties:
        return []
    rows = {row.path: row for row in reader.rows}
    children: dict[str, list[str]] = {}
    for row in reader.rows:
        if row.parent is not None and row.path != ROOT:
            children.setdefault(row.parent, []).append(row.path)
    merge: dict[Hashable, Hashable] = {}
    result = []

    def pair(
        source: str, target: str, names: tuple[str, ...] | None
    ) -> list[tuple[Any, Any]] | None:
        s_row, t_row = rows[source], rows[target]
        if s_row.class_name != t_row.class_name:
            return None
        s_vars = {reader.variables[k].name: k for k in s_row.variables}
        t_vars = {reader.variables[k].name: k for k in t_row.variables}
        pairs = []
        for name, t_key in t_vars.items():
            if names is not None and name not in names:
                continue
            s_key = s_vars.get(name)
            if s_key is None or reader.variables[s_key].shape != reader.variables[t_key].shape:
                return None
            pairs.append((t_key, s_key))
        s_subs, t_subs = children.get(source, []), children.get(target, [])
        if len(s_subs) != len(t_subs):
            return None
        for s_sub, t_sub in zip(s_subs, t_subs, strict=True):
            sub = pair(s_sub, t_sub, names)
            if sub is None:
                return None
            pairs += sub
        return pairs

    for tie in ties:
        if tie.source not in rows or tie.target not in rows:
            continue
        pairs = pair(tie.source, tie.target, tie.variables)
        names = tie.variables
        if pairs:
            for t_key, s_key in pairs:
                merge[t_key] = s_key
            if names is None:
                names = tuple(sorted({reader.variables[t].name for t, _ in pairs}))
        result.append(
            Tie(source=tie.source, target=tie.target, variables=names or (), bound=bool(pairs))
        )

    def root(key: Hashable) -> Hashable:
        seen = set()
        while key in merge and key not in seen:
            seen.add(key)
            key = merge[key]
        return key

    reader.rows = [
        RawLayer(**{**row.__dict__, "variables": tuple(root(k) for k in row.variables)})
        for row in reader.rows
    ]
    return result


# -- entry points ---------------------------------------------------------------------


def _dataset_chunks(
    h5: Any, key: str, handles: dict[str, Any], budget: int = 1 << 20
) -> Iterator[bytes]:
    """A dataset's values as bytes, about ``budget`` bytes a read (never all at once).

    Small datasets are read through the low-level API: on a model with hundreds
    of candidate variables h5py's high-level lookup is most of the cost.
    """
    import numpy as np
    from h5py import h5d, h5s

    dataset = handles.get(key) or h5d.open(h5.id, key.encode())
    shape, dtype = dataset.shape, dataset.dtype
    total = int(np.prod(shape)) * dtype.itemsize
    if total <= budget or not shape:
        values = np.empty(shape, dtype=dtype)
        dataset.read(h5s.ALL, h5s.ALL, values)
        yield values.tobytes()
        return
    # Slice along the first axis longer than 1 ((1, 1, 728, 728) kernels are common),
    # a small first read (samples stop there), then about ``budget`` bytes a read.
    handle = h5[key]
    axis = next(i for i, d in enumerate(shape) if d > 1)
    lead = (0,) * axis
    row_bytes = max(1, total // shape[axis])
    start, step = 0, max(1, (64 * 1024) // row_bytes)
    while start < shape[axis]:
        yield np.ascontiguousarray(handle[(*lead, slice(start, start + step))]).tobytes()
        start += step
        step = max(1, budget // row_bytes)


def _static_findings(
    reader: _Reader, report: Report, h5: Any, handles: dict[str, Any]
) -> tuple[Finding, ...]:
    from weighttie.findings import config_fingerprint, find_findings
    from weighttie.graph import variable_paths

    keys = {
        path: key for key, path in variable_paths(reader.rows, reader.variables.values()).items()
    }

    def fingerprint(path: str) -> str | None:
        entry = reader.entries.get(path)
        if entry is None or not isinstance(entry.get("config"), dict):
            return None
        return config_fingerprint(entry["config"])

    started = time.monotonic()
    read = opened = 0

    def paced(path: str) -> Iterator[bytes]:
        nonlocal read, opened
        opened += 1
        for chunk in _dataset_chunks(h5, str(keys[path]), handles):
            read += len(chunk)
            budget = (
                VALUES_SECONDS
                + VALUES_SECONDS_PER_MB * read / 1e6
                + VALUES_SECONDS_PER_READ * opened
            )
            if time.monotonic() - started > budget:
                raise FileFormatError(
                    f"model.weights.h5 is damaged: reading {read / 1e6:.0f} MB of values "
                    f"took longer than {budget:.0f} s"
                )
            yield chunk

    return find_findings(report, fingerprint=fingerprint, chunks=paced)


@contextmanager
def _h5_errors(path: str, what: str) -> Iterator[None]:
    """HDF5 reports damage with many exception types; turn each into one clear error."""
    try:
        yield
    except FileFormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise FileFormatError(
            f"{path!r}: {what} is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None


def _read_keras(path: str, findings: bool) -> Report:
    with KerasArchive(path) as archive:
        config = archive.config()
        metadata = archive.metadata()
        if not archive.has("model.weights.h5"):
            raise FileFormatError(
                f"{path!r} has no model.weights.h5; expected a .keras archive written by "
                "Keras 3 (config.json, metadata.json, model.weights.h5)"
            )
        with archive.weights() as h5, _h5_errors(path, "model.weights.h5"):
            handles: dict[str, Any] = {}
            group = _read_group(h5, handles if findings else None)
            reader, report = _keras_report(path, config, metadata, group)
            if findings:
                report = replace(report, findings=_static_findings(reader, report, h5, handles))
    return report


def _keras_report(
    path: str, config: dict[str, Any], metadata: dict[str, Any], group: _Group
) -> tuple[_Reader, Report]:
    reader = _Reader()
    class_name = str(config.get("class_name", UNKNOWN_CLASS))
    name = _layer_name(config) or "model"
    root_trainable = _trainable(config)
    reader.add(
        ROOT,
        name,
        class_name,
        None,
        True,
        None,
        group.variables,
        [str(i) for i in range(len(group.variables))],
        root_trainable,
    )
    if _is_model(config):
        reader.keras_model(config, group, ROOT, root_trainable, 0)
    elif class_name in MODEL_CLASSES:
        raise FileFormatError(
            f"{path!r}: config.json describes a {class_name} model without a list of layers"
        )
    else:  # a subclassed model: the weights file is the only map of its layers
        reader.sublayers(group, class_name, {}, ROOT, root_trainable, 0)
    ties = _apply_ties(reader, config)
    version = metadata.get("keras_version")
    info = ModelInfo(
        name=name,
        class_name=class_name,
        source="static",
        file=path,
        keras_version=version if isinstance(version, str) else None,
    )
    return reader, build_report(info, reader.rows, reader.variables.values(), ties=ties)


def _attr_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _read_legacy_h5(path: str, findings: bool) -> Report:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{path!r} is not a readable HDF5 file: {exc}") from None
    with h5, _h5_errors(path, "the file"):
        text = _attr_text(h5.attrs.get("model_config"))
        if text is None:
            raise FileFormatError(
                f"{path!r} is an HDF5 file without a model_config attribute: it holds "
                "weights only (save_weights) or is not a Keras model"
            )
        if len(text) > 256 * 1024 * 1024:
            raise FileFormatError(f"{path!r}: model_config is larger than weighttie reads")
        try:
            config = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise FileFormatError(f"{path!r}: model_config is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise FileFormatError(f"{path!r}: model_config must be a JSON object")
        weights = h5.get("model_weights")
        version = _attr_text(h5.attrs.get("keras_version"))
        reader = _Reader()
        class_name = str(config.get("class_name", UNKNOWN_CLASS))
        name = _layer_name(config) or "model"
        reader.add(ROOT, name, class_name, None, True, None, [], [], True)
        _legacy_model(reader, config, weights, ROOT, _trainable(config), 0)
    info = ModelInfo(
        name=name, class_name=class_name, source="static", file=path, keras_version=version
    )
    report = build_report(info, reader.rows, reader.variables.values())
    if findings:
        with h5py.File(path, "r") as h5, _h5_errors(path, "the weights"):
            report = replace(report, findings=_static_findings(reader, report, h5, {}))
    return report


def _legacy_weights(group: Any) -> list[tuple[str, tuple[int, ...], str, str]]:
    """(dataset key, shape, dtype, weight name) for a legacy layer group."""
    import h5py

    if not isinstance(group, h5py.Group):
        return []
    names = group.attrs.get("weight_names")
    result = []
    for raw in list(names) if names is not None else []:
        weight = _attr_text(raw)
        if not weight:
            continue
        dataset = group.get(weight)
        if isinstance(dataset, h5py.Dataset):
            result.append(
                (dataset.name, tuple(int(d) for d in dataset.shape), str(dataset.dtype), weight)
            )
    return result


def _legacy_model(
    reader: _Reader,
    entry: dict[str, Any],
    weights: Any,
    path: str,
    trainable: bool,
    depth: int,
    inherited: list[tuple[str, tuple[int, ...], str, str]] | None = None,
) -> None:
    """Rows of one legacy model level; ``inherited``: a nested model's weights, by inner layer."""
    if depth > MAX_DEPTH:
        raise FileFormatError("model_config nests models too deeply")
    level = _layer_entries(entry)
    nodes = _graph_nodes(level, path, entry.get("class_name") == "Sequential")
    names_here = {name for name, _ in level}
    for name, child in level:
        child_path = join_path(path, name)
        child_trainable = trainable and _trainable(child)
        if inherited is not None:
            # A nested model's weights are named by the layer that made them: this
            # layer's own, or (for a nested model) a layer anywhere in its subtree.
            subtree = (
                {p.rpartition("/")[2] for p, _ in iter_layer_configs(child)} - names_here
                if _is_model(child)
                else set()
            )
            own = [
                w
                for w in inherited
                if (first := _weight_parts(w[3])[0]) == name or first in subtree
            ]
        else:
            own = _legacy_weights(weights.get(name) if weights is not None else None)
        class_name = str(child.get("class_name", UNKNOWN_CLASS))
        if _is_model(child):
            reader.add(
                child_path,
                name,
                class_name,
                path,
                True,
                nodes.get(name, ()),
                [],
                [],
                child_trainable,
            )
            _legacy_model(reader, child, None, child_path, child_trainable, depth + 1, own)
            continue
        direct = [w for w in own if len(_weight_parts(w[3])) <= 2]
        reader.add(
            child_path,
            name,
            class_name,
            path,
            False,
            nodes.get(name, ()),
            [(k, s, d) for k, s, d, _ in direct],
            [_weight_parts(w)[-1] for _, _, _, w in direct],
            child_trainable,
        )
        nested: dict[str, list[tuple[str, tuple[int, ...], str, str]]] = {}
        for w in own:
            parts = _weight_parts(w[3])
            if len(parts) > 2:
                nested.setdefault(parts[1], []).append(w)
        config = child.get("config") if isinstance(child.get("config"), dict) else {}
        for sub_name, sub_weights in nested.items():
            sub_class, _ = _sublayer_class(class_name, config, "cell")  # type: ignore[arg-type]
            reader.add(
                join_path(child_path, sub_name),
                sub_name,
                sub_class,
                child_path,
                False,
                None,
                [(k, s, d) for k, s, d, _ in sub_weights],
                [_weight_parts(w)[-1] for _, _, _, w in sub_weights],
                child_trainable,
            )


def _weight_parts(weight: str) -> list[str]:
    return weight.split(":", 1)[0].split("/")


def read_report(
    path: str | os.PathLike[str], *, findings: bool = True, limits: Limits = DEFAULT_LIMITS
) -> Report:
    """Build a Report from a model file alone, importing neither Keras nor a backend.

    With ``findings`` (the default) the values of same-shaped variables are hashed,
    streamed from the file in chunks, to find ``broken-tie``; nothing else reads
    values.

    Raises:
        MissingFileError, FileFormatError: the file cannot be read as a Keras model.

    Example:
        >>> report = read_report("siamese.keras")     # doctest: +SKIP
        >>> report.model.source
        'static'
    """
    file = os.fspath(path)
    kind = check_model_file(file)
    if kind is FileKind.KERAS:
        return _read_keras(file, findings)
    return _read_legacy_h5(file, findings)
