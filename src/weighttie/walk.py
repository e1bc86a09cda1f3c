"""The live walker: a built ``keras.Model`` → raw facts → :class:`Report`.

It visits the model's layers in pre-order: the operations of a functional graph
(Sequential models included), the tracked sublayers of everything else (an LSTM's
cell, the layers of a subclassed model). For layers in a functional graph it lists
only the calls (nodes) that belong to *that* graph, so a layer also used by another
model does not bring that model's calls along.

Layers with no graph (a subclassed model's layers, a layer's own sublayers) get
their calls from one symbolic forward pass of the model
(:func:`weighttie._keras.trace_calls`): how often each parent's call called each of
its sublayers. Where the pass cannot run, analyze warns and the counting falls
back to the one-call rule (docs/concepts.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import keras

from weighttie import _keras
from weighttie.build import build_report
from weighttie.collector import collector_paused
from weighttie.errors import ModelNotBuiltError, WeighttieError
from weighttie.facts import ROOT, ModelFacts, RawLayer, RawVariable, ValueAccess, join_path
from weighttie.layers import runs_sublayers_once
from weighttie.report import (
    CallNode,
    InboundRef,
    ModelInfo,
    Report,
    Shape,
    Source,
    Tie,
    resolve_layer,
)
from weighttie.tie_record import declared_ties

__all__ = ["analyze", "layers_by_path", "model_facts", "node_input", "node_output"]


@dataclass
class _Visited:
    layer: Any
    nodes: list[Any] | None  # the Keras Node objects of this occurrence's own calls


class _Walk:
    """One walk over one model; keeps the layer objects by path for the helpers."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.rows: list[RawLayer] = []
        self.variables: dict[int, RawVariable] = {}
        self.visited: dict[str, _Visited] = {}
        self.objects: dict[int, Any] = {}  # variable key (id) → the variable; keeps it alive
        trainable_model = bool(getattr(model, "trainable", True))
        self._trainable_model = trainable_model

    def run(self) -> None:
        self.rows.append(
            RawLayer(
                path=ROOT,
                name=self.model.name,
                class_name=type(self.model).__name__,
                parent=None,
                identity=id(self.model),
                is_model=isinstance(self.model, keras.Model),
                nodes=None,
                variables=self._hold(self.model),
                runs=1,
            )
        )
        self._children(self.model, ROOT, ancestors={id(self.model)})

    def _hold(self, layer: Any) -> tuple[Hashable, ...]:
        keys = []
        for v in _keras.own_variables(layer):
            key = id(v)
            if key not in self.variables:
                self.objects[key] = v
                self.variables[key] = RawVariable(
                    key=key,
                    name=str(v.name),
                    shape=tuple(int(d) for d in v.shape),
                    dtype=str(v.dtype),
                    trainable=bool(v.trainable) and self._trainable_model,
                )
            keys.append(key)
        return tuple(keys)

    def _children(self, layer: Any, path: str, ancestors: set[int]) -> None:
        graph = _keras.graph_of(layer)
        taken: set[str] = set()

        def child_path(name: str) -> str:
            candidate, n = join_path(path, name), 1
            result = candidate
            while result in taken:
                n += 1
                result = f"{candidate}#{n}"
            taken.add(result)
            return result

        if graph is None:
            for sub in _keras.sublayers(layer):
                if id(sub) in ancestors:
                    continue
                self._visit(sub, child_path(sub.name), path, None, ancestors)
            return

        operations = _keras.graph_operations(graph)
        own: dict[int, list[int]] = {}
        for op in operations:
            own[id(op)] = [
                i for i in range(len(_keras.inbound_nodes(op))) if _keras.is_own_node(graph, op, i)
            ]
        paths = {id(op): child_path(op.name) for op in operations}
        renumber = {id(op): {old: new for new, old in enumerate(own[id(op)])} for op in operations}
        for op in operations:
            if id(op) in ancestors:
                continue
            all_nodes = _keras.inbound_nodes(op)
            nodes = [all_nodes[i] for i in own[id(op)]]
            call_nodes = tuple(
                _call_node(n, index, paths, renumber) for index, n in enumerate(nodes)
            )
            self._visit(op, paths[id(op)], path, (nodes, call_nodes), ancestors)

    def _visit(
        self,
        layer: Any,
        path: str,
        parent: str,
        calls: tuple[list[Any], tuple[CallNode, ...]] | None,
        ancestors: set[int],
    ) -> None:
        self.rows.append(
            RawLayer(
                path=path,
                name=str(layer.name),
                class_name=type(layer).__name__,
                parent=parent,
                identity=id(layer),
                is_model=isinstance(layer, keras.Model),
                nodes=None if calls is None else calls[1],
                variables=self._hold(layer),
                runs=None if calls is None else len(calls[1]),
            )
        )
        self.visited[path] = _Visited(layer, None if calls is None else calls[0])
        self._children(layer, path, ancestors | {id(layer)})


