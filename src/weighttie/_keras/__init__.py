"""Every access to private Keras API, and nothing else.

Keras 3 removed the per-call accessors weighttie needs (``get_output_at`` …) and
offers no supported way to make two layers hold one variable. What we read or
write instead is private, so it lives here, each access in one small function with
its own test (tests/_keras/test_keras_internals.py). A Keras upgrade that moves any of
it breaks this file, loudly, and nothing else.

Verified against Keras 3.15 (see ../shared/DESIGN.md). Keras is imported where it
is used, so that importing this module (and ``ties``) costs nothing: a bad file is
rejected before a backend is loaded.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from weighttie._keras import keras_tensors

__all__ = [
    "LIVE_LAYERS",
    "LiveLayers",
    "SavedEntry",
    "Trace",
    "TraceFailed",
    "after_build",
    "built_optimizer",
    "extend_build_config",
    "graph_of",
    "graph_operations",
    "history_of",
    "inbound_nodes",
    "is_own_node",
    "live_layers",
    "loops_over_sublayers",
    "models_containing",
    "own_variables",
    "recording_saves",
    "replace_own_variable",
    "reset_step_functions",
    "runs_its_graph",
    "set_private",
    "snapshot_state",
    "sublayers",
    "sync_torch_parameters",
    "trace_calls_of",
    "trace_model",
    "variable_base",
    "variable_copy",
]


@functools.cache
def variable_base() -> Any:
    """The class every Keras variable derives from, whatever the backend:
    ``keras.src.backend.common.variables.Variable`` (``KerasVariable`` before Keras 3.4).
    Looked up once: the symbolic pass asks for it at every op."""
    from keras.src.backend.common import variables

    return getattr(variables, "Variable", None) or variables.KerasVariable


def own_variables(layer: Any) -> list[Any]:
    """Return the weights ``layer`` holds itself, not through sublayers.

    These are the variables ``layer.weights`` starts with (``_trainable_variables``
    then ``_non_trainable_variables``), in the order ``save_own_variables`` numbers
    them. Seed-generator state and metric variables are not weights and are left
    out, as ``count_params`` leaves them out.
    """
    trainable = getattr(layer, "_trainable_variables", None)
    non_trainable = getattr(layer, "_non_trainable_variables", None)
    if trainable is None or non_trainable is None:
        return []  # a plain Operation (keras.ops.add in a functional graph)
    return list(trainable) + list(non_trainable)


class LiveLayers:
    """Live Keras layers as :func:`weighttie.tie_record.pair_variables` sees them."""

    def name(self, layer: Any) -> str:
        return str(layer.name)

    def class_name(self, layer: Any) -> str:
        return type(layer).__name__

    def same_class(self, a: Any, b: Any) -> bool:
        return type(a) is type(b)

    def variables(self, layer: Any) -> dict[str, Any]:
        return {v.name: v for v in own_variables(layer)}

    def sublayers(self, layer: Any) -> list[Any]:
        return sublayers(layer)


#: The one :class:`LiveLayers` view.
LIVE_LAYERS = LiveLayers()


def sublayers(layer: Any) -> list[Any]:
    """Return the layers ``layer`` tracks directly (``Layer._layers``), without repeats."""
    seen: set[int] = set()
    result = []
    for sub in getattr(layer, "_layers", None) or ():
        if id(sub) not in seen:
            seen.add(id(sub))
            result.append(sub)
    return result


def graph_of(layer: Any) -> Any | None:
    """Return the functional graph that runs ``layer``'s calls, or None.

    A functional model is its own graph; a built Sequential model keeps one in
    ``_functional``; subclassed models and plain layers have none.
    """
    import keras
    from keras.src.ops.function import Function

    if isinstance(layer, Function):
        return layer
    if isinstance(layer, keras.Sequential):
        functional = getattr(layer, "_functional", None)
        if isinstance(functional, Function):
            return functional
    return None


def runs_its_graph(layer: Any) -> bool:
    """Whether ``layer``'s call runs its functional graph and nothing else: a functional
    model or a Sequential, or a subclass (a keras_hub backbone) that keeps their ``call``."""
    from keras.src.models.functional import Functional
    from keras.src.models.sequential import Sequential

    if graph_of(layer) is None:
        return False
    call = getattr(type(layer), "call", None)
    return call is Functional.call or call is Sequential.call


def graph_operations(graph: Any) -> Sequence[Any]:
    """Return the operations of a functional graph, in graph order."""
    return list(graph.operations)


def inbound_nodes(op: Any) -> Sequence[Any]:
    """Return every ``Node`` (call) recorded on ``op``, including other models' calls."""
    return list(getattr(op, "_inbound_nodes", None) or ())


