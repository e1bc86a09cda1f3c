"""Checking a Report against a spec: one :class:`Result` per expectation, in spec order."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from weighttie.report import GroupKind, LayerInfo, Report
from weighttie.spec.parse import BOUNDS, GroupSpec, Spec

__all__ = ["Result", "check", "check_cost", "check_not_shared", "check_param", "match_layers"]


@dataclass(frozen=True)
class Result:
    """One expectation checked: ``failure`` is None when it holds."""

    name: str
    failure: str | None

    @property
    def passed(self) -> bool:
        return self.failure is None


# -- matching layers ----------------------------------------------------------------


def match_layers(report: Report, patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Resolve names, paths and globs to layer paths: ``(paths, patterns that matched none)``.

    A pattern matches layer paths (``tower/conv``, ``tower_*``); only when no path
    matches does it match bare layer names (``conv`` for ``tower/conv``).
    """
    paths: dict[str, None] = {}
    unmatched = []
    for pattern in patterns:
        found = _match(report.layers, pattern)
        if not found:
            unmatched.append(pattern)
        paths.update(dict.fromkeys(found))
    return sorted(paths), unmatched


def _match(layers: Sequence[LayerInfo], pattern: str) -> list[str]:
    """Paths first; a layer's bare name only when no path matches."""
    if any(c in pattern for c in "*?["):
        depth = pattern.count("/")  # like a shell: * does not cross a /
        by_path = [
            r.path
            for r in layers
            if r.path.count("/") == depth and fnmatch.fnmatchcase(r.path, pattern)
        ]
        return by_path or [r.path for r in layers if fnmatch.fnmatchcase(r.name, pattern)]
    exact = [r.path for r in layers if r.path == pattern]
    return exact or [r.path for r in layers if r.name == pattern]


def _fmt(paths: Iterable[str]) -> str:
    return "[" + ", ".join(paths) + "]"


# -- unknown calls ------------------------------------------------------------------


def _unknown_calls_failure(report: Report, why: str) -> str:
    """``unknown: this static report cannot tell how often layers run, so …: <note>``."""
    reason = report.model.calls_note or ""
    return (
        f"unknown: this {report.model.source!s} report cannot tell how often layers run, "
        f"so {why}: {reason}"
    )


# -- checking -------------------------------------------------------------------------


def check(report: Report, spec: Spec) -> list[Result]:
    """Check every expectation of ``spec`` against ``report``, in spec order."""
    results: list[Result] = []
    for key, value in spec.params.items():
        results.append(check_param(report, key, value))
    for key, value in spec.cost.items():
        results.append(check_cost(report, key, value))
    matched_groups: set[int] = set()
    for g in spec.groups:
        result, index = _check_group(report, g)
        results.append(result)
        if index is not None:
            matched_groups.add(index)
    if spec.exact_groups:
        extra = [grp for i, grp in enumerate(report.groups) if i not in matched_groups]
        problems = [
            f"unexpected {grp.kind.value} group {_fmt(grp.layers)} ({grp.params:,} params)"
            for grp in extra
        ]
        if report.model.calls_note is not None:
            problems.append(
                _unknown_calls_failure(
                    report,
                    "a layer or model called more than once (sharing its weights) is not seen",
                )
            )
        results.append(Result("no other sharing groups", "; ".join(problems) or None))
    for layers in spec.not_shared:
        results.append(check_not_shared(report, layers))
    for kind in sorted(spec.forbid_findings):
        found = [f for f in report.findings if f.kind == kind]
        failure = "; ".join(f"{_fmt(f.layers)}: {f.message}" for f in found) or None
        results.append(Result(f"no {kind} findings", failure))
    return results


def check_param(report: Report, key: str, expected: int) -> Result:
    bound, name = BOUNDS.get(key, (None, key))
    found = getattr(report.params, name)
    op = {None: "==", "max": "<=", "min": ">="}[bound]
    text = f"params.{name} {op} {expected:,}"
    if found is None:  # a per-use count of a file that states no calls
        return Result(text, _unknown_calls_failure(report, f"params.{name} is unknown"))
    ok = {None: found == expected, "max": found <= expected, "min": found >= expected}[bound]
    return Result(text, None if ok else f"found {found:,}")


