"""Two reports compared: layers, groups, counts, ties, what could not be compared."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from weighttie.report import Finding, GroupKind, Report, SharingGroup
from weighttie.spec.parse import PARAM_KEYS

# -- diff ---------------------------------------------------------------------------

#: What a diff cannot compare when a report does not know its calls.
NOT_COMPARED = (
    "params.per_use",
    "params.duplicated",
    "shared-layer and shared-model groups",
    "group calls and duplicated counts",
)
_BY_CALLS = (GroupKind.SHARED_LAYER, GroupKind.SHARED_MODEL)
_GroupKey = tuple[str, tuple[str, ...]]

__all__ = ["NOT_COMPARED", "Diff", "diff"]


@dataclass(frozen=True)
class Diff:
    """How two reports' sharing differs.

    ``calls_unknown``: for report ``a`` and ``b``, why it cannot tell how often its
    layers run (None when it can). When either can not, :data:`NOT_COMPARED` was
    not compared, and the diff is not ``same``: it could not see everything.
    """

    added: tuple[SharingGroup, ...]
    removed: tuple[SharingGroup, ...]
    changed: tuple[tuple[SharingGroup, SharingGroup], ...]
    params: tuple[tuple[str, int, int], ...]  # (count, in a, in b)
    ties: tuple[tuple[str, str], ...]  # ("+"|"-", "source -> target")
    calls_unknown: tuple[str | None, str | None] = (None, None)
    findings: tuple[tuple[str, Finding], ...] = ()  # ("+"|"-", finding)
    cost: tuple[tuple[str, int, int], ...] = ()  # (figure, in a, in b)
    layers: tuple[tuple[str, str, str], ...] = ()  # ("+"|"-", path, class)

    @property
    def not_compared(self) -> tuple[str, ...]:
        """What was not compared: :data:`NOT_COMPARED` when either report's calls are unknown."""
        return NOT_COMPARED if self.calls_unknown != (None, None) else ()

    @property
    def differs(self) -> bool:
        """Some difference was seen (in what both reports know)."""
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.params
            or self.ties
            or self.findings
            or self.cost
            or self.layers
        )

    @property
    def same(self) -> bool:
        """No difference, and everything compared: unknown is never the same."""
        return not self.differs and not self.not_compared

    def to_dict(self) -> dict[str, Any]:
        def group(g: SharingGroup) -> dict[str, Any]:
            return {
                "kind": g.kind.value,
                "layers": list(g.layers),
                "params": g.params,
                "calls": g.calls,
                "duplicated": g.duplicated,
            }

        return {
            "schema": "weighttie.diff/1",
            "same": self.same,
            "groups": {
                "added": [group(g) for g in self.added],
                "removed": [group(g) for g in self.removed],
                "changed": [{"a": group(a), "b": group(b)} for a, b in self.changed],
            },
            "params": [{"count": k, "a": a, "b": b} for k, a, b in self.params],
            "ties": [{"change": c, "tie": t} for c, t in self.ties],
            "layers": [{"change": c, "path": p, "class": k} for c, p, k in self.layers],
            "findings": [
                {"change": c, "kind": f.kind.value, "layers": list(f.layers), "params": f.params}
                for c, f in self.findings
            ],
            "cost": [{"figure": k, "a": a, "b": b} for k, a, b in self.cost],
            "not_compared": list(self.not_compared),
            "calls_unknown": {"a": self.calls_unknown[0], "b": self.calls_unknown[1]},
        }


def diff(a: Report, b: Report) -> Diff:
    """Compare two reports: groups (matched by kind and layers), ties and counts.

    Where either report cannot tell how often layers run (``ModelInfo.calls_note``),
    what depends on calls is not compared (:data:`NOT_COMPARED`): the per-use
    counts, the groups of a layer or model called more than once, and group calls.
    Ties (distinct layers holding one variable) are compared either way.
    """
    unknown = (a.model.calls_note, b.model.calls_note)
    blind = unknown != (None, None)

    def comparable(groups: Iterable[SharingGroup]) -> dict[_GroupKey, SharingGroup]:
        """Groups by kind and layers; those seen only through calls when both know them."""
        return {(g.kind.value, g.layers): g for g in groups if not (blind and g.kind in _BY_CALLS)}

    a_groups, b_groups = comparable(a.groups), comparable(b.groups)
    added = tuple(b_groups[k] for k in sorted(set(b_groups) - set(a_groups)))
    removed = tuple(a_groups[k] for k in sorted(set(a_groups) - set(b_groups)))
    changed = tuple(
        (a_groups[k], b_groups[k])
        for k in sorted(set(a_groups) & set(b_groups))
        if (a_groups[k].params, a_groups[k].calls) != (b_groups[k].params, b_groups[k].calls)
    )
    counts = tuple(  # a count one report does not know (None) is not compared
        (k, getattr(a.params, k), getattr(b.params, k))
        for k in PARAM_KEYS
        if None not in (getattr(a.params, k), getattr(b.params, k))
        and getattr(a.params, k) != getattr(b.params, k)
    )
    a_ties = {f"{t.source} -> {t.target}" for t in a.ties if t.bound}
    b_ties = {f"{t.source} -> {t.target}" for t in b.ties if t.bound}
    ties = tuple(
        [("-", t) for t in sorted(a_ties - b_ties)] + [("+", t) for t in sorted(b_ties - a_ties)]
    )
    return Diff(
        added=added,
        removed=removed,
        changed=changed,
        params=counts,
        ties=ties,
        calls_unknown=unknown,
        findings=_findings(a, b),
        cost=_cost(a, b),
        layers=_layers(a, b),
    )


def _findings(a: Report, b: Report) -> tuple[tuple[str, Finding], ...]:
    """Findings only one report has, by kind and layers (a tower built twice is a new
    ``twin-branches``)."""
    a_found = {(f.kind.value, f.layers): f for f in a.findings}
    b_found = {(f.kind.value, f.layers): f for f in b.findings}
    return tuple(
        [("-", a_found[k]) for k in sorted(set(a_found) - set(b_found))]
        + [("+", b_found[k]) for k in sorted(set(b_found) - set(a_found))]
    )


def _cost(a: Report, b: Report) -> tuple[tuple[str, int, int], ...]:
    """Cost figures both reports know and that differ (MACs per pass, bytes, uncounted)."""
    figures = {
        "cost.macs": (a.cost.macs, b.cost.macs),
        "cost.bytes.unique": (a.cost.bytes.unique, b.cost.bytes.unique),
        "cost.bytes.per_use": (a.cost.bytes.per_use, b.cost.bytes.per_use),
        "cost.uncounted": (a.cost.uncounted, b.cost.uncounted),
    }
    return tuple(
        (name, x, y)
        for name, (x, y) in figures.items()
        if x is not None and y is not None and x != y
    )


def _layers(a: Report, b: Report) -> tuple[tuple[str, str, str], ...]:
    """Layers only one report has, by path, with their class."""
    a_rows = {row.path: row.class_name for row in a.layers}
    b_rows = {row.path: row.class_name for row in b.layers}
    return tuple(
        [("-", p, a_rows[p]) for p in sorted(set(a_rows) - set(b_rows))]
        + [("+", p, b_rows[p]) for p in sorted(set(b_rows) - set(a_rows))]
    )