def is_own_node(graph: Any, op: Any, index: int) -> bool:
    """Whether call ``index`` of ``op`` belongs to ``graph`` (not to another model)."""
    return f"{id(op)}_ib-{index}" in graph._nodes


def history_of(tensor: Any) -> tuple[Any, int, int] | None:
    """Return ``(operation, node_index, tensor_index)`` that produced a symbolic tensor."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history.operation, int(history.node_index), int(history.tensor_index)


def replace_own_variable(layer: Any, old: Any, new: Any) -> bool:
    """Make ``layer`` hold ``new`` wherever it holds ``old`` itself; return whether it did.

    Keras 3 has no public way to do this: a built layer's tracker is locked and
    ``Dense.kernel`` / ``Conv.kernel`` are read-only properties over ``_kernel``.
    Three places hold a layer's variable: the tracker's lists
    (``_trainable_variables`` / ``_non_trainable_variables``, which ``weights``,
    saving and the optimizer read), the tracker's id sets, and the attribute the
    layer's ``call`` reads (``_kernel``, ``bias``, ``embeddings`` …). The caller
    checks shape and dtype first.
    """
    found = False
    for store in ("_trainable_variables", "_non_trainable_variables"):
        items = getattr(layer, store, None)
        if items is None:
            continue
        for i, v in enumerate(items):
            if v is old:
                items[i] = new
                found = True
    tracker = getattr(layer, "_tracker", None)
    stored_ids = getattr(tracker, "stored_ids", None)
    if found and isinstance(stored_ids, dict):
        for ids in stored_ids.values():
            if id(old) in ids:
                ids.discard(id(old))
                ids.add(id(new))
    for attr, value in list(vars(layer).items()):
        if value is old:
            object.__setattr__(layer, attr, new)  # bypass the locked tracker
            found = True
    return found


def live_layers() -> list[Any]:
    """Every Keras layer (models included) alive in this process, through the garbage collector.

    A layer does not know the layers and models containing it, so this is how a
    tie reaches them. One scan of the collector's objects: about 0.15-0.3 s with
    TensorFlow or torch imported. ``issubclass(type(o), …)`` and not ``isinstance``:
    it reads no ``__class__`` property, which some modules' deprecated objects warn on.
    """
    import gc

    import keras

    layer_type = keras.Layer
    return [o for o in gc.get_objects() if issubclass(type(o), layer_type)]


def sync_torch_parameters(variables: Iterable[Any], candidates: Sequence[Any] | None = None) -> int:
    """Under torch, register again the parameters of every layer that registered ``variables``.

    Keras's torch layers are ``torch.nn.Module`` s: each built layer registers the
    torch tensor of *every* variable in its subtree (``layer.variables``) in a
    ``torch.nn.ParameterDict`` (``_torch_params``, keys ``variable.path``), which
    ``model.parameters()``, ``state_dict()``, torch optimizers and DDP read.
    ``replace_own_variable`` changes what the layer holds, not that dict, so the
    layer and every layer containing it (the model, nested models) would still
    register the variable given up, beside the one kept.

    This looks at ``candidates`` (default: :func:`live_layers`) and rebuilds the dict
    of each that registered one of ``variables`` from its variables now, with Keras's
    own ``_track_variables`` (as Keras does after quantizing), only where it differs.
    Returns how many were rebuilt; 0 under the other backends, which register nothing.
    Variables without a value (a model built by :mod:`weighttie._keras.deferred`, which
    is traced, never run) have no parameter to register: they are left out.
    """
    import keras

    from weighttie._keras.deferred import holds_no_value

    if keras.config.backend() != "torch":
        return 0
    wanted = {id(_torch_value(v)) for v in variables if not holds_no_value(v)}
    if not wanted:
        return 0
    rebuilt = 0
    for layer in live_layers() if candidates is None else candidates:
        registered = _torch_parameters(layer)
        if registered is None or not wanted & {id(p) for p in registered.values()}:
            continue
        if _registration(registered) != _registration(_desired_parameters(layer)):
            layer._track_variables()
            rebuilt += 1
    return rebuilt


def models_containing(layers: Sequence[Any], candidates: Sequence[Any]) -> list[Any]:
    """The models among ``candidates`` that are, or contain at any depth, one of ``layers``."""
    import keras

    wanted = {id(layer) for layer in layers}
    found = []
    for model in candidates:
        if not isinstance(model, keras.Model):
            continue
        try:
            inside = model._flatten_layers(include_self=True)
        except AttributeError:  # garbage: a model whose __init__ failed before tracking
            continue
        if any(id(layer) in wanted for layer in inside):
            found.append(model)
    return found


def reset_step_functions(model: Any) -> bool:
    """Drop a model's compiled train, test and predict functions; return whether it had any.

    TensorFlow traces them once and keeps the variables it read then: after a tie
    they would still compute and train with the variables a layer gave up. Keras
    builds them again on the next ``fit`` / ``evaluate`` / ``predict`` (as it does
    after quantizing).
    """
    had = False
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
            had = True
    return had


def built_optimizer(model: Any) -> Any | None:
    """The model's optimizer if it has built its slots (on the variables trained then)."""
    optimizer = getattr(model, "optimizer", None)
    return optimizer if optimizer is not None and optimizer.built else None


