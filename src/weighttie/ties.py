"""Ties: distinct layers holding one set of variables, kept across save and load.

``tie_weights(source, target)`` makes ``target`` hold ``source``'s variable
objects, so training updates one variable from both layers' gradients and the
optimizer keeps one slot set for it. Each tied layer also records the tie in its
``build_config`` (a ``"weighttie"`` key, which plain Keras ignores on load), so a
model saved with plain ``model.save`` carries its ties; ``load_model`` and
``retie`` bind them again *before* the optimizer is built, then restore the
optimizer state from the file. See docs/ties.md.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from weighttie import _keras
from weighttie.archive import iter_layer_configs
from weighttie.errors import (
    FileFormatError,
    LayerNotFoundError,
    OptimizerStateWarning,
    TieError,
    TieShapeError,
    TieValueError,
)
from weighttie.tie_record import (
    STATE_ATTR,
    DeclaredTie,
    FileTie,
    TieState,
    VariablePair,
    build_record,
    file_ties,
    pair_variables,
    state_of,
)

__all__ = [
    "load_model",
    "retie",
    "tie_weights",
    "untie",
]

Keep = Literal["source", "target"]


# -- per-layer bookkeeping ------------------------------------------------------


def _state_of(layer: Any) -> TieState | None:
    return state_of(layer)


def _state(layer: Any) -> TieState:
    state = _state_of(layer)
    if state is None:
        state = TieState()
        _keras.set_private(layer, STATE_ATTR, state)
        _keras.extend_build_config(layer, lambda: _record(layer))
    return state


def _record(layer: Any) -> dict[str, Any]:
    """What ``save`` writes into the layer's build_config."""
    state = _state_of(layer)
    if state is None:
        return {}
    return build_record(state, lambda source: _state(source).token)


# -- pairing variables ----------------------------------------------------------


_Pair = VariablePair[Any, Any]


def _describe(layer: Any, name: str) -> str:
    return f"{layer.name}/{name}"


def _pairs(source: Any, target: Any, names: tuple[str, ...] | None) -> list[_Pair]:
    """The tie's variable pairs (:func:`~weighttie.tie_record.pair_variables`), shapes checked."""
    pairs = pair_variables(source, target, names, _keras.LIVE_LAYERS)
    for p in pairs:
        if tuple(p.source.shape) != tuple(p.target.shape):
            raise TieShapeError(
                f"{_describe(p.target_layer, p.name)} has shape {tuple(p.target.shape)}; "
                f"{_describe(p.source_layer, p.name)} has shape {tuple(p.source.shape)}"
            )
        if str(p.source.dtype) != str(p.target.dtype):
            raise TieShapeError(
                f"{_describe(p.target_layer, p.name)} has dtype {p.target.dtype}; "
                f"{_describe(p.source_layer, p.name)} has dtype {p.source.dtype}"
            )
    return pairs


def _values(variable: Any) -> np.ndarray:
    return np.asarray(variable.numpy())


def _check_values(pairs: Sequence[_Pair], keep: Keep | None, *, hint: str) -> None:
    if keep is not None:
        return
    for p in pairs:
        if p.source is p.target:
            continue
        a, b = _values(p.source), _values(p.target)
        if not np.array_equal(a, b):
            delta = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            raise TieValueError(
                f"{_describe(p.target_layer, p.name)} and {_describe(p.source_layer, p.name)} "
                f"hold different values (max |difference| {delta:.3g}); {hint}"
            )


_KEEP_HINT = (
    "tying would discard one set: pass keep='source' to keep the source's values "
    "or keep='target' to keep the target's"
)


# -- replacing variables across tied layers -------------------------------------


def _linked(layer: Any, *, sources: bool, targets: bool) -> list[Any]:
    """``layer`` and the layers reachable through ties: to sources, to targets, or both."""
    seen: dict[int, Any] = {}
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen[id(current)] = current
        state = _state_of(current)
        if state is not None:
            if sources:
                stack.extend(t.source for t in state.ties)
            if targets:
                stack.extend(state.targets)
    return list(seen.values())


