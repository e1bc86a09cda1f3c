"""Loading a model file with its ties: ``load_model`` and ``retie``.

``load_model`` and ``retie`` bind a file's ties (:mod:`weighttie.tie_record`)
*before* the optimizer is built, then restore the optimizer state from the file,
all or nothing. Keras itself is reached through :mod:`weighttie.keras_loading`,
after the bounded reader has checked the file once. See docs/ties.md.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from weighttie import _keras
from weighttie.errors import FileFormatError, LayerNotFoundError, OptimizerStateWarning, TieError
from weighttie.io.config_json import iter_layer_configs
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.tie_record import DeclaredTie, FileTie, file_ties, state_of
from weighttie.ties import (
    check_values,
    layer_subtree,
    refuse_built_optimizers,
    stateless_training,
    tie_layers,
    tied_component,
    variable_pairs,
)

__all__ = ["load_model", "retie"]


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
    from weighttie.walk import layers_by_path

    return layers_by_path(model)


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
    state = state_of(layer)
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


def _check_fits(tie: _PathTie, file: str, *, values: bool = True) -> None:
    """Class, structure, shapes, dtypes and the saved values: what binding would refuse."""
    try:
        pairs = variable_pairs(tie.source, tie.target, tie.variables)
    except TieError as exc:
        raise type(exc)(
            f"{file!r} ties {tie.target_path!r} to {tie.source_path!r}, which this model "
            f"cannot hold: {exc}"
        ) from None
    if not values:
        return
    check_values(
        pairs,
        None,
        hint=f"the copies saved in {file!r} disagree, so the file was not saved from a "
        "model with this tie; load it with keras and call tie_weights(..., keep=...)",
    )


def _plan_file_ties(
    model: Any, ties: Sequence[FileTie], file: str, *, values: bool = True
) -> list[_PathTie]:
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
        _check_fits(tie, file, values=values)
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

    from weighttie.errors import first_line as _first_line

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

    from weighttie.errors import first_line as _first_line

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
    from weighttie.io.keras_zip import KerasArchive

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
        for layer in tied_component(tie.source) + tied_component(tie.target):
            for sub in layer_subtree(layer):
                found.setdefault(id(sub), sub)
    return list(found.values())


def _snapshot(layers: Sequence[Any]) -> Callable[[], None]:
    """Return a function that puts ``layers`` (and their tie records) back as they are now."""
    restores = [_keras.snapshot_state(layer) for layer in layers]
    records = [
        (state, list(state.ties), list(state.targets), state.hooked)
        for state in map(state_of, layers)
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
        pairs = variable_pairs(tie.source, tie.target, tie.variables)
    except TieError:
        return False
    return all(p.source is p.target for p in pairs)


def _model_ties(layers: Sequence[Any]) -> list[_PathTie]:
    """The ties declared on ``layers`` that are bound now."""
    declared = [
        _PathTie(tie.source, layer, tie.variables, tie.source.name, layer.name)
        for layer in layers
        if (state := state_of(layer)) is not None
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
    tie_layers(tie.source, tie.target, tie.variables, "source", check_optimizers=False)


def _bind_and_compile(
    model: Any, planned: Sequence[_PathTie], step: _CompileStep | None, file: str
) -> None:
    """Bind every planned tie, then compile; on any exception, change nothing."""
    if step is None and planned and stateless_training():  # no fresh optimizer follows
        refuse_built_optimizers([tie.target for tie in planned], f"binding the ties of {file!r}")
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


def bind_file_ties(
    model: Any,
    file: str,
    config: dict[str, Any],
    *,
    check_values: bool,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Bind the ties ``config`` (``file``'s) declares on ``model``, as :func:`load_model` does.

    ``check_values=False`` binds without comparing the two layers' values: for a model
    that holds none (built without values, :mod:`weighttie.traced`), whose file's
    saved copies the static reader compared instead.
    """
    ties = file_ties(iter_layer_configs(config, max_depth=limits.depth))
    _bind_and_compile(model, _plan_file_ties(model, ties, file, values=check_values), None, file)


def load_model(
    path: str | os.PathLike[str],
    *,
    compile: bool = True,
    unsafe: bool = False,
    custom_objects: dict[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    quiet: bool = False,
) -> Any:
    """Load a ``.keras`` file with its ties bound and its optimizer state restored.

    A drop-in for ``keras.saving.load_model``: a file without ties loads exactly as
    Keras loads it. With ties, the model is rebuilt without compiling; the file's
    ties are checked as a set (against the model and each other) and its compile
    config is read, then every tie is bound and only then is the model compiled
    and the optimizer state read, so nothing is skipped.

    Before Keras sees the file, the bounded reader checks it once, within
    ``limits`` (docs/trust-model.md); its config is parsed once for everything
    after. ``quiet`` silences Keras's Python warnings during the load.

    Raises:
        MissingFileError, FileFormatError, UnsafeModelError: the file cannot be read,
            or its compile config is not one Keras can compile from.
        LimitError: the file holds more than ``limits`` allow.
        TieError: the file's ties do not fit its model, or conflict with each other.

    Example:
        >>> model.save("tied.keras")                       # doctest: +SKIP
        >>> again = weighttie.load_model("tied.keras")     # doctest: +SKIP
    """
    from weighttie.keras_loading import load_keras_model
    from weighttie.static import check_before_load

    checked = check_before_load(path, limits=limits)
    file, config = checked.path, checked.config
    ties = file_ties(iter_layer_configs(config, max_depth=limits.depth))
    model = load_keras_model(
        file,
        unsafe=unsafe,
        compile=compile and not ties,
        custom_objects=custom_objects,
        quiet=quiet,
        checked=checked,
    )
    if ties:
        _bind_file(
            model, file, config, compile=compile, custom_objects=custom_objects, unsafe=unsafe
        )
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
    from weighttie.io.keras_zip import KerasArchive
    from weighttie.model_files import check_model_file

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