def _torch_value(variable: Any) -> Any:
    """The torch tensor a Keras variable holds (its ``torch.nn.Parameter``)."""
    return variable.value


def _torch_parameters(layer: Any) -> Any | None:
    """The ``ParameterDict`` a built torch layer registered its variables in, or None."""
    modules = vars(layer).get("_modules")
    return None if modules is None else modules.get("_torch_params")


def _desired_parameters(layer: Any) -> dict[str, Any]:
    """What ``_track_variables`` would register for ``layer`` now."""
    return {v.path: _torch_value(v) for v in layer.variables}


def _registration(parameters: Any) -> list[tuple[str, int]]:
    """Key and tensor identity of each entry; sorted, as ``ParameterDict`` sorts a dict."""
    return sorted((str(key), id(value)) for key, value in parameters.items())


def variable_copy(layer: Any, variable: Any) -> Any:
    """A new variable holding ``variable``'s current value, made as ``layer`` makes its own.

    Created in ``layer``'s name scope, so its ``path`` is ``<layer path>/<name>``, as
    if ``layer`` had built it: under torch the path is the key of its registered
    parameter, and two copies named just ``kernel`` would overwrite each other.
    """
    import keras

    with layer._open_name_scope():
        return keras.Variable(
            initializer=variable.numpy(),
            dtype=variable.dtype,
            trainable=variable.trainable,
            name=variable.name,
        )


def after_build(layer: Any, callback: Any) -> None:
    """Run ``callback(layer)`` each time ``layer`` finishes building.

    Keras wraps ``build`` per instance (``Layer.__new__``); this wraps that wrapper,
    so the callback sees the layer built and its state locked.
    """
    original = layer.build

    @functools.wraps(original)  # Keras reads build's signature to pass shapes
    def build(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        callback(layer)

    object.__setattr__(layer, "build", build)


def extend_build_config(layer: Any, extra: Any) -> None:
    """Add ``extra()``'s keys to what ``layer.get_build_config()`` returns (what ``save`` writes).

    Keras ignores unknown ``build_config`` keys on load, so a plain-Keras reader is
    unaffected.
    """
    if getattr(layer, "_weighttie_build_config_extended", False):
        return
    original = layer.get_build_config

    def get_build_config() -> Any:
        config = original()
        config = dict(config) if config else {}
        config.update(extra())
        return config

    object.__setattr__(layer, "get_build_config", get_build_config)
    object.__setattr__(layer, "_weighttie_build_config_extended", True)


@dataclass(frozen=True)
class SavedEntry:
    """One value a layer's ``save_own_variables`` wrote: where (``path`` inside
    model.weights.h5), and the object it passed (a variable, or an array)."""

    layer: Any
    path: str
    value: Any


@contextlib.contextmanager
def recording_saves(layers: Sequence[Any]) -> Iterator[list[SavedEntry]]:
    """While the block runs, record each value ``layers`` write through ``save_own_variables``.

    Keras's saver calls ``saveable.save_own_variables(store)`` with its ``H5IOStore``
    positioned at the saveable's group (the private ``_h5_entry_path``); the layer
    then sets ``store["0"] = variable`` … This wraps that method per instance (as
    :func:`after_build` wraps ``build``) and removes the wrappers after the block.
    A store without the entry path (another format) records nothing.
    """
    records: list[SavedEntry] = []
    wrapped: list[tuple[Any, Any]] = []

    class _Recorder:
        def __init__(self, layer: Any, store: Any) -> None:
            self._layer, self._store = layer, store
            base = getattr(store, "_h5_entry_path", None)
            self._base = base if isinstance(base, str) else None

        def __setitem__(self, key: str, value: Any) -> None:
            if self._base is not None:
                path = f"{self._base}/vars/{key}" if self._base else f"vars/{key}"
                records.append(SavedEntry(self._layer, path, value))
            self._store[key] = value

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)

        def __getitem__(self, key: str) -> Any:
            return self._store[key]

        def __contains__(self, key: object) -> bool:
            return key in self._store

        def __len__(self) -> int:
            return len(self._store)

        def keys(self) -> Any:
            return self._store.keys()

    def wrap(layer: Any) -> None:
        original = layer.save_own_variables
        had = "save_own_variables" in vars(layer)

        def save_own_variables(store: Any) -> None:
            original(_Recorder(layer, store))

        object.__setattr__(layer, "save_own_variables", save_own_variables)
        wrapped.append((layer, original if had else None))

    try:
        for layer in layers:
            wrap(layer)
        yield records
    finally:
        for layer, previous in reversed(wrapped):
            if previous is None:
                object.__delattr__(layer, "save_own_variables")
            else:
                object.__setattr__(layer, "save_own_variables", previous)


