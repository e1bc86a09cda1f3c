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

import os
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from weighttie import _keras
from weighttie.archive import RECORD_KEY, RECORD_VERSION, FileTie, file_ties
from weighttie.errors import (
    LayerNotFoundError,
    OptimizerStateWarning,
    TieError,
    TieShapeError,
    TieValueError,
)

__all__ = [
    "declared_ties",
    "load_model",
    "retie",
    "tie_weights",
    "untie",
]

Keep = Literal["source", "target"]


# -- per-layer bookkeeping ------------------------------------------------------


@dataclass
class _Tie:
    source: Any
    variables: tuple[str, ...] | None  # None: every variable


@dataclass
class _TieState:
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    ties: list[_Tie] = field(default_factory=list)  # this layer is the target
    targets: list[Any] = field(default_factory=list)  # layers tied to this one
    hooked: bool = False


_STATE_ATTR = "_weighttie_ties"


def _state_of(layer: Any) -> _TieState | None:
    state = getattr(layer, _STATE_ATTR, None)
    return state if isinstance(state, _TieState) else None


def _state(layer: Any) -> _TieState:
    state = _state_of(layer)
    if state is None:
        state = _TieState()
        _keras.set_private(layer, _STATE_ATTR, state)
        _keras.extend_build_config(layer, lambda: _record(layer))
    return state


def _record(layer: Any) -> dict[str, Any]:
    """What ``save`` writes into the layer's build_config."""
    state = _state_of(layer)
    if state is None or (not state.ties and not state.targets):
        return {}
    return {
        RECORD_KEY: {
            "version": RECORD_VERSION,
            "id": state.token,
            "ties": [
                {
                    "source": _state(t.source).token,
                    "variables": None if t.variables is None else list(t.variables),
                }
                for t in state.ties
            ],
        }
    }


# -- pairing variables ----------------------------------------------------------


@dataclass(frozen=True)
class _Pair:
    source_layer: Any
    target_layer: Any
    name: str
    source: Any  # keras.Variable
    target: Any


def _describe(layer: Any, name: str) -> str:
    return f"{layer.name}/{name}"


def _pairs(source: Any, target: Any, names: tuple[str, ...] | None) -> list[_Pair]:
    """Match target's variables to source's: by name, through sublayers by position."""
    pairs: list[_Pair] = []
    seen_names: set[str] = set()

    def visit(s: Any, t: Any) -> None:
        if type(s) is not type(t):
            raise TieError(
                f"tie_weights ties layers of one class; {s.name} is {type(s).__name__} "
                f"and {t.name} is {type(t).__name__}"
            )
        s_vars = {v.name: v for v in _keras.own_variables(s)}
        t_vars = {v.name: v for v in _keras.own_variables(t)}
        seen_names.update(s_vars)
        seen_names.update(t_vars)
        for name in sorted(set(s_vars) | set(t_vars)):
            if names is not None and name not in names:
                continue
            if name not in s_vars or name not in t_vars:
                has, lacks = (s, t) if name in s_vars else (t, s)
                raise TieError(
                    f"{_describe(has, name)} has no counterpart: {lacks.name} holds no "
                    f"variable {name!r}; tie a subset with variables=[...]"
                )
            pairs.append(_Pair(s, t, name, s_vars[name], t_vars[name]))
        s_subs, t_subs = _keras.sublayers(s), _keras.sublayers(t)
        if len(s_subs) != len(t_subs):
            raise TieError(
                f"{s.name} has {len(s_subs)} sublayers and {t.name} has {len(t_subs)}; "
                "tie_weights needs the same structure on both sides"
            )
        for s_sub, t_sub in zip(s_subs, t_subs, strict=True):
            visit(s_sub, t_sub)

    visit(source, target)
    if names is not None:
        missing = sorted(set(names) - {p.name for p in pairs})
        if missing:
            raise TieError(
                f"{target.name} and {source.name} have no variable named "
                f"{', '.join(map(repr, missing))}; their variables are "
                f"{', '.join(sorted(seen_names)) or '(none: are they built?)'}"
            )
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
    for layer in layers:
        for sub in _subtree(layer):
            for old, new in mapping:
                _keras.replace_own_variable(sub, old, new)