def _component(layer: Any) -> list[Any]:
    """Every layer linked to ``layer`` by ties, in either direction."""
    return _linked(layer, sources=True, targets=True)


def _downstream(layer: Any) -> list[Any]:
    """``layer`` and every layer tied to it as a target, transitively."""
    return _linked(layer, sources=False, targets=True)


def _upstream(layer: Any) -> list[Any]:
    """``layer`` and every layer it takes variables from, transitively."""
    return _linked(layer, sources=True, targets=False)


def _subtree(layer: Any) -> list[Any]:
    result, stack, seen = [], [layer], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        result.append(current)
        stack.extend(_keras.sublayers(current))
    return result


def _replace(layers: Iterable[Any], mapping: Sequence[tuple[Any, Any]]) -> None:
    """Make ``layers`` (and their sublayers) hold each pair's new variable instead of its old,
    then rebuild what Keras derived from the old ones (:func:`_refresh`)."""
    changed = [sub for layer in layers for sub in _subtree(layer)]
    for sub in changed:
        for old, new in mapping:
            _keras.replace_own_variable(sub, old, new)
    if mapping:
        _refresh(changed, [v for pair in mapping for v in pair])


def _refresh(changed: Sequence[Any], variables: Sequence[Any]) -> None:
    """Rebuild what Keras derived from the variables ``changed`` layers held before.

    Under torch, the parameters registered by those layers and by every layer
    containing them; under every backend, the compiled train/test/predict functions
    of the models containing them (TensorFlow's would keep computing and training
    with the variables given up).
    """
    live = _keras.live_layers()
    _keras.sync_torch_parameters(variables, live)
    for model in _keras.models_containing(changed, live):
        _keras.reset_step_functions(model)


def _check_optimizers(layers: Sequence[Any], change: str) -> None:
    """Refuse to change the variables of a model whose optimizer is already built, where
    training cannot go on afterwards (nothing is changed).

    Raises:
        TieError: a model containing ``layers`` has a built optimizer.
    """
    live = _keras.live_layers()
    for model in _keras.models_containing(layers, live):
        optimizer = _keras.built_optimizer(model)
        if optimizer is not None:
            raise TieError(
                f"model {model.name!r} cannot train after {change}: its optimizer "
                f"{optimizer.name!r} is already built, on the variables the model trained "
                f"before ({len(optimizer.variables)} optimizer variables); do it before the "
                "optimizer is built (the first fit, or evaluate under JAX), or compile the "
                "model again first (a fresh optimizer)"
            )


def _stateless_training() -> bool:
    """Whether the backend trains statelessly over the variables an optimizer was built on
    (JAX): changing a model's trainable variables after that makes ``fit`` fail."""
    import keras

    return bool(keras.config.backend() == "jax")


def _bind(
    source: Any,
    target: Any,
    names: tuple[str, ...] | None,
    keep: Keep | None,
    *,
    check_optimizers: bool = False,
) -> None:
    """Make target (and layers sharing its variables through ties) hold source's variables."""
    pairs = _pairs(source, target, names)
    _check_values(pairs, keep, hint=_KEEP_HINT)
    if check_optimizers and _stateless_training() and any(p.source is not p.target for p in pairs):
        _check_optimizers(_component(target), f"tying {target.name!r} to {source.name!r}")
    mapping = []
    for p in pairs:
        if p.source is p.target:
            continue
        if keep == "target":
            p.source.assign(p.target.value)
        mapping.append((p.target, p.source))
    _replace(_component(target), mapping)


def _on_build(layer: Any) -> None:
    """A tied layer finished building: bind each tie whose other side is built too.

    The layer that just built holds fresh initial values; the other side's values
    (possibly trained) are the ones kept.
    """
    state = _state_of(layer)
    if state is None:
        return
    for tie in state.ties:  # layer is the target: it takes the source's variables
        if tie.source.built:
            _bind(tie.source, layer, tie.variables, keep="source")
    for target in state.targets:  # layer is the source: it adopts the target's
        if target.built:
            names = next(t.variables for t in _state(target).ties if t.source is layer)
            pairs = _pairs(layer, target, names)
            mapping = [(p.source, p.target) for p in pairs if p.source is not p.target]
            _replace(_component(layer), mapping)