def set_private(layer: Any, name: str, value: Any) -> None:
    """Set a weighttie attribute on a layer without Keras tracking it."""
    object.__setattr__(layer, name, value)


_MISSING = object()


def _refillable_containers() -> tuple[type, ...]:
    """Container types that keep their items in the built-in base (Keras's tracked ones too).

    TensorFlow's ``ListWrapper`` / ``_DictWrapper`` keep theirs elsewhere; neither tying
    nor compiling changes them, so they are left alone.
    """
    from keras.src.utils.tracking import TrackedDict, TrackedList, TrackedSet

    return (list, dict, set, TrackedList, TrackedDict, TrackedSet)


def _items(container: Any) -> Any:
    """A plain copy of a container's items, read without a tracking override."""
    if isinstance(container, list):
        return list.copy(container)
    if isinstance(container, dict):
        return dict.copy(container)
    return set.copy(container)


def _refill(container: Any, items: Any) -> None:
    """Put ``items`` back into ``container`` without running a tracking override."""
    if isinstance(container, list):
        list.__setitem__(container, slice(None), items)
    elif isinstance(container, dict):
        dict.clear(container)
        dict.update(container, items)
    else:
        set.clear(container)
        set.update(container, items)


def snapshot_state(obj: Any) -> Callable[[], None]:
    """Return a function that puts ``obj``'s own state back as it is now.

    What tying (``replace_own_variable``, ``after_build`` …) and ``compile`` change
    on a layer or model: its instance attributes (``_kernel``, ``optimizer``,
    ``compiled`` …), the items of its list, dict and set attributes (the tracker's
    ``_trainable_variables``, ``_metrics``, TensorFlow's checkpoint dependencies) and
    its tracker's id sets (``_tracker.stored_ids``). The function gives each
    attribute back its object, removes attributes added since, and refills those
    containers in place, since other objects (the tracker) hold them. It copies no
    variable's value.
    """
    refillable = _refillable_containers()
    attributes = dict(vars(obj))
    items = {name: _items(value) for name, value in attributes.items() if type(value) in refillable}
    stored_ids: dict[str, set[int]] = getattr(attributes.get("_tracker"), "stored_ids", None) or {}
    ids = {key: set(value) for key, value in stored_ids.items()}

    def restore() -> None:
        current = vars(obj)
        for name in [name for name in current if name not in attributes]:
            object.__delattr__(obj, name)  # bypass Keras's and TensorFlow's untracking
        for name, value in attributes.items():
            if current.get(name, _MISSING) is not value:
                object.__setattr__(obj, name, value)
        for name, saved in items.items():
            _refill(attributes[name], saved)
        for key, saved_ids in ids.items():
            _refill(stored_ids[key], saved_ids)

    return restore


# -- calls and reads traced in one symbolic forward pass ----------------------------------


class TraceFailed(Exception):
    """The model could not be traced symbolically; the message says why, in one line."""


#: The caller recorded for the analyzed model's own call.
OUTSIDE = 0

_TRACE_LOCK = threading.Lock()
_TRACING = threading.local()


@dataclass(frozen=True)
class Trace:
    """What one symbolic forward pass of a model saw.

    ``calls[(caller, layer)]``: how many times ``layer`` ran with ``caller`` the
    innermost layer running (:data:`OUTSIDE` for the model itself).
    ``reads[(caller, layer, variable)]``: how many of those runs read ``variable``
    (a run reading it several times reads it once). Keys are ``id()`` s.

    Inside a layer that runs its sublayers in a loop (an RNN's cell, a
    ``TimeDistributed`` layer), one call of the looping layer is one run of each
    sublayer: every count inside it is divided by how many times the loop body ran
    (the per-time-step reads are one use, whatever the backend unrolls or traces).
    """

    calls: dict[tuple[int, int], int]
    reads: dict[tuple[int, int, int], int]

    @functools.cached_property
    def runs(self) -> dict[int, int]:
        """How many times each layer ran, whoever called it."""
        runs: dict[int, int] = {}
        for (_, layer), n in self.calls.items():
            runs[layer] = runs.get(layer, 0) + n
        return runs

    @functools.cached_property
    def reads_by(self) -> dict[tuple[int, int], list[tuple[int, int]]]:
        """``reads`` grouped by ``(caller, layer)``: ``[(variable, runs reading it), …]``."""
        grouped: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for (caller, layer, variable), n in sorted(self.reads.items()):
            grouped.setdefault((caller, layer), []).append((variable, n))
        return grouped


