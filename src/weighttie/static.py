"""The static reader: a model file → raw facts → :class:`Report`, without Keras.

It reads what the file states and nothing more:

Everything it reads is bounded by :class:`~weighttie.limits.Limits` (layers,
calls, nesting, config bytes, HDF5 objects) before the work that grows with it,
and a weights file must be self-contained: external storage, external or
dangling links, virtual datasets and filters HDF5 would load as plugins are
refused before any value is read (:func:`check_before_load` makes the same checks
before Keras opens a file).

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
the file are applied as :func:`weighttie.load_model` would bind them, once their
saved copies are found to hold equal values (a tie whose copies differ is reported
unbound, with a ``broken-tie`` finding).

This module imports neither Keras nor any backend.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from weighttie.archive import (
    WEIGHTS,
    KerasArchive,
    file_ties,
    iter_layer_configs,
    open_h5,
    parse_model_config,
)
from weighttie.errors import FileFormatError, LimitError
from weighttie.facts import ModelFacts, RawLayer, RawVariable, ValueAccess
from weighttie.graph import ROOT, build_report, join_path, variable_paths
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.loading import FileKind, check_model_file, open_model_file
from weighttie.report import (
    CallNode,
    Finding,
    InboundRef,
    ModelInfo,
    Report,
    Shape,
    Source,
    Tie,
)

__all__ = [
    "MODEL_CLASSES",
    "UNKNOWN_CLASS",
    "check_before_load",
    "read_report",
    "variable_names",
]

#: Classes whose config lists their layers (a functional graph or a layer stack).
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: The class shown for a sublayer the file does not name the class of.
UNKNOWN_CLASS = "?"
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


# -- walking a weights file -------------------------------------------------------------

#: Filters HDF5 (and h5py, for LZF) have built in. Any other filter id makes HDF5
#: search its plugin directories and load a shared library when values are read.
_BUILTIN_FILTERS = frozenset({1, 2, 3, 5, 6, 32000})  # deflate shuffle fletcher32 nbit
#                                                      scaleoffset lzf
_SELF_CONTAINED = "weighttie reads only self-contained weights files"


class _Pace:
    """A time budget that grows with the work done: ``base + per_item × items`` seconds.

    A damaged HDF5 object can make one call take seconds; a file full of them must
    not hang the reader.
    """

    def __init__(self, what: str, base: float, per_item: float) -> None:
        self.what, self.base, self.per_item = what, base, per_item
        self.started = time.monotonic()

    def check(self, items: int, doing: str) -> None:
        budget = self.base + self.per_item * items
        if time.monotonic() - self.started > budget:
            raise FileFormatError(
                f"{self.what} is damaged: {doing} took longer than {budget:.0f} s"
            )


def _check_links(h5: Any, where: str, limits: Limits) -> None:
    """Refuse links that lead out of the file: external, user-defined, dangling soft links.

    HDF5's object visitor follows hard links only, and so does everything that
    follows; but Keras opens datasets by path, through whatever link is there.
    """
    from h5py import h5l

    links = h5.id.links
    hard: set[bytes] = set()
    other: list[tuple[bytes, int]] = []
    pace = _Pace(where, H5_SECONDS, H5_SECONDS_PER_OBJECT)
    stopped: list[FileFormatError] = []

    def visit(name: bytes, info: Any) -> bool | None:
        # h5py's link visitor cannot pass an exception on (it raises SystemError):
        # a refusal is kept, the visit stopped (a value other than None), and raised after.
        count = len(hard) + len(other) + 1
        try:
            if count > limits.h5_objects:
                raise LimitError(
                    f"{where} holds more than {limits.h5_objects:,} HDF5 links, "
                    "the h5_objects limit",
                    limit="h5_objects",
                )
            pace.check(count, f"listing {count:,} links")
        except FileFormatError as exc:
            stopped.append(exc)
            return True
        if info.type == h5l.TYPE_HARD:
            hard.add(name)
        else:  # resolved after the visit: h5py must not be re-entered from its callback
            other.append((name, info.type))
        return None

    links.visit(visit, info=True)
    if stopped:
        raise stopped[0]
    for name, kind in other:
        if kind == h5l.TYPE_SOFT:
            target = links.get_val(name)
            if _resolve_soft(name, target) not in hard:
                raise FileFormatError(
                    f"{where} holds a soft link {_text(name)!r} to {_text(target)!r}, which "
                    f"names no object of the file; {_SELF_CONTAINED}"
                )
        elif kind == h5l.TYPE_EXTERNAL:
            file, target = links.get_val(name)
            raise FileFormatError(
                f"{where} links {_text(name)!r} to object {_text(target)!r} of another file "
                f"({_text(file)!r}); {_SELF_CONTAINED}"
            )
        else:
            raise FileFormatError(
                f"{where} holds {_text(name)!r}, a user-defined link (class {kind}) HDF5 "
                f"would resolve through a plugin; {_SELF_CONTAINED}"
            )


def _resolve_soft(name: bytes, target: bytes) -> bytes:
    """The path (relative to the root, as the link visitor names objects) a soft link names."""
    base = [] if target.startswith(b"/") else name.split(b"/")[:-1]
    parts: list[bytes] = list(base)
    for part in target.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":  # HDF5 has no "..": a literal name, which no Keras file uses
            return b"\0"
        parts.append(part)
    return b"/".join(parts)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _check_dataset(dataset: Any, name: str, where: str) -> None:
    """Refuse a dataset whose values live outside the file or need a filter plugin.

    Only the creation property list is read: for a virtual dataset, even asking
    for its shape can open the source files.
    """
    from h5py import h5d

    plist = dataset.get_create_plist()
    if plist.get_layout() == h5d.VIRTUAL:
        source = _text(plist.get_virtual_filename(0)) if plist.get_virtual_count() else "?"
        raise FileFormatError(
            f"{where} stores dataset {name!r} as a virtual dataset mapped from "
            f"{source!r}; {_SELF_CONTAINED}"
        )
    if plist.get_external_count():
        raise FileFormatError(
            f"{where} stores dataset {name!r} in an external file "
            f"({_text(plist.get_external(0)[0])!r}); {_SELF_CONTAINED}"
        )
    for index in range(plist.get_nfilters()):
        code, _, _, filter_name = plist.get_filter(index)
        if code not in _BUILTIN_FILTERS:
            raise FileFormatError(
                f"{where} stores dataset {name!r} through HDF5 filter {code} "
                f"({_text(filter_name) or 'unnamed'}), which is not built into HDF5: reading "
                "it would load a plugin library from this machine; weighttie reads only "
                "datasets stored plain or with HDF5's built-in filters"
            )


def _walk_h5(
    h5: Any,
    where: str,
    limits: Limits,
    on_dataset: Callable[[str, Any], None] | None = None,
    on_group: Callable[[bytes, str], None] | None = None,
) -> None:
    """Check a weights file and visit its objects, within ``limits``, before any value is read.

    Links are checked first; then one pass of HDF5's own visitor (``h5o.visit``)
    over the objects: the high-level h5py API costs twice as much per object, which
    on a large model is most of the static reader's time. Each dataset is checked
    (:func:`_check_dataset`) before ``on_dataset`` sees it.
    """
    from h5py import h5d, h5o

    _check_links(h5, where, limits)
    fid = h5.id
    visited = 0
    pace = _Pace(where, H5_SECONDS, H5_SECONDS_PER_OBJECT)

    def visit(raw: bytes, info: Any) -> None:
        nonlocal visited
        visited += 1
        if visited > limits.h5_objects:
            raise LimitError(
                f"{where} holds more than {limits.h5_objects:,} HDF5 objects, the h5_objects limit",
                limit="h5_objects",
            )
        pace.check(visited, f"reading {visited:,} objects")  # healthy: 0.25 ms an object
        name = raw.decode("utf-8", "replace")
        # A layer's variables sit some three groups deeper per level (layers/<name>/vars/0).
        if name.count("/") > 3 * (limits.depth + 1):
            raise LimitError(
                f"{where} nests groups more than {3 * (limits.depth + 1)} levels deep, "
                "the depth limit",
                limit="depth",
            )
        if info.type == h5o.TYPE_DATASET:
            dataset = h5d.open(fid, raw)
            _check_dataset(dataset, name, where)
            if on_dataset is not None:
                on_dataset(name, dataset)
        elif info.type == h5o.TYPE_GROUP and on_group is not None:
            on_group(raw, name)

    h5o.visit(fid, visit, info=True)


# -- the h5 tree of a .keras archive --------------------------------------------------


@dataclass
class _Group:
    """One saveable in model.weights.h5: its variables and its child saveables."""

    name: str | None
    variables: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    layers: list[_Group] = field(default_factory=list)  # under "layers/" (models)
    attributes: dict[str, _Group] = field(default_factory=dict)  # other child saveables


def _read_group(
    h5: Any, where: str, limits: Limits, handles: dict[str, Any] | None = None
) -> _Group:
    """Read the tree of saveables in model.weights.h5: names, variable shapes and dtypes."""
    import numpy as np
    from h5py import h5a, h5o

    root = _Group(name=None)
    groups: dict[str, _Group] = {"": root}
    datasets: list[tuple[str, tuple[int, ...], str]] = []
    named: list[tuple[str, Any]] = []

    def on_dataset(name: str, ds: Any) -> None:
        datasets.append((name, tuple(int(d) for d in ds.shape), str(ds.dtype)))
        if handles is not None:  # kept open: values are read through them
            handles["/" + name] = ds

    def on_group(raw: bytes, name: str) -> None:
        last = name.rpartition("/")[2]
        if last == "vars":
            obj = h5o.open(h5.id, raw)
            if h5a.exists(obj, b"name"):
                attr = h5a.open(obj, b"name")
                if attr.shape == ():  # a layer name is one string; anything else is not
                    value = np.empty((), dtype=attr.dtype)
                    attr.read(value)
                    named.append((name, value[()]))
        elif last != "layers":
            groups[name] = _Group(name=None)

    _walk_h5(h5, where, limits, on_dataset, on_group)
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
    """Collects the rows and variables of one file, counting layers and calls against limits."""

    def __init__(self, where: str, limits: Limits) -> None:
        self.where = where
        self.limits = limits
        self.rows: list[RawLayer] = []
        self.variables: dict[Hashable, RawVariable] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.layers = 0
        self.calls = 0

    def _count(self, path: str, nodes: tuple[CallNode, ...] | None) -> None:
        """Keep layers and calls within limits.

        The config's are counted as it is parsed; here the weights file's sublayers
        and a Sequential model's implied calls join them.
        """
        self.layers += path != ROOT
        if self.layers > self.limits.layers:
            raise LimitError(
                f"{self.where} holds more than {self.limits.layers:,} layers, the layers limit",
                limit="layers",
            )
        self.calls += len(nodes or ())
        if self.calls > self.limits.calls:
            raise LimitError(
                f"{self.where} records more than {self.limits.calls:,} calls of layers, "
                "the calls limit",
                limit="calls",
            )

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
        self._count(path, nodes)
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
        if depth > self.limits.depth:
            raise LimitError(
                f"{self.where}: config.json nests models more than {self.limits.depth} levels "
                "deep, the depth limit",
                limit="depth",
            )
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
        """The sublayers the weights file shows below ``path`` (at ``depth``, as a path's
        slashes count)."""
        children = [(key, child) for key, child in sorted(group.attributes.items())]
        children += [(str(i), child) for i, child in enumerate(group.layers)]
        children = [(key, child) for key, child in children if child.name is not None]
        if children and depth > self.limits.depth:
            raise LimitError(
                f"{self.where}: model.weights.h5 nests layers more than {self.limits.depth} "
                "levels deep, the depth limit",
                limit="depth",
            )
        taken: set[str] = set()
        for key, child in children:
            assert child.name is not None
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


@dataclass(frozen=True)
class _DifferingTie:
    """A declared tie whose saved copies differ: the (target, source) keys of those that do,
    and the parameters the tie would share."""

    source: str
    target: str
    copies: tuple[tuple[Hashable, Hashable], ...]
    params: int


def _apply_ties(
    reader: _Reader, config: dict[str, Any], values: _Values
) -> tuple[list[Tie], list[_DifferingTie]]:
    """Merge the variables of each declared tie's target into its source's, as load_model binds.

    A tie binds only when the layers fit (class, variable names, shapes, dtypes)
    and the file's two copies of each variable hold equal values, which is what
    :func:`weighttie.load_model` requires; the copies are compared in full, streamed.
    """
    ties = file_ties(config, limits=reader.limits)
    if not ties:
        return [], []
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
            if s_key is None or not _same_spec(reader.variables[s_key], reader.variables[t_key]):
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

    differing: list[_DifferingTie] = []
    for tie in ties:
        if tie.source not in rows or tie.target not in rows:
            continue
        pairs = pair(tie.source, tie.target, tie.variables) or []
        names = tie.variables
        if pairs and names is None:
            names = tuple(sorted({reader.variables[t].name for t, _ in pairs}))
        unequal = tuple((t, s) for t, s in pairs if not values.equal(str(t), str(s)))
        if unequal:
            params = sum(_size(reader.variables[t].shape) for t, _ in pairs)
            differing.append(_DifferingTie(tie.source, tie.target, unequal, params))
        elif pairs:
            for t_key, s_key in pairs:
                merge[t_key] = s_key
        result.append(
            Tie(
                source=tie.source,
                target=tie.target,
                variables=names or (),
                bound=bool(pairs) and not unequal,
            )
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
    return result, differing


def _same_spec(a: RawVariable, b: RawVariable) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _differing_tie_findings(reader: _Reader, differing: list[_DifferingTie]) -> list[Finding]:
    from weighttie.findings import differing_tie

    if not differing:
        return []
    paths = variable_paths(reader.rows, reader.variables.values())
    return [
        differing_tie(
            tie.source,
            tie.target,
            [(paths[t], paths[s]) for t, s in tie.copies],
            tie.params,
        )
        for tie in differing
    ]


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size


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


class _Values:
    """Variables' values streamed from a weights file, within a time budget.

    Healthy files take about 1 ms a variable and 1 ms a megabyte; the budget is a
    base plus shares per megabyte read and per variable read, so a damaged file
    (one slow read after another) ends with a clear error instead of a hang.
    """

    def __init__(self, h5: Any, handles: dict[str, Any], where: str) -> None:
        self.h5, self.handles, self.where = h5, handles, where
        self.started = time.monotonic()
        self.read = 0
        self.opened = 0

    def chunks(self, key: str) -> Iterator[bytes]:
        self.opened += 1
        for chunk in _dataset_chunks(self.h5, key, self.handles):
            self.read += len(chunk)
            budget = (
                VALUES_SECONDS
                + VALUES_SECONDS_PER_MB * self.read / 1e6
                + VALUES_SECONDS_PER_READ * self.opened
            )
            if time.monotonic() - self.started > budget:
                raise FileFormatError(
                    f"{self.where} is damaged: reading {self.read / 1e6:.0f} MB of values "
                    f"took longer than {budget:.0f} s"
                )
            yield chunk

    def equal(self, a: str, b: str) -> bool:
        """Whether two datasets of one shape and dtype hold the same bytes (stops at the first
        difference)."""
        return all(x == y for x, y in zip_longest(self.chunks(a), self.chunks(b)))


def _value_access(reader: _Reader, values: _Values | None) -> ValueAccess:
    """Layer configs from the file, and values streamed from it (None: values are not read)."""
    from weighttie.findings import config_fingerprint

    def fingerprint(path: str) -> str | None:
        entry = reader.entries.get(path)
        if entry is None or not isinstance(entry.get("config"), dict):
            return None
        return config_fingerprint(entry["config"])

    if values is None:
        return ValueAccess(fingerprint=fingerprint, chunks=None)
    read = values.chunks
    return ValueAccess(fingerprint=fingerprint, chunks=lambda key: read(str(key)))


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


def _read_keras(path: str, findings: bool, limits: Limits) -> Report:
    where = f"{path!r}: {WEIGHTS}"
    with KerasArchive(path, limits=limits) as archive:
        config = archive.config()
        metadata = archive.metadata()
        if not archive.has(WEIGHTS):
            raise FileFormatError(
                f"{path!r} has no model.weights.h5; expected a .keras archive written by "
                "Keras 3 (config.json, metadata.json, model.weights.h5)"
            )
        with archive.weights() as h5, _h5_errors(path, WEIGHTS):
            handles: dict[str, Any] = {}
            group = _read_group(h5, where, limits, handles if findings else None)
            values = _Values(h5, handles, where)
            facts = _keras_facts(path, config, metadata, group, values, limits, findings)
            return build_report(facts, findings=findings)


def _keras_facts(
    path: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    group: _Group,
    values: _Values,
    limits: Limits,
    findings: bool,
) -> ModelFacts:
    """The facts of a .keras file, with a finding for each declared tie whose copies differ.

    Declared ties' copies are always compared (a tie is bound only if they agree);
    other values are read only for ``findings``.
    """
    reader = _Reader(repr(path), limits)
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
    ties, differing = _apply_ties(reader, config, values)
    version = metadata.get("keras_version")
    info = ModelInfo(
        name=name,
        class_name=class_name,
        source=Source.STATIC,
        file=path,
        keras_version=version if isinstance(version, str) else None,
    )
    return ModelFacts(
        model=info,
        layers=reader.rows,
        variables=tuple(reader.variables.values()),
        ties=tuple(ties),
        findings=tuple(_differing_tie_findings(reader, differing)),
        access=_value_access(reader, values if findings else None),
    )


def _attr_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _legacy_config(h5: Any, path: str, limits: Limits) -> dict[str, Any] | None:
    """The ``model_config`` attribute of a legacy file, parsed within ``limits``; None if absent."""
    from h5py import h5a

    if not h5a.exists(h5.id, b"model_config"):
        return None
    if h5a.open(h5.id, b"model_config").get_storage_size() > limits.config_bytes:
        raise LimitError(
            f"{path!r}: model_config holds more than {limits.config_bytes:,} bytes, "
            "the config_bytes limit",
            limit="config_bytes",
        )
    value = h5.attrs.get("model_config")
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    if not isinstance(data, bytes):
        return None
    if len(data) > limits.config_bytes:
        raise LimitError(
            f"{path!r}: model_config holds {len(data):,} bytes, more than the "
            f"{limits.config_bytes:,} of the config_bytes limit",
            limit="config_bytes",
        )
    config = parse_model_config(data, limits=limits, where=f"{path!r}: model_config")
    if not isinstance(config, dict):
        raise FileFormatError(f"{path!r}: model_config must be a JSON object")
    return config


def _read_legacy_h5(path: str, findings: bool, limits: Limits) -> Report:
    where = repr(path)
    with open_model_file(path) as file, open_h5(file, where) as h5, _h5_errors(path, "the file"):
        config = _legacy_config(h5, path, limits)
        if config is None:
            raise FileFormatError(
                f"{path!r} is an HDF5 file without a model_config attribute: it holds "
                "weights only (save_weights) or is not a Keras model"
            )
        _walk_h5(h5, where, limits)
        weights = h5.get("model_weights")
        version = _attr_text(h5.attrs.get("keras_version"))
        reader = _Reader(where, limits)
        class_name = str(config.get("class_name", UNKNOWN_CLASS))
        name = _layer_name(config) or "model"
        reader.add(ROOT, name, class_name, None, True, None, [], [], True)
        _legacy_model(reader, config, weights, ROOT, _trainable(config), 0)
        info = ModelInfo(
            name=name, class_name=class_name, source=Source.STATIC, file=path, keras_version=version
        )
        values = _Values(h5, {}, where) if findings else None
        facts = ModelFacts(
            model=info,
            layers=reader.rows,
            variables=tuple(reader.variables.values()),
            access=_value_access(reader, values),
        )
        return build_report(facts, findings=findings)


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
    if depth > reader.limits.depth:
        raise LimitError(
            f"{reader.where}: model_config nests models more than {reader.limits.depth} "
            "levels deep, the depth limit",
            limit="depth",
        )
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
                {
                    p.rpartition("/")[2]
                    for p, _ in iter_layer_configs(child, max_depth=reader.limits.depth)
                }
                - names_here
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

    Values are read for two things only, streamed from the file in chunks: the
    saved copies of each tie the file declares are compared (always: a tie whose
    copies differ is reported unbound, with a ``broken-tie`` finding when
    ``findings`` is on); and with ``findings`` (the default) same-shaped variables
    are hashed to find copies that should be shared (``broken-tie``).

    Everything read is bounded by ``limits`` before the work that grows with it.

    Raises:
        MissingFileError, FileFormatError: the file cannot be read as a Keras model,
            or its weights file is not self-contained.
        LimitError: the file holds more than ``limits`` allow.

    Example:
        >>> report = read_report("siamese.keras")     # doctest: +SKIP
        >>> report.model.source
        'static'
    """
    file = os.fspath(path)
    kind = check_model_file(file)
    if kind is FileKind.KERAS:
        return _read_keras(file, findings, limits)
    return _read_legacy_h5(file, findings, limits)


