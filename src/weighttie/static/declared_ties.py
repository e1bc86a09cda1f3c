"""The ties a ``.keras`` file declares, applied as :func:`weighttie.load_model` binds
them: only where the layers fit and the saved copies hold equal values."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from weighttie.archive import file_ties
from weighttie.facts import RawLayer, RawVariable
from weighttie.graph import ROOT, variable_paths
from weighttie.report import Finding, Tie
from weighttie.static.rows import _Reader
from weighttie.static.values import _Values


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