class _Tally:
    """Counts of calls and reads, for one pass or for one call of a looping layer."""

    def __init__(self) -> None:
        self.calls: dict[tuple[int, int], int] = {}
        self.reads: dict[tuple[int, int, int], int] = {}

    def add(self, other: _Tally, divisor: int) -> bool:
        """Add ``other``'s counts divided by ``divisor``; False where one does not divide."""
        return _add_divided(self.calls, other.calls, divisor) and _add_divided(
            self.reads, other.reads, divisor
        )


def _add_divided(target: dict[Any, int], source: dict[Any, int], divisor: int) -> bool:
    for key, n in source.items():
        if n % divisor:
            return False
        target[key] = target.get(key, 0) + n // divisor
    return True


class _Frame:
    """One run of one layer: who called it, and the variables it read."""

    __slots__ = ("caller", "layer", "loop", "reads")

    def __init__(self, layer: Any, caller: int, loop: bool) -> None:
        self.layer = layer
        self.caller = caller
        self.loop = loop
        self.reads: set[int] = set()


class _Tracer:
    """Counts layer runs and variable reads per innermost running layer, in one thread.

    Only a layer run by a caller in ``pairs`` (``(caller, layer)`` ids; None: any
    layer of the model) gets a frame of its own: any other run (a layer outside the
    model, or one its caller does not hold) is part of the run that called it.
    """

    def __init__(self, pairs: set[tuple[int, int]], loops: set[int]) -> None:
        self.root: Any = None
        self.root_caller = OUTSIDE
        self.pairs = pairs
        self.loops = loops
        self.stack: list[_Frame] = []
        self.tallies: list[_Tally] = []
        self.completed: list[_Tally] = []
        self.failure: str | None = None

    def call(self, run: Callable[..., Any], layer: Any, args: Any, kwargs: Any) -> Any:
        """Count one run of ``layer`` (``run(*args, **kwargs)``), unless it is already the
        innermost layer running (``__call__`` reaching the same layer's ``call``)."""
        if self.stack and self.stack[-1].layer is layer:
            return run(*args, **kwargs)
        if not self.stack:
            if layer is not self.root:
                return run(*args, **kwargs)
            self.tallies = [_Tally()]  # a backend may run the function twice, or retry
        caller = id(self.stack[-1].layer) if self.stack else self.root_caller
        pair = (caller, id(layer))
        if self.stack and pair not in self.pairs:
            return run(*args, **kwargs)
        self.tallies[-1].calls[pair] = self.tallies[-1].calls.get(pair, 0) + 1
        frame = _Frame(layer, caller, id(layer) in self.loops)
        if frame.loop:
            self.tallies.append(_Tally())
        self.stack.append(frame)
        try:
            result = run(*args, **kwargs)
        finally:
            self.stack.pop()
            self._close(frame)
        if not self.stack:
            self.completed.append(self.tallies[0])
        return result

    def _close(self, frame: _Frame) -> None:
        if frame.loop:
            inner = self.tallies.pop()
            steps = {n for (caller, _), n in inner.calls.items() if caller == id(frame.layer)}
            if len(steps) > 1 or not self.tallies[-1].add(inner, steps.pop() if steps else 1):
                self.failure = f"{frame.layer.name!r} runs its sublayers a varying number of times"
        tally = self.tallies[-1]
        for variable in frame.reads:
            key = (frame.caller, id(frame.layer), variable)
            tally.reads[key] = tally.reads.get(key, 0) + 1

    def read(self, variable: Any) -> None:
        if self.stack:
            self.stack[-1].reads.add(id(variable))

    def start(self, root: Any, caller: int) -> None:
        """Count the runs of ``root`` from now on, as called by ``caller``."""
        self.root, self.root_caller = root, caller
        self.completed, self.failure = [], None

    def result(self, root: Any) -> _Tally:
        """The counts of the runs of ``root`` since :meth:`start`, checked."""
        if self.failure is not None:
            raise TraceFailed(self.failure)
        if not self.completed:
            raise TraceFailed(f"the symbolic call of {root.name!r} never completed")
        first = self.completed[0]
        if any((t.calls, t.reads) != (first.calls, first.reads) for t in self.completed[1:]):
            raise TraceFailed("the layers called depend on the input's size")
        return first