def check_cost(report: Report, key: str, limit: int) -> Result:
    """One ``[cost]`` budget: ``max_macs``, ``max_bytes_unique`` or ``max_bytes_per_use``.

    A budget holds only when the cost is known: MACs with every layer counted,
    bytes with every dtype's width known. Unknown is a failure that says why.
    """
    cost = report.cost
    if key == "max_macs":
        text = f"cost.macs <= {limit:,}"
        if cost.macs is None and report.model.calls_note is not None:
            return Result(text, _unknown_calls_failure(report, "its MACs are unknown"))
        if cost.macs is not None and cost.macs > limit:
            bound = "at least " if cost.uncounted else ""
            return Result(text, f"found {bound}{cost.macs:,}")
        if cost.uncounted:
            layers = f"{cost.uncounted} layer{'s' if cost.uncounted != 1 else ''}"
            counted = "" if cost.macs is None else f"{cost.macs:,} counted, "
            return Result(text, f"unknown: {counted}{layers} not counted{_uncounted(report)}")
        if cost.macs is None:
            return Result(text, "unknown: no call's MACs are known (a weighttie.report/1 report?)")
        return Result(text, None)
    which = key.removeprefix("max_bytes_")
    found = getattr(cost.bytes, which)
    text = f"cost.bytes.{which} <= {limit:,}"
    if found is None and which == "per_use" and report.model.calls_note is not None:
        return Result(text, _unknown_calls_failure(report, "its per-use bytes are unknown"))
    if found is None:
        return Result(text, "unknown: a variable's dtype has no known width, or no cost recorded")
    return Result(text, None if found <= limit else f"found {found:,}")


def _uncounted(report: Report, shown: int = 3) -> str:
    """`` (e.g. 'lstm' (LSTM))``: graph calls of unknown MACs, innermost first."""
    parents = {row.parent for row in report.layers if row.nodes is not None}
    leaves = [
        row
        for row in report.layers
        if row.nodes is not None and row.macs is None and row.path not in parents
    ]
    if not leaves:
        return ""
    names = ", ".join(f"{row.path!r} ({row.class_name})" for row in leaves[:shown])
    more = f" and {len(leaves) - shown} more" if len(leaves) > shown else ""
    return f" (calls of unknown MACs: {names}{more}: no rule for the class, or a shape unknown)"


def _check_group(report: Report, expected: GroupSpec) -> tuple[Result, int | None]:
    name = f"{expected.kind.value} group {_fmt(expected.layers)}"
    paths, unmatched = match_layers(report, expected.layers)
    if unmatched:
        return Result(name, f"no layer matches {', '.join(map(repr, unmatched))}"), None
    for i, grp in enumerate(report.groups):
        if grp.kind is expected.kind and sorted(grp.layers) == paths:
            problems = []
            if expected.calls is not None and grp.calls != expected.calls:
                problems.append(
                    f"expected {expected.calls} calls; found "
                    + ("unknown" if grp.calls is None else str(grp.calls))
                )
            if expected.params is not None and grp.params != expected.params:
                problems.append(f"expected {expected.params:,} params; found {grp.params:,}")
            return Result(name, "; ".join(problems) or None), i
    near = [grp for grp in report.groups if set(grp.layers) & set(paths)]
    if near:
        found = "; ".join(f"{grp.kind.value} group {_fmt(grp.layers)}" for grp in near)
    elif report.model.calls_note is None:
        found = "those layers share no weights"
    elif expected.kind is GroupKind.TIED:  # ties are known without calls
        found = "no two of those layers hold the same variable"
    else:
        return Result(
            name, _unknown_calls_failure(report, f"a {expected.kind.value} group is not seen")
        ), None
    return Result(
        name, f"expected a {expected.kind.value} group of {_fmt(paths)}; found {found}"
    ), None


def _shared_variables(report: Report, paths: Iterable[str]) -> dict[str, set[str]]:
    """The variables of each layer's subtree."""
    result: dict[str, set[str]] = {}
    for path in paths:
        prefix = path + "/"
        result[path] = {
            v
            for r in report.layers
            if r.path == path or r.path.startswith(prefix)
            for v in r.variables
        }
    return result


def check_not_shared(report: Report, patterns: tuple[str, ...]) -> Result:
    name = f"not shared {_fmt(patterns)}"
    paths, unmatched = match_layers(report, patterns)
    if unmatched:
        return Result(name, f"no layer matches {', '.join(map(repr, unmatched))}")
    problems = []
    for grp in report.groups:
        members = [p for p in paths if p in grp.layers]
        if members:
            problems.append(f"{_fmt(members)} in {grp.kind.value} group {_fmt(grp.layers)}")
    held = _shared_variables(report, paths)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            both = held[a] & held[b]
            if both and not (a.startswith(b + "/") or b.startswith(a + "/")):
                problems.append(f"{a} and {b} share {', '.join(sorted(both))}")
    if report.model.calls_note is not None and any(held.values()):  # weightless: nothing to share
        problems.append(
            _unknown_calls_failure(
                report,
                f"a layer of {_fmt(paths)} called more than once (sharing its weights) is not seen",
            )
        )
    return Result(name, "; ".join(problems) or None)
