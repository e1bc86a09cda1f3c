"""The tie record: how a tie is kept on a live layer and written into a file, and which
variables a tie binds.

Three modules read ties, and all read them here:

* :mod:`weighttie.ties` makes, binds, undoes and reloads ties;
* :mod:`weighttie.walk` reports the ties a live model declares;
* the static reader reports the ties a file declares.

On a live layer a tie is a :class:`TieState` kept in a private attribute; in a file
it is a ``"weighttie"`` key in the tied layer's ``build_config`` (plain Keras
ignores it on load; see docs/ties.md):

.. code-block:: json

    "build_config": {"input_shape": [null, 4],
                     "weighttie": {"version": 1, "id": "3f2a…",
                                   "ties": [{"source": "9c1b…", "variables": null}]}}

:func:`pair_variables` is the one rule for which variables a tie binds: the
target's own variables to the source's of the same name, then sublayers by
position, all on layers of one class. It works on live layers and on a file's
rows alike, through a :class:`LayerView`.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from weighttie.errors import FileFormatError, TieError
from weighttie.report import Tie

__all__ = [
    "RECORD_KEY",
    "RECORD_VERSION",
    "STATE_ATTR",
    "DeclaredTie",
    "FileTie",
    "LayerView",
    "TieState",
    "VariablePair",
    "declared_ties",
    "file_ties",
    "pair_variables",
    "state_of",
]

#: The key weighttie adds to a tied layer's ``build_config``.
RECORD_KEY = "weighttie"
RECORD_VERSION = 1
#: The private attribute holding a live layer's :class:`TieState`.
STATE_ATTR = "_weighttie_ties"

L = TypeVar("L")
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)


# -- live layers --------------------------------------------------------------------


@dataclass
class DeclaredTie:
    """One tie on a live target layer: its source, and the variables tied (None: all)."""

    source: Any
    variables: tuple[str, ...] | None


@dataclass
class TieState:
    """A live layer's ties: ``ties`` as a target, ``targets`` tied to it as a source."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    ties: list[DeclaredTie] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)
    hooked: bool = False


def state_of(layer: Any) -> TieState | None:
    """The tie state of a live layer, or None when it takes part in no tie."""
    state = getattr(layer, STATE_ATTR, None)
    return state if isinstance(state, TieState) else None


def build_record(state: TieState, token_of: Any) -> dict[str, Any]:
    """What saving writes into a tied layer's build_config (``token_of(layer)`` names a source)."""
    if not state.ties and not state.targets:
        return {}
    return {
        RECORD_KEY: {
            "version": RECORD_VERSION,
            "id": state.token,
            "ties": [
                {
                    "source": token_of(t.source),
                    "variables": None if t.variables is None else list(t.variables),
                }
                for t in state.ties
            ],
        }
    }


# -- the pairing rule -----------------------------------------------------------------


class LayerView(Protocol[L, V_co]):
    """How :func:`pair_variables` sees a layer: live (Keras objects) or a file's rows."""

    def name(self, layer: L) -> str: ...
    def class_name(self, layer: L) -> str: ...
    def same_class(self, a: L, b: L) -> bool: ...
    def variables(self, layer: L) -> Mapping[str, V_co]: ...
    def sublayers(self, layer: L) -> Sequence[L]: ...


@dataclass(frozen=True)
class VariablePair(Generic[L, V]):
    """A target variable and the source variable a tie binds it to."""

    source_layer: L
    target_layer: L
    name: str
    source: V
    target: V