def _hook(layer: Any) -> None:
    state = _state(layer)
    if not state.hooked and not layer.built:
        _keras.after_build(layer, _on_build)
        state.hooked = True


# -- public API -------------------------------------------------------------------


def _check_layer(layer: Any, role: str) -> None:
    import keras

    if not isinstance(layer, keras.Layer):
        raise TieError(f"tie_weights expects keras layers; received {role}={type(layer).__name__}")


def tie_weights(
    source: Any,
    target: Any,
    *,
    variables: Sequence[str] | None = None,
    keep: Keep | None = None,
) -> None:
    """Make ``target`` hold ``source``'s variable objects, all or the named ones.

    Works for layers of one class whose other settings differ (Conv2D with
    ``padding="same"`` and ``"valid"``, different strides, activation …), for
    layers whose variables sit in sublayers (LSTM and GRU cells, nested models),
    and for built and unbuilt layers: an unbuilt side is bound when it builds.
    Afterwards the tie is part of both layers' saved config, so
    :func:`load_model` brings it back.

    Args:
        source: the layer whose variables are kept.
        target: the layer that gives up its own variables.
        variables: variable names to tie (e.g. ``["kernel"]``); default all.
        keep: which values survive when the built layers' values differ:
            ``"source"`` or ``"target"``. Without it, differing values are an error:
            weighttie never discards values silently.

    Raises:
        TieShapeError: shapes or dtypes differ (nothing is changed).
        TieValueError: values differ and ``keep`` is None (nothing is changed).
        TieError: same layer twice, a cycle, different classes, unknown names; under
            JAX, a model containing ``target`` has already built its optimizer (JAX
            trains over exactly the variables it was built on: compile again first).

    Example:
        >>> same = keras.layers.Conv2D(8, 3, padding="same")
        >>> valid = keras.layers.Conv2D(8, 3, padding="valid")
        >>> weighttie.tie_weights(same, valid)      # before the model is built
        >>> x = keras.Input((32, 32, 3))
        >>> model = keras.Model(x, [same(x), valid(x)])
        >>> valid.kernel is same.kernel
        True
    """
    _tie(source, target, variables, keep, check_optimizers=True)


def _tie(
    source: Any,
    target: Any,
    variables: Sequence[str] | None,
    keep: Keep | None,
    *,
    check_optimizers: bool,
) -> None:
    """tie_weights; ``check_optimizers=False`` where the model is compiled afresh afterwards."""
    _check_layer(source, "source")
    _check_layer(target, "target")
    if source is target:
        raise TieError(f"cannot tie layer {source.name!r} to itself")
    if keep not in (None, "source", "target"):
        raise TieError(f"keep must be 'source', 'target' or None; received keep={keep!r}")
    names = None if variables is None else tuple(dict.fromkeys(variables))
    if names is not None and not names:
        raise TieError("variables=[] ties nothing; pass None to tie every variable")
    if any(layer is target for layer in _upstream(source)):
        raise TieError(
            f"tying {source.name!r} → {target.name!r} would close a cycle: "
            f"{source.name!r} already takes its variables from {target.name!r}"
        )
    existing = _state_of(target)
    if existing is not None:
        for tie in existing.ties:
            if tie.source is source and tie.variables == names:
                return  # declared already: tying twice is a no-op
        if existing.ties:
            other = existing.ties[0].source
            raise TieError(
                f"{target.name!r} is already tied to {other.name!r}; call untie({target.name}) "
                "first, or tie the new source to the existing one"
            )
    if type(source) is not type(target):
        raise TieError(
            f"tie_weights ties layers of one class; {source.name} is {type(source).__name__} "
            f"and {target.name} is {type(target).__name__}"
        )
    if source.built and target.built:
        # validates everything before changing anything
        _bind(source, target, names, keep, check_optimizers=check_optimizers)
    _state(target).ties.append(DeclaredTie(source, names))
    _state(source).targets.append(target)
    _hook(source)
    _hook(target)