def check_before_load(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> FileKind:
    """The checks to make before Keras opens a model file; returns the file's kind.

    Keras parses the whole config and opens datasets by path: a config beyond
    ``limits`` would cost it time and memory in proportion, and a weights file
    with external storage, external or dangling links, virtual datasets or
    plugin filters would make HDF5 open host paths (a FIFO there blocks inside
    HDF5, where no time budget can fire). This reads the config within
    ``limits`` and walks the weights file as the static reader does, reading no
    values and nothing Keras itself ignores (layer-name attributes).

    Raises:
        MissingFileError, FileFormatError: the file is not a regular model file, or
            its weights file is not self-contained.
        LimitError: the file holds more than ``limits`` allow.
    """
    file = os.fspath(path)
    kind = check_model_file(file)
    if kind is FileKind.KERAS:
        with KerasArchive(file, limits=limits) as archive:
            archive.config()
            if archive.has(WEIGHTS):
                with archive.weights() as h5, _h5_errors(file, WEIGHTS):
                    _walk_h5(h5, f"{file!r}: {WEIGHTS}", limits)
        return kind
    with open_model_file(file) as f, open_h5(f, repr(file)) as h5, _h5_errors(file, "the file"):
        _legacy_config(h5, file, limits)
        _walk_h5(h5, repr(file), limits)
    return kind
