"""Assertions for pytest (or plain Python) that guard a model's sharing.

Each takes a live ``keras.Model``, a :class:`~weighttie.Report`, or a model file
path (read statically), and raises ``AssertionError`` saying what was expected,
what was found, and where. Layers are named by name or path; where a set of
layers is meant, glob patterns (``tower_*``) are allowed.

Example:
    >>> from weighttie.testing import assert_shared, assert_params
    >>> assert_shared(model, "tower")                       # doctest: +SKIP
    >>> assert_params(model, max_unique=100_000, duplicated=86_720)   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from weighttie.report import Report
from weighttie.spec import Spec, check, load_spec, match_layers

__all__ = [
    "assert_cost",
    "assert_matches_spec",
    "assert_no_findings",
    "assert_not_shared",
    "assert_params",
    "assert_shared",
    "assert_tied",
    "report_of",
]


def report_of(model: Any) -> Report:
    """The report of a live model, a Report, a model file or a JSON report.

    Files follow the command line's policy (:func:`weighttie.front_door.report_of`):
    read statically, or through Keras when only Keras can tell (a subclassed model).
    """
    from weighttie.front_door import report_of as front_door

    return front_door(model)


def _paths(report: Report, layers: Sequence[str]) -> list[str]:
    if not layers:
        raise AssertionError("name at least one layer")
    paths, unmatched = match_layers(report, layers)
    if unmatched:
        known = ", ".join(r.path for r in report.layers[:12])
        raise AssertionError(
            f"no layer of model {report.model.name!r} matches {', '.join(map(repr, unmatched))}; "
            f"layers include {known}"
        )
    return paths


def assert_shared(model: Any, *layers: str) -> None:
    """Each named layer is in a sharing group, and all of them are in one group together.

    Raises:
        AssertionError: a layer shares nothing, or the layers are not in one group.
    """
    report = report_of(model)
    paths = _paths(report, layers)
    groups = [g for g in report.groups if set(paths) <= set(g.layers)]
    if groups:
        return
    lonely = [p for p in paths if not any(p in g.layers for g in report.groups)]
    why = report.model.calls_note
    if lonely and why is not None:  # no group seen, but a layer called twice would not be
        raise AssertionError(
            f"expected {', '.join(paths)} to share weights; unknown: model "
            f"{report.model.name!r} ties none of {', '.join(lonely)} to another layer, and "
            f"this {report.model.source!s} report cannot tell how often layers run: {why}"
        )
    if lonely:
        raise AssertionError(
            f"expected {', '.join(paths)} to share weights; found no sharing group with "
            f"{', '.join(lonely)} in model {report.model.name!r}"
        )
    found = "; ".join(
        f"{g.kind.value} group [{', '.join(g.layers)}]"
        for g in report.groups
        if set(g.layers) & set(paths)
    )
    raise AssertionError(f"expected {', '.join(paths)} in one sharing group; found {found}")


def assert_not_shared(model: Any, *layers: str) -> None:
    """None of the named layers is in a sharing group, and no two of them share a variable.

    A report that cannot tell how often layers run (a keras_hub model's file) fails
    it for any layer holding variables, saying so: a layer called twice is not seen.
    """
    from weighttie.spec.check import check_not_shared

    report = report_of(model)
    _paths(report, layers)
    result = check_not_shared(report, tuple(layers))
    if result.failure:
        found = "" if result.failure.startswith("unknown: ") else "found "
        raise AssertionError(
            f"expected no sharing among {', '.join(layers)}; {found}{result.failure}"
        )


def _one(report: Report, layer: str) -> str:
    paths = _paths(report, [layer])
    if len(paths) != 1:
        raise AssertionError(
            f"{layer!r} matches {len(paths)} layers ({', '.join(paths)}); name one"
        )
    return paths[0]


def _subtree_variables(report: Report, path: str) -> list[dict[str, str]]:
    """The variables of each row of a layer's subtree, by name, rows in model order."""
    return [{report.variable(v).name: v for v in row.variables} for row in report.subtree(path)]


def assert_tied(model: Any, a: str, b: str, variables: Sequence[str] | None = None) -> None:
    """Layers ``a`` and ``b`` hold the very same variable objects (all, or the named ones).

    Sublayers are matched by position (an LSTM's cell), variables by name.
    """
    report = report_of(model)
    pa, pb = _one(report, a), _one(report, b)
    rows_a, rows_b = _subtree_variables(report, pa), _subtree_variables(report, pb)
    if len(rows_a) != len(rows_b):
        raise AssertionError(f"expected {pa} and {pb} tied; they differ in structure")
    checked, problems = [], []
    for held_a, held_b in zip(rows_a, rows_b, strict=True):
        for name in sorted(held_a) if variables is None else variables:
            if name not in held_a and name not in held_b:
                continue
            checked.append(name)
            va, vb = held_a.get(name), held_b.get(name)
            if va is None or vb is None:
                problems.append(f"{pa if va is None else pb} has no variable {name!r}")
            elif va != vb:
                problems.append(f"{va} and {vb} are separate variables")
    if variables is not None:
        missing = sorted(set(variables) - set(checked))
        problems += [f"neither {pa} nor {pb} has a variable {m!r}" for m in missing]
    if not checked and not problems:
        problems.append(f"{pa} holds no variables")
    if problems:
        raise AssertionError(f"expected {pa} and {pb} tied; found " + "; ".join(problems))


def assert_params(
    model: Any,
    *,
    unique: int | None = None,
    per_use: int | None = None,
    duplicated: int | None = None,
    trainable_unique: int | None = None,
    non_trainable_unique: int | None = None,
    max_unique: int | None = None,
    max_per_use: int | None = None,
    min_duplicated: int | None = None,
    max_duplicated: int | None = None,
) -> None:
    """Exact or bounded parameter counts (see docs/concepts.md for each count)."""
    from weighttie.spec.check import check_param

    report = report_of(model)
    given = {
        "unique": unique,
        "per_use": per_use,
        "duplicated": duplicated,
        "trainable_unique": trainable_unique,
        "non_trainable_unique": non_trainable_unique,
        "max_unique": max_unique,
        "max_per_use": max_per_use,
        "min_duplicated": min_duplicated,
        "max_duplicated": max_duplicated,
    }
    _assert_all(report, given, check_param)


def assert_cost(
    model: Any,
    *,
    max_macs: int | None = None,
    max_bytes_unique: int | None = None,
    max_bytes_per_use: int | None = None,
) -> None:
    """Cost budgets (docs/cost.md): MACs per forward pass, bytes stored once / per use.

    A budget holds only when the cost is known: an uncounted layer (a custom class)
    fails ``max_macs``, saying so.

    Example:
        >>> assert_cost(model, max_macs=5 * 10**9, max_bytes_unique=10**8)  # doctest: +SKIP
    """
    from weighttie.spec.check import check_cost

    report = report_of(model)
    given = {
        "max_macs": max_macs,
        "max_bytes_unique": max_bytes_unique,
        "max_bytes_per_use": max_bytes_per_use,
    }
    _assert_all(report, given, check_cost)


def _assert_all(report: Report, given: dict[str, int | None], check: Any) -> None:
    """Run ``check(report, key, value)`` for every given value; one AssertionError for all."""
    failures = [
        f"{r.name}: {r.failure}"
        for k, v in given.items()
        if v is not None
        for r in [check(report, k, v)]
        if r.failure
    ]
    if failures:
        raise AssertionError(f"model {report.model.name!r}: " + "; ".join(failures))


def assert_no_findings(model: Any, kinds: Sequence[str] | None = None) -> None:
    """No findings (of the given kinds: ``broken-tie``, ``twin-branches``)."""
    report = report_of(model)
    found = [f for f in report.findings if kinds is None or f.kind in kinds]
    if found:
        raise AssertionError(
            f"expected no findings in model {report.model.name!r}; found "
            + "; ".join(f"{f.kind} [{', '.join(f.layers)}]: {f.message}" for f in found)
        )


def assert_matches_spec(model: Any, spec: Spec | str | os.PathLike[str]) -> None:
    """Every expectation of a spec (a :class:`Spec` or a TOML file) holds."""
    report = report_of(model)
    resolved = spec if isinstance(spec, Spec) else load_spec(spec)
    failures = [r for r in check(report, resolved) if r.failure]
    if failures:
        raise AssertionError(
            f"model {report.model.name!r} violates its spec:\n"
            + "\n".join(f"  {r.name}: {r.failure}" for r in failures)
        )