def _shape(tensor: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _call_node(
    node: Any,
    index: int,
    paths: dict[int, str],
    renumber: dict[int, dict[int, int]],
) -> CallNode:
    inbound = []
    for tensor in node.input_tensors:
        history = _keras.history_of(tensor)
        if history is None:
            continue
        op, node_index, tensor_index = history
        layer = paths.get(id(op), str(getattr(op, "name", "?")))
        node_index = renumber.get(id(op), {}).get(node_index, node_index)
        inbound.append(InboundRef(layer, node_index, tensor_index))
    return CallNode(
        index=index,
        inbound=tuple(inbound),
        input_shapes=tuple(_shape(t) for t in node.input_tensors),
        output_shapes=tuple(_shape(t) for t in node.output_tensors),
    )


def _walk(model: Any) -> _Walk:
    if not isinstance(model, keras.Layer):
        raise WeighttieError(
            f"analyze() expects a keras.Model or keras.Layer; received: {type(model).__name__}"
        )
    if not model.built:
        raise ModelNotBuiltError(
            f"model {model.name!r} is not built, so it has no variables yet; call it on "
            "data, call model.build(input_shape), or give it a keras.Input first"
        )
    walk = _Walk(model)
    walk.run()
    return walk


def layers_by_path(model: Any) -> dict[str, Any]:
    """Every layer occurrence of ``model`` by its report path (the model's rows' paths)."""
    return {path: visited.layer for path, visited in _walk(model).visited.items()}


def _keras_own(layer: Any) -> bool:
    """Whether ``layer`` is one of Keras's own layer classes (not a subclass, not a layer
    running user code): it reads the variables it holds at each call and runs each of
    its sublayers once per call (an RNN's cell, a wrapper's layer): the catalogue says
    which run code they were given (:func:`weighttie.layers.runs_sublayers_once`)."""
    cls = type(layer)
    return cls.__module__.startswith("keras.src.") and runs_sublayers_once(cls.__name__)


def _with_runs_and_reads(walk: _Walk) -> tuple[list[RawLayer], tuple[str, ...]]:
    """The walk's rows with how often each runs and what it reads; notes where unknown.

    Where a layer and everything in it is one of Keras's own classes, the structure
    says it: a graph row runs once per call, a sublayer once per call of its parent,
    each reading the variables it holds. Everywhere else a symbolic pass counts what
    each layer's call runs and reads (a custom head reading ``emb.embeddings``, a
    cell shared by two RNN layers, a sublayer its parent only holds: 0 runs): each
    call of such a layer in a functional graph, on its own arguments
    (:func:`weighttie._keras.trace_calls_of`), or the whole model where it is not a
    graph (:func:`weighttie._keras.trace_model`). Where a pass cannot run, a
    sublayer of a custom layer runs an unknown number of times, and a note says why.
    """
    rows = walk.rows
    objects = {path: visited.layer for path, visited in walk.visited.items()}
    objects[ROOT] = walk.model
    whole, starts = _trace_plan(walk, objects)
    if not whole and not starts:
        return [_structural(row, objects) for row in rows], ()
    pairs = {
        (id(objects[row.parent]), id(objects[row.path])) for row in rows if row.parent is not None
    }
    try:
        if whole:
            trace = _keras.trace_model(walk.model, pairs=pairs)
        else:
            calls = {
                (id(objects[row.parent or ROOT]), id(objects[row.path])): (
                    objects[row.parent or ROOT],
                    objects[row.path],
                    walk.visited[row.path].nodes or [],
                )
                for row in starts
            }
            try:
                trace = _keras.trace_calls_of(list(calls.values()), pairs=pairs)
            except _keras.TraceFailed:  # a call that fails alone may pass in the whole model
                trace, whole = _keras.trace_model(walk.model, pairs=pairs), True
    except _keras.TraceFailed as exc:
        warnings.warn(
            f"weighttie could not trace a symbolic call of {walk.model.name!r} ({exc}); "
            "how often the sublayers of custom layers run is unknown (docs/concepts.md)",
            UserWarning,
            stacklevel=4,
        )
        note = (
            f"the symbolic call that counts what each layer runs and reads failed ({exc}): "
            "how often the sublayers of custom layers run, and the per-use totals, are unknown"
        )
        return [_structural(row, objects) for row in rows], (note,)
    if whole:
        return [_traced(row, objects, trace, row.parent is None) for row in rows], ()
    start_paths = {row.path for row in starts}
    covered = _subtrees(rows, start_paths)
    return [
        _traced(row, objects, trace, row.path in start_paths)
        if row.path in covered
        else _structural(row, objects)
        for row in rows
    ], ()


def _trace_plan(walk: _Walk, objects: dict[str, Any]) -> tuple[bool, list[RawLayer]]:
    """Whether to trace the whole model; else the graph rows whose calls to trace.

    A model that runs its own graph (a functional model, a Sequential, a keras_hub
    backbone) is not traced: its graph says what runs. A graph row whose layer, or
    a layer inside it, is not one of Keras's own classes is traced, call by call.
    A model that is not a graph, or whose class overrides what a graph runs, is
    traced whole.
    """
    rows = walk.rows
    if not _keras.runs_its_graph(walk.model):
        return not all(_keras_own(layer) for layer in objects.values()), []
    foreign: set[str] = set()  # rows with a layer not Keras's own in their subtree
    for row in reversed(rows):
        if not _keras_own(objects[row.path]) and not _keras.runs_its_graph(objects[row.path]):
            foreign.add(row.path)
        if row.path in foreign and row.parent is not None:
            foreign.add(row.parent)
    starts: list[RawLayer] = []
    covered: set[str] = set()
    for row in rows:
        if row.parent is None:
            continue
        if row.parent in covered:
            covered.add(row.path)
        elif (
            row.path in foreign
            and row.nodes is not None
            and not _keras.runs_its_graph(objects[row.path])
        ):
            starts.append(row)
            covered.add(row.path)
    return False, starts


def _subtrees(rows: Sequence[RawLayer], starts: set[str]) -> set[str]:
    """The paths of ``starts`` and of every row below them."""
    covered: set[str] = set()
    for row in rows:
        if row.path in starts or (row.parent is not None and row.parent in covered):
            covered.add(row.path)
    return covered


def _structural(row: RawLayer, objects: dict[str, Any]) -> RawLayer:
    """A row as Keras's own classes run it: a sublayer once per call of its parent (None
    below a custom layer, whose call decides); reads: the variables it holds."""
    if row.nodes is not None or row.parent is None:
        return row
    return replace(row, runs=1 if _keras_own(objects[row.parent]) else None)


def _traced(row: RawLayer, objects: dict[str, Any], trace: _keras.Trace, start: bool) -> RawLayer:
    """A row as the symbolic pass saw it run and read, per run of its parent.

    ``start``: the row's calls are where the pass started (the model, or the calls
    of a graph row): the pass ran its parent once. A count that is not a whole
    number per run of the parent (a parent's call running a sublayer a varying
    number of times) is unknown.
    """
    layer = id(objects[row.path])
    caller = _keras.OUTSIDE if row.parent is None else id(objects[row.parent])
    parent_runs = 1 if start else trace.runs.get(caller, 0)
    runs = row.runs
    if row.nodes is None and row.parent is not None:
        made = trace.calls.get((caller, layer), 0)
        runs = _per(made, parent_runs)
    reads = []
    for key, n in trace.reads_by.get((caller, layer), ()):
        per_run = _per(n, parent_runs)
        if per_run is None:
            return replace(row, runs=None)
        reads.append((key, per_run))
    return replace(row, runs=runs, reads=tuple(reads))


def _per(count: int, runs: int) -> int | None:
    """``count`` per one of ``runs`` (0 when the parent never ran), None if not whole."""
    if not runs:
        return 0
    return count // runs if count % runs == 0 else None


@collector_paused()
def analyze(
    model: Any,
    *,
    ties: Sequence[Tie] | None = None,
    findings: bool = True,
    file: str | None = None,
) -> Report:
    """Analyze a built Keras model's weight sharing.

    Args:
        model: a built ``keras.Model`` (functional, Sequential or subclassed) or layer.
        ties: the ties to show in the report; by default the ties declared on the
            model with :func:`weighttie.tie_weights`.
        findings: look for ``broken-tie`` and ``twin-branches`` (docs/concepts.md).
        file: the file the model was loaded from, if any: the report then says
            ``source: loaded`` and names it.

    Returns:
        A frozen :class:`~weighttie.Report`: layers with their calls and shapes,
        variables with their holders and uses, sharing groups and counts.

    Raises:
        ModelNotBuiltError: the model has no variables yet.

    Example:
        >>> import keras, weighttie
        >>> lstm = keras.layers.LSTM(4)
        >>> a, b = keras.Input((None, 8)), keras.Input((None, 8))
        >>> model = keras.Model([a, b], keras.layers.concatenate([lstm(a), lstm(b)]))
        >>> report = weighttie.analyze(model)
        >>> [g.kind.value for g in report.groups]
        ['shared-layer']
        >>> report.params.unique == model.count_params(), report.params.duplicated
        (True, 208)
    """
    return build_report(model_facts(model, ties=ties, file=file), findings=findings)


def model_facts(
    model: Any, *, ties: Sequence[Tie] | None = None, file: str | None = None
) -> ModelFacts:
    """The facts :func:`analyze` builds its report from (arguments as there)."""
    walk = _walk(model)
    if ties is None:
        layers = {path: visited.layer for path, visited in walk.visited.items()}
        ties = declared_ties(layers, _keras.LIVE_LAYERS)
    info = ModelInfo(
        name=str(model.name),
        class_name=type(model).__name__,
        source=Source.LIVE if file is None else Source.LOADED,
        file=file,
        keras_version=keras.__version__,
    )
    rows, notes = _with_runs_and_reads(walk)
    return ModelFacts(
        model=replace(info, notes=notes),
        calls_note=next(iter(notes), None),
        layers=rows,
        variables=tuple(walk.variables.values()),
        ties=tuple(ties),
        access=_value_access(walk),
    )


def _value_access(walk: _Walk) -> ValueAccess:
    """Configs and values of the live objects, for findings."""
    import numpy as np

    from weighttie.findings import config_fingerprint

    def fingerprint(path: str) -> str | None:
        try:
            config = keras.saving.serialize_keras_object(walk.visited[path].layer)
        except Exception:  # a custom layer without get_config: no fingerprint, no finding
            return None
        return config_fingerprint(config.get("config") if isinstance(config, dict) else config)

    def chunks(key: Hashable) -> list[bytes]:
        return [np.ascontiguousarray(walk.objects[int(key)].numpy()).tobytes()]  # type: ignore[call-overload]

    return ValueAccess(fingerprint=fingerprint, chunks=chunks)


def _find(walk: _Walk, layer: str) -> _Visited:
    names = {path: str(v.layer.name) for path, v in walk.visited.items()}
    return walk.visited[resolve_layer(layer, names, str(walk.model.name))]


def _node(model: Any, layer: str, index: int) -> Any:
    visited = _find(_walk(model), layer)
    if visited.nodes is None:
        raise WeighttieError(
            f"layer {layer!r} has no recorded calls: it is not part of a functional graph "
            "(subclassed model or a layer's own sublayer)"
        )
    if not 0 <= index < len(visited.nodes):
        raise WeighttieError(
            f"layer {layer!r} has {len(visited.nodes)} call(s) in model {model.name!r} "
            f"(node indices 0 to {len(visited.nodes) - 1}); received: index={index}"
        )
    return visited.nodes[index]


def _unwrap(tensors: Sequence[Any]) -> Any:
    return tensors[0] if len(tensors) == 1 else list(tensors)


def node_output(model: Any, layer: str, index: int = 0) -> Any:
    """Return the symbolic output of call ``index`` of ``layer`` in ``model``.

    The Keras 3 replacement for Keras 2's ``layer.get_output_at(index)``. Node
    indices count the calls inside ``model``'s graph, as in the report.

    Example:
        >>> out_b = weighttie.node_output(model, "lstm", 1)   # doctest: +SKIP
        >>> encoder_b = keras.Model(model.inputs[1], out_b)   # doctest: +SKIP
    """
    return _unwrap(_node(model, layer, index).output_tensors)


def node_input(model: Any, layer: str, index: int = 0) -> Any:
    """Return the symbolic input of call ``index`` of ``layer`` (Keras 2's ``get_input_at``)."""
    return _unwrap(_node(model, layer, index).input_tensors)