def untie(target: Any) -> None:
    """Give ``target`` its own copies of the variables it was tied on, holding the current values.

    Layers tied to ``target`` in turn follow it (they stay tied to ``target``).

    Raises:
        TieError: ``target`` is not the target of a tie, or a model containing it has
            already built its optimizer, which has no slots for the copies (nothing is
            changed: compile the model again first).
    """
    _check_layer(target, "target")
    state = _state_of(target)
    if state is None or not state.ties:
        raise TieError(f"layer {target.name!r} is not the target of a tie; nothing to untie")
    mapping = []
    if target.built:
        for tie in state.ties:
            if not tie.source.built:
                continue
            for p in _pairs(tie.source, target, tie.variables):
                if p.source is p.target:
                    mapping.append((p.source, _keras.variable_copy(p.target_layer, p.source)))
    if mapping:  # a new variable has no slots in a built optimizer, under every backend
        _check_optimizers(_downstream(target), f"untying {target.name!r}")
    # Everything that can fail is done: change the model now.
    _replace(_downstream(target), mapping)
    for tie in state.ties:
        source_state = _state_of(tie.source)
        if source_state is not None:
            source_state.targets = [t for t in source_state.targets if t is not target]
    state.ties.clear()


# -- load / retie: checking a file's ties ------------------------------------------
#
# A file's ties are checked as a set, against the model and against each other,
# before any is bound; then all are bound and the model compiled, or, on any
# exception (KeyboardInterrupt included), the model is put back as it was.

_REBUILD_HINT = (
    "its tie records are inconsistent: load it with keras.saving.load_model "
    "(the copies load untied) and tie the layers again with tie_weights"
)


@dataclass(frozen=True)
class _PathTie:
    """A tie between two layers of a model, with the paths that name them in messages."""

    source: Any
    target: Any
    variables: tuple[str, ...] | None
    source_path: str
    target_path: str


def _layers_by_path(model: Any) -> dict[str, Any]:
    from weighttie.walk import _walk

    return {path: visited.layer for path, visited in _walk(model).visited.items()}


def _resolve(tie: FileTie, layers: dict[str, Any], file: str) -> _PathTie:
    for path in (tie.source, tie.target):
        if path not in layers:
            raise LayerNotFoundError(
                f"{file!r} declares a tie {tie.source} → {tie.target}, but the model has no "
                f"layer {path!r}"
            )
    return _PathTie(layers[tie.source], layers[tie.target], tie.variables, tie.source, tie.target)


def _source_of(layer: Any, planned: dict[int, _PathTie]) -> DeclaredTie | None:
    """The tie ``layer`` takes its variables through: planned from the file, or in the model."""
    if id(layer) in planned:
        tie = planned[id(layer)]
        return DeclaredTie(tie.source, tie.variables)
    state = _state_of(layer)
    return state.ties[0] if state is not None and state.ties else None


def _on(variables: tuple[str, ...] | None) -> str:
    return "all variables" if variables is None else ", ".join(variables)


def _is_new(tie: _PathTie, planned: dict[int, _PathTie], file: str) -> bool:
    """Whether ``tie`` is not declared yet; raise if its target takes variables elsewhere."""
    existing = _source_of(tie.target, planned)
    if existing is None:
        return True
    if existing.source is tie.source and existing.variables == tie.variables:
        return False  # declared already, in the model or earlier in the file
    target, source = tie.target_path, tie.source_path
    if id(tie.target) not in planned:
        on = f" on {_on(existing.variables)}" if existing.source is tie.source else ""
        raise TieError(
            f"{file!r} ties {target} to {source}, but {target} is already tied to "
            f"{existing.source.name!r}{on} in this model; untie it first"
        )
    earlier = planned[id(tie.target)]
    if existing.source is tie.source:
        raise TieError(
            f"{file!r} ties {target!r} to {source!r} twice, on {_on(earlier.variables)} "
            f"and on {_on(tie.variables)}; {_REBUILD_HINT}"
        )
    raise TieError(
        f"{file!r} ties {target!r} to both {earlier.source_path!r} and {source!r}; a layer "
        f"takes its variables from one source, so {_REBUILD_HINT}"
    )