def _symbolic_inputs(model: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of one symbolic call of ``model``: its graph's inputs, or the shapes it
    was built with (a subclassed model or a layer)."""
    from keras import KerasTensor
    from keras.src import tree

    graph = graph_of(model)
    if graph is not None:
        return (graph._inputs_struct,), {}
    shapes = getattr(model, "_build_shapes_dict", None)
    if not shapes:
        raise TraceFailed(f"{model.name!r} records no input shape (it was never built or called)")
    dtype = getattr(model, "input_dtype", None) or "float32"

    def spec(shape: Any) -> Any:
        return tree.map_shape_structure(lambda s: KerasTensor(tuple(s), dtype=dtype), shape)

    if len(shapes) == 1:
        return (spec(next(iter(shapes.values()))),), {}
    if all(str(k).endswith("_shape") for k in shapes):
        return (), {str(k)[: -len("_shape")]: spec(v) for k, v in shapes.items()}
    raise TraceFailed(f"{model.name!r} was built with shapes weighttie cannot map to its inputs")


def _variable_classes(layers: Sequence[Any]) -> set[type]:
    """The classes of the variables a pass may read: the backend's, and the layers' own."""
    from keras.src.backend import Variable

    classes: set[type] = {Variable}
    for layer in layers:
        for variable in own_variables(layer):
            classes.add(type(variable))
    return classes


def _watch_reads(classes: set[type]) -> Callable[[], None]:
    """Make every read of a variable's ``value`` (the one door to its data: operators,
    ``convert_to_tensor``, ``__array__`` …) known to the active tracer; return the undo.

    The property is wrapped on each concrete class, since a backend's class may
    define its own ``value`` without calling the base class's.
    """
    import inspect

    undo: list[Callable[[], None]] = []
    for cls in classes:
        original = inspect.getattr_static(cls, "value", None)
        if not isinstance(original, property) or original.fget is None:
            continue
        getter = original.fget

        def watched(self: Any, _get: Callable[[Any], Any] = getter) -> Any:
            active = getattr(_TRACING, "counter", None)
            if active is not None:
                active.read(self)
                if keras_tensors.running():
                    return keras_tensors.spec_of(self)
            return _get(self)

        had = "value" in cls.__dict__
        cls.value = property(watched, original.fset, original.fdel, original.__doc__)  # type: ignore[attr-defined]
        if had:
            undo.append(functools.partial(setattr, cls, "value", original))
        else:
            undo.append(functools.partial(delattr, cls, "value"))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def trace_model(
    model: Any, pairs: set[tuple[int, int]] | None = None, *, keras_tensors_first: bool = True
) -> Trace:
    """Count every layer run and every variable read in one symbolic forward pass.

    The pass runs the model's call over its input specs, symbolically: no data, no
    node added to any graph (see :func:`trace_calls_of` for how runs and reads are
    counted, and ``keras_tensors_first``).

    ``pairs``: the ``(id(caller), id(layer))`` pairs that count as runs of their own;
    any other run of a layer inside another's call is part of that call (default:
    every layer of the model, whoever calls it).

    Raises:
        TraceFailed: the model has no known inputs, or its call fails symbolically,
            or two runs of the pass (a backend trying two dynamic sizes) disagree.
    """
    args, kwargs = _symbolic_inputs(model)
    return _trace([(OUTSIDE, model, args, kwargs)], pairs, keras_tensors_first)


def trace_calls_of(
    calls: Sequence[tuple[Any, Any, Sequence[Any]]],
    pairs: set[tuple[int, int]] | None = None,
    *,
    keras_tensors_first: bool = True,
) -> Trace:
    """Count the runs and reads inside given calls of layers in a functional graph.

    ``calls``: ``(caller, layer, nodes)``: each of ``nodes`` (Keras ``Node`` s of
    ``layer`` in ``caller``'s graph) is run once, symbolically, on its own
    arguments, with ``caller`` recorded as its caller. Far cheaper than tracing a
    whole model when only a few of its layers are custom.

    Each run is symbolic, no data and no node added to any graph: first on Keras's own
    symbolic tensors (:mod:`weighttie._keras.keras_tensors`: the same Python, the
    same reads, no backend op built), and where that fails (code computing with a
    backend function), in Keras's symbolic execution on the backend
    (``backend.compute_output_spec``: TensorFlow builds a graph of every op);
    ``keras_tensors_first=False`` makes every run the latter, as does a Keras
    older than :data:`keras_tensors.SINCE`. A run still marks
    layers as called (``_called``, ``built``) and backends may cache things on them,
    so every layer's own state is put back as it was (:func:`snapshot_state`), also
    after a run that failed. Keras's warnings during the pass (a mask a layer drops)
    are not shown. Runs are counted by wrapping ``keras.Layer.__call__`` for the
    duration, under a lock, and each layer's ``call`` (a layer may run a sublayer's
    ``call`` itself; a run through ``__call__`` then ``call`` counts once); reads by
    wrapping each variable class's ``value`` property. Other threads pass through
    uncounted.

    Raises:
        TraceFailed: a call fails symbolically, or two runs of one (a backend trying
            two dynamic sizes) disagree.
    """
    from keras import KerasTensor
    from keras.src import tree

    def dense(value: Any) -> Any:
        # The graph's own tensors may carry flags a real pass does not (Keras marks some
        # op outputs sparse): a fresh spec of the same shape and dtype.
        if isinstance(value, KerasTensor):
            return KerasTensor(value.shape, dtype=value.dtype)
        return value

    targets = []
    for caller, layer, nodes in calls:
        for node in nodes:
            arguments = node.arguments
            args = tree.map_structure(dense, tuple(arguments.args))
            kwargs = tree.map_structure(dense, dict(arguments.kwargs))
            targets.append((id(caller), layer, args, kwargs))
    return _trace(targets, pairs, keras_tensors_first)


def _trace(
    targets: Sequence[tuple[int, Any, tuple[Any, ...], dict[str, Any]]],
    pairs: set[tuple[int, int]] | None,
    keras_tensors_first: bool,
) -> Trace:
    """Run each target ``(caller id, layer, args, kwargs)`` symbolically; sum the counts."""

    import keras

    layer_class = keras.Layer
    original = layer_class.__dict__["__call__"]
    layers = list({id(x): x for _, t, _, _ in targets for x in t._flatten_layers()}.values())
    loops = {id(layer) for layer in layers if loops_over_sublayers(layer)}
    if pairs is None:
        everyone = [id(layer) for layer in layers]
        pairs = {(caller, layer) for caller in everyone for layer in everyone}
    pairs = pairs | {(caller, id(layer)) for caller, layer, _, _ in targets}
    tracer = _Tracer(pairs, loops)

    def counting_call(self: Any, *a: Any, **k: Any) -> Any:
        active = getattr(_TRACING, "counter", None)
        if active is None:
            return original(self, *a, **k)
        if keras_tensors.running():
            keras_tensors.check_runs_its_call(self)
        return active.call(functools.partial(original, self), self, a, k)

    total = _Tally()
    with _TRACE_LOCK:
        restores = [snapshot_state(layer) for layer in layers]  # also drops the call wrappers

        def reset() -> None:
            """Every layer as it was, its ``call`` counted (after a run that failed)."""
            for restore in restores:
                restore()
            for layer in layers:
                _count_direct_calls(layer)

        unwatch = _watch_reads(_variable_classes(layers))
        layer_class.__call__ = counting_call
        _TRACING.counter = tracer
        first = keras_tensors_first and keras_tensors.supported()
        try:
            with (
                keras_tensors.keras_tensor_runs(tracer.read) if first else contextlib.nullcontext()
            ):
                for layer in layers:
                    _count_direct_calls(layer)
                runs = _Runs(tracer, reset, first)
                for caller, layer, args, kwargs in targets:
                    total.add(runs.counted(caller, layer, args, kwargs), 1)
        except TraceFailed:
            raise
        except Exception as exc:
            raise TraceFailed(_failure(exc)) from None
        finally:
            layer_class.__call__ = original
            _TRACING.counter = None
            unwatch()
            for restore in restores:
                restore()
    return Trace(calls=total.calls, reads=total.reads)


def _count_direct_calls(layer: Any) -> None:
    """Count the runs of ``layer``'s ``call`` made past ``__call__`` (a layer may run a
    sublayer's ``call`` itself) while a pass is active in this thread."""
    bound = layer.call

    def call(*a: Any, **k: Any) -> Any:
        active = getattr(_TRACING, "counter", None)
        if active is None:
            return bound(*a, **k)
        return active.call(bound, layer, a, k)

    object.__setattr__(layer, "call", call)


