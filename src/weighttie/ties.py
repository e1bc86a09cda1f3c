"""Ties: distinct layers holding one set of variables, kept across save and load.

``tie_weights(source, target)`` makes ``target`` hold ``source``'s variable
objects, so training updates one variable from both layers' gradients and the
optimizer keeps one slot set for it. Each tied layer also records the tie in its
``build_config`` (a ``"weighttie"`` key, which plain Keras ignores on load), so a
model saved with plain ``model.save`` carries its ties; :mod:`weighttie.load`
binds them again on load. See docs/ties.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from weighttie import _keras
from weighttie.errors import (
    TieError,
    TieShapeError,
    TieValueError,
)
from weighttie.tie_record import (
    STATE_ATTR,
    DeclaredTie,
    TieState,
    VariablePair,
    build_record,
    pair_variables,
    state_of,
)

__all__ = [
    "Keep",
    "check_values",
    "layer_subtree",
    "refuse_built_optimizers",
    "stateless_training",
    "tie_layers",
    "tie_weights",
    "tied_component",
    "untie",
    "variable_pairs",
]

Keep = Literal["source", "target"]


# -- per-layer bookkeeping ------------------------------------------------------


def _state(layer: Any) -> TieState:
    state = state_of(layer)
    if state is None:
        state = TieState()
        _keras.set_private(layer, STATE_ATTR, state)
        _keras.extend_build_config(layer, lambda: _record(layer))
    return state


def _record(layer: Any) -> dict[str, Any]:
    """What ``save`` writes into the layer's build_config."""
    state = state_of(layer)
    if state is None:
        return {}
    return build_record(state, lambda source: _state(source).token)


# -- pairing variables ----------------------------------------------------------


_Pair = VariablePair[Any, Any]


def _describe(layer: Any, name: str) -> str:
    return f"{layer.name}/{name}"


def variable_pairs(source: Any, target: Any, names: tuple[str, ...] | None) -> list[_Pair]:
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


def check_values(pairs: Sequence[_Pair], keep: Keep | None, *, hint: str) -> None:
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
        state = state_of(current)
        if state is not None:
            if sources:
                stack.extend(t.source for t in state.ties)
            if targets:
                stack.extend(state.targets)
    return list(seen.values())


def tied_component(layer: Any) -> list[Any]:
    """Every layer linked to ``layer`` by ties, in either direction."""
    return _linked(layer, sources=True, targets=True)


def _downstream(layer: Any) -> list[Any]:
    """``layer`` and every layer tied to it as a target, transitively."""
    return _linked(layer, sources=False, targets=True)


def _upstream(layer: Any) -> list[Any]:
    """``layer`` and every layer it takes variables from, transitively."""
    return _linked(layer, sources=True, targets=False)


def layer_subtree(layer: Any) -> list[Any]:
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
    changed = [sub for layer in layers for sub in layer_subtree(layer)]
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


def refuse_built_optimizers(layers: Sequence[Any], change: str) -> None:
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


def stateless_training() -> bool:
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
    pairs = variable_pairs(source, target, names)
    check_values(pairs, keep, hint=_KEEP_HINT)
    if check_optimizers and stateless_training() and any(p.source is not p.target for p in pairs):
        refuse_built_optimizers(tied_component(target), f"tying {target.name!r} to {source.name!r}")
    mapping = []
    for p in pairs:
        if p.source is p.target:
            continue
        if keep == "target":
            p.source.assign(p.target.value)
        mapping.append((p.target, p.source))
    _replace(tied_component(target), mapping)


def _on_build(layer: Any) -> None:
    """A tied layer finished building: bind each tie whose other side is built too.

    The layer that just built holds fresh initial values; the other side's values
    (possibly trained) are the ones kept.
    """
    state = state_of(layer)
    if state is None:
        return
    for tie in state.ties:  # layer is the target: it takes the source's variables
        if tie.source.built:
            _bind(tie.source, layer, tie.variables, keep="source")
    for target in state.targets:  # layer is the source: it adopts the target's
        if target.built:
            names = next(t.variables for t in _state(target).ties if t.source is layer)
            pairs = variable_pairs(layer, target, names)
            mapping = [(p.source, p.target) for p in pairs if p.source is not p.target]
            _replace(tied_component(layer), mapping)


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
    tie_layers(source, target, variables, keep, check_optimizers=True)


def tie_layers(
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
    existing = state_of(target)
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
    state = state_of(target)
    if state is None or not state.ties:
        raise TieError(f"layer {target.name!r} is not the target of a tie; nothing to untie")
    mapping = []
    if target.built:
        for tie in state.ties:
            if not tie.source.built:
                continue
            for p in variable_pairs(tie.source, target, tie.variables):
                if p.source is p.target:
                    mapping.append((p.source, _keras.variable_copy(p.target_layer, p.source)))
    if mapping:  # a new variable has no slots in a built optimizer, under every backend
        refuse_built_optimizers(_downstream(target), f"untying {target.name!r}")
    # Everything that can fail is done: change the model now.
    _replace(_downstream(target), mapping)
    for tie in state.ties:
        source_state = state_of(tie.source)
        if source_state is not None:
            source_state.targets = [t for t in source_state.targets if t is not target]
    state.ties.clear()