def _check_no_cycle(
    tie: _PathTie, planned: dict[int, _PathTie], paths: dict[int, str], file: str
) -> None:
    chain = [tie.target, tie.source]  # each layer takes its variables from the next
    while chain[-1] is not tie.target:
        upstream = _source_of(chain[-1], planned)
        if upstream is None or any(upstream.source is layer for layer in chain[1:]):
            return
        chain.append(upstream.source)
    names = " → ".join(paths.get(id(layer), layer.name) for layer in reversed(chain))
    raise TieError(
        f"{file!r} ties {tie.target_path!r} to {tie.source_path!r}, which closes a cycle: "
        f"{names}; a chain of ties starts at one source layer, so {_REBUILD_HINT}"
    )


def _check_fits(tie: _PathTie, file: str) -> None:
    """Class, structure, shapes, dtypes and the saved values: what binding would refuse."""
    try:
        pairs = _pairs(tie.source, tie.target, tie.variables)
    except TieError as exc:
        raise type(exc)(
            f"{file!r} ties {tie.target_path!r} to {tie.source_path!r}, which this model "
            f"cannot hold: {exc}"
        ) from None
    _check_values(
        pairs,
        None,
        hint=f"the copies saved in {file!r} disagree, so the file was not saved from a "
        "model with this tie; load it with keras and call tie_weights(..., keep=...)",
    )


def _plan_file_ties(model: Any, ties: Sequence[FileTie], file: str) -> list[_PathTie]:
    """The file's ties that are new to the model, each checked against the model and the rest.

    Raises:
        LayerNotFoundError: a tie names a layer the model does not have.
        TieError: a layer tied to itself, to two sources (in the file, or in the file and
            the model), ties in a cycle, or a tie binding would refuse (class, shapes,
            dtypes, copies that disagree).
    """
    layers = _layers_by_path(model)
    paths: dict[int, str] = {}
    for path, layer in layers.items():
        paths.setdefault(id(layer), path)
    planned: dict[int, _PathTie] = {}  # by id of the target
    for declared in ties:
        tie = _resolve(declared, layers, file)
        if tie.source is tie.target:
            raise TieError(f"{file!r} ties layer {tie.target_path!r} to itself; {_REBUILD_HINT}")
        if not _is_new(tie, planned, file):
            continue
        _check_no_cycle(tie, planned, paths, file)
        _check_fits(tie, file)
        planned[id(tie.target)] = tie
    return list(planned.values())


# -- load / retie: compiling from a file -------------------------------------------

_COMPILE_HINT = "load without compiling (compile=False) and compile the model yourself"


@dataclass(frozen=True)
class _CompileStep:
    """What compiling from a file needs, read and checked before the model changes."""

    arguments: dict[str, Any]  # compile()'s keyword arguments, the optimizer an object
    optimizer_state: dict[str, np.ndarray] | None  # the saved optimizer variables


def _known_optimizer(name: str) -> bool:
    import keras

    try:
        keras.optimizers.get(name)
    except Exception:
        return False
    return True