#: Sizes given to unknown dimensions when a backend cannot trace them symbolically.
_CONCRETE_SIZES = (4, 5)


class _Runs:
    """The counted runs of one pass: each on Keras tensors where it can be
    (:mod:`weighttie._keras.keras_tensors`), else through the backend.

    A run on Keras tensors reads what the backend's run would read, without building
    the backend's ops. Where it fails (code computing with a backend function), the
    layers are put back as they were and the call runs through the backend, and so
    do the later targets of the same layer class (the same code would fail again).
    """

    def __init__(self, tracer: _Tracer, reset: Callable[[], None], keras_tensors: bool) -> None:
        self.tracer = tracer
        self.reset = reset
        self.keras_tensors = keras_tensors
        self.through_backend: set[type] = set()

    def counted(
        self, caller: int, layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Tally:
        """One call of ``layer`` by ``caller``, counted."""
        if self.keras_tensors and type(layer) not in self.through_backend:
            try:
                return self._sized(caller, layer, args, kwargs, _on_keras_tensors)
            except Exception:
                self.through_backend.add(type(layer))
                self.reset()
        return self._sized(caller, layer, args, kwargs, _through_backend)

    def _run(
        self,
        caller: int,
        layer: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        way: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any],
    ) -> _Tally:
        """One symbolic run of ``layer`` by ``caller`` made ``way``, counted."""
        import warnings

        self.tracer.start(layer, caller)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            way(layer, args, kwargs)
        return self.tracer.result(layer)

    def _sized(
        self,
        caller: int,
        layer: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        way: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any],
    ) -> _Tally:
        """One symbolic run of ``layer``, made ``way``, counted.

        JAX traces an unknown dimension (``None``: batch, sequence length) as a
        symbolic size, which some layers cannot compare with a number (keras_hub's
        position embedding asks whether the sequence fits its table:
        "inconclusive"); Keras tensors' ops cannot make a range of unknown length (a
        causal mask). Where the symbolic run fails and an input has such a
        dimension, the run is made at two concrete sizes instead (still no data), and
        must count the same at both. (On Keras tensors, a condition computed from a
        concrete size then has one branch, where the backend's run at unknown sizes
        traces both: such a run fails, :mod:`weighttie._keras.keras_tensors`, and the
        backend's stands.)
        """

        def run(a: tuple[Any, ...], k: dict[str, Any]) -> _Tally:
            return self._run(caller, layer, a, k, way)

        try:
            return run(args, kwargs)
        except TraceFailed:
            raise
        except Exception:
            if not _has_unknown_dimension((args, kwargs)):
                raise
            first = sys.exc_info()
        try:
            tallies = [run(*_with_size((args, kwargs), size)) for size in _CONCRETE_SIZES]
        except Exception:
            raise first[1].with_traceback(first[2]) from None  # type: ignore[union-attr]
        if any((t.calls, t.reads) != (tallies[0].calls, tallies[0].reads) for t in tallies[1:]):
            raise TraceFailed("the layers called depend on the input's size")
        return tallies[0]