def _bind(source: Any, target: Any, names: tuple[str, ...] | None, keep: Keep | None) -> None:
    """Make target (and layers sharing its variables through ties) hold source's variables."""
    pairs = _pairs(source, target, names)
    _check_values(pairs, keep, hint=_KEEP_HINT)
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
        TieError: same layer twice, a cycle, different classes, unknown names.

    Example:
        >>> same = keras.layers.Conv2D(8, 3, padding="same")
        >>> valid = keras.layers.Conv2D(8, 3, padding="valid")
        >>> weighttie.tie_weights(same, valid)      # before the model is built
        >>> x = keras.Input((32, 32, 3))
        >>> model = keras.Model(x, [same(x), valid(x)])
        >>> valid.kernel is same.kernel
        True
    """
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
        _bind(source, target, names, keep)  # validates everything before changing anything
    _state(target).ties.append(_Tie(source, names))
    _state(source).targets.append(target)
    _hook(source)
    _hook(target)


def untie(target: Any) -> None:
    """Give ``target`` its own copies of the variables it was tied on, holding the current values.

    Layers tied to ``target`` in turn follow it (they stay tied to ``target``).

    Raises:
        TieError: ``target`` is not the target of a tie.
    """
    import keras

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
                    copy = keras.Variable(
                        initializer=_values(p.source),
                        dtype=p.source.dtype,
                        trainable=p.source.trainable,
                        name=p.source.name,
                    )
                    mapping.append((p.source, copy))
    # Everything that can fail is done: change the model now.
    _replace(_downstream(target), mapping)
    for tie in state.ties:
        source_state = _state_of(tie.source)
        if source_state is not None:
            source_state.targets = [t for t in source_state.targets if t is not target]
    state.ties.clear()


# -- what a model declares ------------------------------------------------------


def declared_ties(model: Any, layers_by_path: dict[str, Any]) -> tuple[Any, ...]:
    """The ties declared on the layers of a walked model, as report ``Tie`` rows.

    ``layers_by_path`` maps each path of the model to an object with a ``layer``
    attribute (the walker's visited layers).
    """
    from weighttie.report import Tie

    path_of: dict[int, str] = {}
    for path, visited in sorted(layers_by_path.items()):
        path_of.setdefault(id(visited.layer), path)
    rows = []
    for path, visited in sorted(layers_by_path.items()):
        if path_of[id(visited.layer)] != path:
            continue
        state = _state_of(visited.layer)
        if state is None:
            continue
        for tie in state.ties:
            source_path = path_of.get(id(tie.source), f"{tie.source.name} (not in this model)")
            bound = False
            names: tuple[str, ...] = tie.variables or ()
            if tie.source.built and visited.layer.built:
                try:
                    pairs = _pairs(tie.source, visited.layer, tie.variables)
                except TieError:
                    pairs = []
                bound = bool(pairs) and all(p.source is p.target for p in pairs)
                names = tie.variables or tuple(sorted({p.name for p in pairs}))
            rows.append(Tie(source=source_path, target=path, variables=names, bound=bound))
    return tuple(rows)


# -- load / retie -----------------------------------------------------------------


def _layers_by_path(model: Any) -> dict[str, Any]:
    from weighttie.walk import _walk

    return {path: visited.layer for path, visited in _walk(model).visited.items()}


def _bind_file_ties(model: Any, ties: Sequence[FileTie], file: str) -> None:
    """Bind every tie a file declares; check all of them before changing anything."""
    layers = _layers_by_path(model)
    resolved = []
    for tie in ties:
        missing = [p for p in (tie.source, tie.target) if p not in layers]
        if missing:
            raise LayerNotFoundError(
                f"{file!r} declares a tie {tie.source} → {tie.target}, but the model has no "
                f"layer {missing[0]!r}"
            )
        source, target = layers[tie.source], layers[tie.target]
        existing = _state_of(target)
        if existing is not None and any(t.source is not source for t in existing.ties):
            raise TieError(
                f"{file!r} ties {tie.target} to {tie.source}, but {tie.target} is already tied "
                f"to {existing.ties[0].source.name!r} in this model; untie it first"
            )
        pairs = _pairs(source, target, tie.variables)
        _check_values(
            pairs,
            None,
            hint=f"the copies saved in {file!r} disagree, so the file was not saved from a "
            "model with this tie; load it with keras and call tie_weights(..., keep=...)",
        )
        resolved.append((source, target, tie.variables))
    for source, target, names in resolved:
        tie_weights(source, target, variables=names, keep="source")


def _restore_compile(model: Any, path: str, config: dict[str, Any]) -> None:
    """Compile from the file's compile config, then restore the optimizer state saved in it."""
    from weighttie.archive import KerasArchive

    compile_config = config.get("compile_config")
    if not compile_config:
        return
    model.compile_from_config(compile_config)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    with KerasArchive(path) as archive, archive.weights() as h5:
        group = h5.get("optimizer/vars")
        if group is None:
            return
        store = {key: np.asarray(group[key]) for key in group}
    if len(store) != len(optimizer.variables):
        warnings.warn(
            f"optimizer state of {path!r} not restored: the file holds {len(store)} "
            f"optimizer variables and the loaded model's {optimizer.name!r} has "
            f"{len(optimizer.variables)}; training resumes with a fresh optimizer",
            OptimizerStateWarning,
            stacklevel=3,
        )
        return
    optimizer.load_own_variables(store)


def load_model(
    path: str | os.PathLike[str],
    *,
    compile: bool = True,
    unsafe: bool = False,
    custom_objects: dict[str, Any] | None = None,
) -> Any:
    """Load a ``.keras`` file with its ties bound and its optimizer state restored.

    A drop-in for ``keras.saving.load_model``: a file without ties loads exactly as
    Keras loads it. With ties, the model is rebuilt without compiling, each declared
    tie is bound (the file's copies must hold equal values), and only then is the
    model compiled and the optimizer state read, so nothing is skipped.

    Raises:
        MissingFileError, FileFormatError, UnsafeModelError: the file cannot be read.
        TieError: the file's ties do not fit its model.

    Example:
        >>> model.save("tied.keras")                       # doctest: +SKIP
        >>> again = weighttie.load_model("tied.keras")     # doctest: +SKIP
    """
    from weighttie.archive import KerasArchive
    from weighttie.loading import FileKind, check_model_file, load_keras_model

    file = os.fspath(path)
    kind = check_model_file(file)
    config: dict[str, Any] = {}
    ties: list[FileTie] = []
    if kind is FileKind.KERAS:
        with KerasArchive(file) as archive:
            config = archive.config()
        ties = file_ties(config)
    if not ties:
        return load_keras_model(
            file, unsafe=unsafe, compile=compile, custom_objects=custom_objects, quiet=False
        )
    model = load_keras_model(
        file, unsafe=unsafe, compile=False, custom_objects=custom_objects, quiet=False
    )
    _bind_file_ties(model, ties, file)
    if compile:
        _restore_compile(model, file, config)
    return model


def retie(model: Any, path: str | os.PathLike[str]) -> tuple[FileTie, ...]:
    """Bind the ties ``path`` declares on a model already loaded with plain Keras.

    If the model is compiled, its optimizer (which plain Keras built on the untied
    variables, skipping the saved state) is rebuilt from the file's compile config
    and the saved optimizer state is restored.

    Returns:
        The ties bound, as source/target paths.
    """
    from weighttie.archive import KerasArchive
    from weighttie.loading import check_model_file

    file = os.fspath(path)
    check_model_file(file)
    with KerasArchive(file) as archive:
        config = archive.config()
    ties = file_ties(config)
    _bind_file_ties(model, ties, file)
    if ties and getattr(model, "optimizer", None) is not None:
        _restore_compile(model, file, config)
    return tuple(ties)