def pair_variables(
    source: L, target: L, names: tuple[str, ...] | None, view: LayerView[L, V]
) -> list[VariablePair[L, V]]:
    """Match ``target``'s variables to ``source``'s: by name, through sublayers by position.

    Shapes and dtypes are the caller's to compare (the live and static sides say
    different things about a mismatch).

    Raises:
        TieError: the layers differ in class or structure, a variable has no
            counterpart, or ``names`` names a variable neither layer holds.
    """
    pairs: list[VariablePair[L, V]] = []
    seen: set[str] = set()
    stack = [(source, target)]
    while stack:
        s, t = stack.pop()
        if not view.same_class(s, t):
            raise TieError(
                f"tie_weights ties layers of one class; {view.name(s)} is "
                f"{view.class_name(s)} and {view.name(t)} is {view.class_name(t)}"
            )
        s_vars, t_vars = view.variables(s), view.variables(t)
        seen.update(s_vars)
        seen.update(t_vars)
        for name in sorted(set(s_vars) | set(t_vars)):
            if names is not None and name not in names:
                continue
            if name not in s_vars or name not in t_vars:
                has, lacks = (s, t) if name in s_vars else (t, s)
                raise TieError(
                    f"{view.name(has)}/{name} has no counterpart: {view.name(lacks)} holds no "
                    f"variable {name!r}; tie a subset with variables=[...]"
                )
            pairs.append(VariablePair(s, t, name, s_vars[name], t_vars[name]))
        s_subs, t_subs = view.sublayers(s), view.sublayers(t)
        if len(s_subs) != len(t_subs):
            raise TieError(
                f"{view.name(s)} has {len(s_subs)} sublayers and {view.name(t)} has "
                f"{len(t_subs)}; tie_weights needs the same structure on both sides"
            )
        stack.extend(reversed(list(zip(s_subs, t_subs, strict=True))))
    if names is not None:
        missing = sorted(set(names) - {p.name for p in pairs})
        if missing:
            raise TieError(
                f"{view.name(target)} and {view.name(source)} have no variable named "
                f"{', '.join(map(repr, missing))}; their variables are "
                f"{', '.join(sorted(seen)) or '(none: are they built?)'}"
            )
    return pairs


# -- what a live model declares -----------------------------------------------------------


def declared_ties(layers_by_path: Mapping[str, Any], view: LayerView[Any, Any]) -> tuple[Tie, ...]:
    """The ties declared on a live model's layers (path → layer), as report rows.

    A tie is ``bound`` when both layers are built and every variable it pairs is
    one object on both sides.
    """
    path_of: dict[int, str] = {}
    for path, layer in sorted(layers_by_path.items()):
        path_of.setdefault(id(layer), path)
    rows = []
    for path, layer in sorted(layers_by_path.items()):
        state = state_of(layer)
        if path_of[id(layer)] != path or state is None:
            continue
        for tie in state.ties:
            source_path = path_of.get(id(tie.source), f"{tie.source.name} (not in this model)")
            bound = False
            names: tuple[str, ...] = tie.variables or ()
            if tie.source.built and layer.built:
                try:
                    pairs = pair_variables(tie.source, layer, tie.variables, view)
                except TieError:
                    pairs = []
                bound = bool(pairs) and all(p.source is p.target for p in pairs)
                names = tie.variables or tuple(sorted({p.name for p in pairs}))
            rows.append(Tie(source=source_path, target=path, variables=names, bound=bound))
    return tuple(rows)


# -- what a file declares ---------------------------------------------------------------


@dataclass(frozen=True)
class FileTie:
    """A tie a saved file declares: layer paths inside the file's model."""

    source: str
    target: str
    variables: tuple[str, ...] | None


def file_ties(layer_entries: Iterable[tuple[str, Mapping[str, Any]]]) -> list[FileTie]:
    """The ties declared by a file's layers, given as ``(path, layer entry)`` pairs.

    Raises:
        FileFormatError: a tie names a source that is not in the file.
    """
    by_token: dict[str, str] = {}
    declared: list[tuple[str, Mapping[str, Any]]] = []
    for path, entry in layer_entries:
        build = entry.get("build_config")
        record = build.get(RECORD_KEY) if isinstance(build, Mapping) else None
        if not isinstance(record, Mapping):
            continue
        token = record.get("id")
        if isinstance(token, str):
            by_token.setdefault(token, path)
        for tie in record.get("ties") or ():
            if isinstance(tie, Mapping):
                declared.append((path, tie))
    result = []
    for target, tie in declared:
        source = by_token.get(str(tie.get("source")))
        if source is None:
            raise FileFormatError(
                f"layer {target!r} declares a tie to a layer that is not in the file "
                f"(id {tie.get('source')!r})"
            )
        names = tie.get("variables")
        variables = tuple(str(n) for n in names) if isinstance(names, list) and names else None
        result.append(FileTie(source=source, target=target, variables=variables))
    return result
