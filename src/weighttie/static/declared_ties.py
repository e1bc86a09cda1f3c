"""The ties a ``.keras`` file declares, applied as :func:`weighttie.load_model` binds
them: only where the layers fit and the saved copies hold equal values."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from weighttie.errors import TieError
from weighttie.facts import ROOT, RawDifferingTie, RawLayer, RawVariable
from weighttie.io.config_json import iter_layer_configs
from weighttie.report import Tie
from weighttie.static.rows import Reader
from weighttie.static.values import Values
from weighttie.tie_record import file_ties, pair_variables

__all__ = ["apply_ties"]


def apply_ties(
    reader: Reader, config: dict[str, Any], values: Values
) -> tuple[list[Tie], list[RawDifferingTie]]:
    """Merge the variables of each declared tie's target into its source's, as load_model binds.

    A tie binds only when the layers fit (class, variable names, shapes, dtypes)
    and the file's two copies of each variable hold equal values, which is what
    :func:`weighttie.load_model` requires; the copies are compared in full, streamed.
    """
    ties = file_ties(iter_layer_configs(config, max_depth=reader.limits.depth))
    if not ties:
        return [], []
    view = _FileRows(reader)
    merge: dict[Hashable, Hashable] = {}
    result = []

    def pair(source: str, target: str, names: tuple[str, ...] | None) -> list[tuple[Any, Any]]:
        """(target key, source key) of each pair the tie binds; none if the layers do not fit."""
        try:
            pairs = pair_variables(source, target, names, view)
        except TieError:
            return []
        specs = reader.variables
        if not all(_same_spec(specs[p.source], specs[p.target]) for p in pairs):
            return []
        return [(p.target, p.source) for p in pairs]

    differing: list[RawDifferingTie] = []
    for tie in ties:
        if tie.source not in view.rows or tie.target not in view.rows:
            continue
        pairs = pair(tie.source, tie.target, tie.variables)
        names = tie.variables
        if pairs and names is None:
            names = tuple(sorted({reader.variables[t].name for t, _ in pairs}))
        unequal = tuple((t, s) for t, s in pairs if not values.equal(str(t), str(s)))
        if unequal:
            params = sum(_size(reader.variables[t].shape) for t, _ in pairs)
            differing.append(RawDifferingTie(tie.source, tie.target, unequal, params))
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


class _FileRows:
    """A file's layer rows as :func:`~weighttie.tie_record.pair_variables` sees them."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.rows = {row.path: row for row in reader.rows}
        self.children: dict[str, list[str]] = {}
        for row in reader.rows:
            if row.parent is not None and row.path != ROOT:
                self.children.setdefault(row.parent, []).append(row.path)

    def name(self, layer: str) -> str:
        return self.rows[layer].name

    def class_name(self, layer: str) -> str:
        return self.rows[layer].class_name

    def same_class(self, a: str, b: str) -> bool:
        return self.rows[a].class_name == self.rows[b].class_name

    def variables(self, layer: str) -> dict[str, Hashable]:
        return {self.reader.variables[k].name: k for k in self.rows[layer].variables}

    def sublayers(self, layer: str) -> list[str]:
        return self.children.get(layer, [])


def _same_spec(a: RawVariable, b: RawVariable) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for d in shape:
        size *= d
    return size