def _optimizer(entry: Any, file: str, unsafe: bool) -> Any:
    """The optimizer a compile_config names, as an (unbuilt) optimizer object."""
    import keras

    from weighttie.keras_loading import first_line as _first_line

    try:
        return keras.optimizers.get(
            keras.saving.deserialize_keras_object(entry, safe_mode=not unsafe)
        )
    except Exception as exc:
        name = entry.get("class_name") if isinstance(entry, dict) else entry
        if isinstance(name, str) and not _known_optimizer(name):
            raise FileFormatError(
                f"{file!r} has a compile_config naming optimizer {name!r}, which Keras does "
                "not know; register its class (custom_objects or "
                f"keras.saving.register_keras_serializable), or {_COMPILE_HINT}"
            ) from None
        raise FileFormatError(
            f"{file!r} has a compile_config whose optimizer Keras cannot build "
            f"({type(exc).__name__}: {_first_line(exc)}); {_COMPILE_HINT}"
        ) from None


def _check_compile_keys(model: Any, config: Any, file: str) -> None:
    if not isinstance(config, dict):
        raise FileFormatError(
            f"{file!r} has a compile_config that is a {type(config).__name__}, not a mapping "
            f"of compile() arguments; {_COMPILE_HINT}"
        )
    parameters = inspect.signature(model.compile).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    unknown = sorted(set(config) - {p.name for p in parameters})
    if unknown:
        raise FileFormatError(
            f"{file!r} has a compile_config with arguments compile() does not take: "
            f"{', '.join(map(repr, unknown))}; {_COMPILE_HINT}"
        )


def _compile_arguments(
    model: Any, config: Any, file: str, custom_objects: dict[str, Any] | None, unsafe: bool
) -> dict[str, Any]:
    """compile()'s arguments from a compile_config, as ``compile_from_config`` reads them."""
    import keras

    from weighttie.keras_loading import first_line as _first_line

    _check_compile_keys(model, config, file)
    rest = {key: value for key, value in config.items() if key != "optimizer"}
    with keras.saving.custom_object_scope(custom_objects or {}):
        optimizer = _optimizer(config.get("optimizer", "rmsprop"), file, unsafe)
        try:
            arguments = keras.saving.deserialize_keras_object(rest, safe_mode=not unsafe)
        except Exception as exc:
            raise FileFormatError(
                f"{file!r} has a compile_config Keras cannot read "
                f"({type(exc).__name__}: {_first_line(exc)}); {_COMPILE_HINT}"
            ) from None
    return {**(arguments or {}), "optimizer": optimizer}


def _saved_optimizer_state(file: str) -> dict[str, np.ndarray] | None:
    from weighttie.archive import KerasArchive

    with KerasArchive(file) as archive, archive.weights() as h5:
        group = h5.get("optimizer/vars")
        if group is None:
            return None
        return {key: np.asarray(group[key]) for key in group}


def _prepare_compile(
    model: Any,
    file: str,
    config: dict[str, Any],
    custom_objects: dict[str, Any] | None = None,
    unsafe: bool = False,
) -> _CompileStep | None:
    """Read and check the file's compile config and optimizer state; None: nothing to compile.

    Raises:
        FileFormatError: the compile config is not one Keras can compile from.
    """
    compile_config = config.get("compile_config")
    if not compile_config:
        return None
    arguments = _compile_arguments(model, compile_config, file, custom_objects, unsafe)
    return _CompileStep(arguments, _saved_optimizer_state(file))


def _optimizer_state_mismatch(optimizer: Any, store: dict[str, np.ndarray]) -> str | None:
    variables = optimizer.variables
    if len(store) != len(variables):
        return (
            f"the file holds {len(store)} optimizer variables and the loaded model's "
            f"{optimizer.name!r} has {len(variables)}"
        )
    for i, variable in enumerate(variables):
        saved = store.get(str(i))
        if saved is None or tuple(saved.shape) != tuple(variable.shape):
            found = "nothing" if saved is None else f"shape {tuple(saved.shape)}"
            return (
                f"the loaded model's optimizer variable {i} ({variable.path}) has shape "
                f"{tuple(variable.shape)} and the file holds {found} for it"
            )
    return None