def _on_keras_tensors(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A call of ``layer`` on Keras tensors (:func:`keras_tensors.on_keras_tensors`)."""
    return keras_tensors.on_keras_tensors(lambda: layer(*args, **kwargs))


def _through_backend(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A call of ``layer`` in Keras's symbolic execution on the backend,
    ``backend.compute_output_spec``: its placeholders, no data, no node added to any graph."""
    from keras.src import backend

    return backend.compute_output_spec(layer, *args, **kwargs)


def _has_unknown_dimension(structure: Any) -> bool:
    from keras import KerasTensor
    from keras.src import tree

    return any(
        isinstance(x, KerasTensor) and None in tuple(x.shape) for x in tree.flatten(structure)
    )


def _with_size(structure: Any, size: int) -> Any:
    """``structure`` with every unknown dimension of its symbolic tensors set to ``size``."""
    from keras import KerasTensor
    from keras.src import tree

    def concrete(x: Any) -> Any:
        if not isinstance(x, KerasTensor) or None not in tuple(x.shape):
            return x
        shape = tuple(size if d is None else d for d in x.shape)
        return KerasTensor(shape, dtype=x.dtype, sparse=x.sparse)

    return tree.map_structure(concrete, structure)


def _failure(exc: Exception) -> str:
    """One line for a failed pass: the error under Keras's "Exception encountered when
    calling X.call()" wrapping, and the innermost layer call it names."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    where = re.findall(r"Exception encountered when calling (\S+?)\.?$", text, re.MULTILINE)
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.strip().startswith(("Exception encountered", "Arguments received", "•"))
    ]
    message = lines[0] if lines else ""
    message = message if len(message) <= 200 else message[:199] + "…"
    inside = f" in {where[-1]}" if where else ""
    return f"{type(exc).__name__}{inside}: {message}"


def loops_over_sublayers(layer: Any) -> bool:
    """Whether ``layer``'s call runs its sublayers in a loop over time.

    A recurrent layer runs its cell in a loop a symbolic pass traces once or more;
    ``TimeDistributed`` runs its layer's ``call`` (not ``__call__``) once per step
    of a static time axis, or in a traced ``vectorized_map``. Traced counts of
    their sublayers say nothing about their calls.
    """
    import keras

    return isinstance(layer, keras.layers.RNN | keras.layers.TimeDistributed)