def _restore_optimizer_state(optimizer: Any, store: dict[str, np.ndarray], file: str) -> None:
    mismatch = _optimizer_state_mismatch(optimizer, store)
    if mismatch is not None:
        warnings.warn(
            f"optimizer state of {file!r} not restored: {mismatch}; training resumes with "
            "a fresh optimizer",
            OptimizerStateWarning,
            stacklevel=6,  # the caller of load_model / retie
        )
        return
    optimizer.load_own_variables(store)


def _compile(model: Any, step: _CompileStep, file: str) -> None:
    """Compile as Keras's ``compile_from_config`` does, then restore the optimizer state."""
    model.compile(**step.arguments)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not model.built:
        return
    optimizer.build(model.trainable_variables)  # on the tied variables
    if step.optimizer_state is not None:
        _restore_optimizer_state(optimizer, step.optimizer_state, file)


# -- load / retie: binding all or nothing ------------------------------------------


def _touched(model: Any, planned: Sequence[_PathTie]) -> list[Any]:
    """The model, and every layer binding ``planned`` can change: the tied layers' subtrees."""
    found: dict[int, Any] = {id(model): model}
    for tie in planned:
        for layer in _component(tie.source) + _component(tie.target):
            for sub in _subtree(layer):
                found.setdefault(id(sub), sub)
    return list(found.values())


def _snapshot(layers: Sequence[Any]) -> Callable[[], None]:
    """Return a function that puts ``layers`` (and their tie records) back as they are now."""
    restores = [_keras.snapshot_state(layer) for layer in layers]
    records = [
        (state, list(state.ties), list(state.targets), state.hooked)
        for state in map(_state_of, layers)
        if state is not None
    ]
    variables = [v for layer in layers for v in _keras.own_variables(layer)]

    def restore() -> None:
        for restore_layer in restores:
            restore_layer()
        for state, ties, targets, hooked in records:
            state.ties[:], state.targets[:], state.hooked = ties, targets, hooked
        # Under torch, layers outside ``layers`` that contain them (a nested model
        # between the model and a tied layer) registered parameters for the binding.
        _keras.sync_torch_parameters(variables)

    return restore


def _is_bound(tie: _PathTie) -> bool:
    if not (tie.source.built and tie.target.built):
        return True  # binds when both are built
    try:
        pairs = _pairs(tie.source, tie.target, tie.variables)
    except TieError:
        return False
    return all(p.source is p.target for p in pairs)


def _model_ties(layers: Sequence[Any]) -> list[_PathTie]:
    """The ties declared on ``layers`` that are bound now."""
    declared = [
        _PathTie(tie.source, layer, tie.variables, tie.source.name, layer.name)
        for layer in layers
        if (state := _state_of(layer)) is not None
        for tie in state.ties
    ]
    return [tie for tie in declared if _is_bound(tie)]


def _check_bound(ties: Sequence[_PathTie], file: str) -> None:
    """After binding: every tie must hold (overlapping ties can undo each other)."""
    for tie in ties:
        if not _is_bound(tie):
            raise TieError(
                f"{file!r} ties {tie.target_path!r} to {tie.source_path!r}, but binding it with "
                "the file's other ties leaves them holding separate variables: two ties reach "
                f"the same layer (one of them inside a tied model); {_REBUILD_HINT}"
            )


def _bind_planned(tie: _PathTie) -> None:
    """Bind one checked tie; its copies hold equal values, so keep='source' discards nothing.

    The optimizers were checked before binding began (``_bind_and_compile``).
    """
    _tie(tie.source, tie.target, tie.variables, "source", check_optimizers=False)


def _bind_and_compile(
    model: Any, planned: Sequence[_PathTie], step: _CompileStep | None, file: str
) -> None:
    """Bind every planned tie, then compile; on any exception, change nothing."""
    if step is None and planned and _stateless_training():  # no fresh optimizer follows
        _check_optimizers([tie.target for tie in planned], f"binding the ties of {file!r}")
    touched = _touched(model, planned)
    restore = _snapshot(touched)
    bound_before = _model_ties(touched)
    try:
        for tie in planned:
            _bind_planned(tie)
        _check_bound([*bound_before, *planned], file)
        if step is not None:
            _compile(model, step, file)
    except BaseException:  # KeyboardInterrupt too: never leave the model half-tied
        restore()
        raise


def _bind_file(
    model: Any,
    file: str,
    config: dict[str, Any],
    *,
    compile: bool,
    custom_objects: dict[str, Any] | None = None,
    unsafe: bool = False,
) -> list[FileTie]:
    """Bind every tie ``file`` declares, then compile from it: all of it, or nothing."""
    ties = file_ties(iter_layer_configs(config))
    planned = _plan_file_ties(model, ties, file)
    step = _prepare_compile(model, file, config, custom_objects, unsafe) if compile else None
    _bind_and_compile(model, planned, step, file)
    return ties


def load_model(
    path: str | os.PathLike[str],
    *,
    compile: bool = True,
    unsafe: bool = False,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Load a ``.keras`` file with its ties bound and its optimizer state restored.

    A drop-in for ``keras.saving.load_model``: a file without ties loads exactly as
    Keras loads it. With ties, the model is rebuilt without compiling; the file's
    ties are checked as a set (against the model and each other) and its compile
    config is read, then every tie is bound and only then is the model compiled
    and the optimizer state read, so nothing is skipped.

    Raises:
        MissingFileError, FileFormatError, UnsafeModelError: the file cannot be read,
            or its compile config is not one Keras can compile from.
        TieError: the file's ties do not fit its model, or conflict with each other.

    Example:
        >>> model.save("tied.keras")                       # doctest: +SKIP
        >>> again = weighttie.load_model("tied.keras")     # doctest: +SKIP
    """
    from weighttie.archive import KerasArchive
    from weighttie.keras_loading import load_keras_model
    from weighttie.loading import FileKind, check_model_file

    file = os.fspath(path)
    kind = check_model_file(file)
    config: dict[str, Any] = {}
    if kind is FileKind.KERAS:
        with KerasArchive(file) as archive:
            config = archive.config()
    if not file_ties(iter_layer_configs(config)):
        return load_keras_model(
            file, unsafe=unsafe, compile=compile, custom_objects=custom_objects, quiet=False
        )
    model = load_keras_model(
        file, unsafe=unsafe, compile=False, custom_objects=custom_objects, quiet=False
    )
    _bind_file(model, file, config, compile=compile, custom_objects=custom_objects, unsafe=unsafe)
    return model


def retie(
    model: Any,
    path: str | os.PathLike[str],
    *,
    custom_objects: dict[str, Any] | None = None,
    unsafe: bool = False,
) -> tuple[FileTie, ...]:
    """Bind the ties ``path`` declares on a model already loaded with plain Keras.

    If the model is compiled, its optimizer (which plain Keras built on the untied
    variables, skipping the saved state) is rebuilt from the file's compile config
    and the saved optimizer state is restored.

    All or nothing: the file's ties are checked as a set, against the model and
    against each other, and its compile config is read before anything changes;
    if binding or compiling still fails (or is interrupted), the model is put back
    as it was: its variables, tie records and optimizer.

    ``custom_objects`` and ``unsafe`` mean what they mean to ``load_model``: the
    compile config may name a loss, metric or optimizer Keras only knows through
    them (pass what the plain ``keras.saving.load_model`` call was given).

    Returns:
        The ties the file declares, as source/target paths.

    Raises:
        MissingFileError, FileFormatError: the file cannot be read, or the model is
            compiled and the file's compile config is not one Keras can compile from.
        LayerNotFoundError: a tie names a layer the model does not have.
        TieError: the file's ties do not fit the model, or conflict with each other.
    """
    from weighttie.archive import KerasArchive
    from weighttie.loading import check_model_file

    file = os.fspath(path)
    check_model_file(file)
    with KerasArchive(file) as archive:
        config = archive.config()
    compiled = getattr(model, "optimizer", None) is not None
    return tuple(
        _bind_file(
            model, file, config, compile=compiled, custom_objects=custom_objects, unsafe=unsafe
        )
    )
