"""Every number, size, shape and stock sentence a human reads, formatted once.

The table, the Markdown, the picture and the HTML page all write counts, bytes and
shapes the same way: this module is the one place that says how (torchinfo keeps
its units in one module too). It formats plain values and reads only the Report;
escaping for a medium (terminal, Markdown, HTML) is the caller's job
(:mod:`weighttie.escape`).
"""

from __future__ import annotations

from collections.abc import Sequence

from weighttie.report import GroupKind, Report, Shape, SharingGroup

__all__ = [
    "CALLS_UNKNOWN_NO_TIES",
    "CALLS_UNKNOWN_WITH_TIES",
    "NOTHING_SHARED",
    "byte_size",
    "cost_line",
    "count",
    "layer_legend",
    "num",
    "params_cell",
    "shape",
    "shapes",
    "shared_by",
    "sharing_sentence",
    "short",
]

#: What the human outputs say when a report has no sharing group and knows its calls.
NOTHING_SHARED = "No weights are shared."
#: What they say about sharing when a report cannot tell how often layers run: its ties
#: are known, sharing by calls is not.
CALLS_UNKNOWN_NO_TIES = (
    "No two layers hold the same variables; calls are unknown (see the notes), so a layer "
    "or model called more than once, sharing its weights, cannot be seen."
)
CALLS_UNKNOWN_WITH_TIES = (
    "Only ties are listed: calls are unknown (see the notes), so a layer or model called "
    "more than once, sharing its weights, cannot be seen."
)


def sharing_sentence(report: Report) -> str | None:
    """The sentence under the groups (or in their place): None where the groups say it all.

    Example:
        >>> sharing_sentence(weighttie.analyze(model))  # doctest: +SKIP
        'No weights are shared.'
    """
    unknown = report.model.calls_note is not None
    if report.groups:
        return CALLS_UNKNOWN_WITH_TIES if unknown else None
    return CALLS_UNKNOWN_NO_TIES if unknown else NOTHING_SHARED


def num(n: int | None) -> str:
    """A count with thousands separators; ``unknown`` where the source cannot tell it.

    Example:
        >>> num(86_560), num(None)
        ('86,560', 'unknown')
    """
    return "unknown" if n is None else f"{n:,}"


def count(n: int, noun: str) -> str:
    """``1 layer``, ``2 layers``, ``1,234 calls``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def short(n: int) -> str:
    """A count in at most 6 characters.

    Example:
        >>> short(1234), short(86_560), short(20_861_480)
        ('1,234', '86.6k', '20.9M')
    """
    if abs(n) < 10_000:
        return f"{n:,}"
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)  # pragma: no cover


def shape(value: Shape | None) -> str:
    """``(None, 28, 28, 1)``; a one-dimensional shape keeps Python's comma; ``unknown``."""
    if value is None:
        return "unknown"
    dims = ", ".join("None" if d is None else str(d) for d in value)
    return f"({dims},)" if len(value) == 1 else f"({dims})"


def shapes(values: Sequence[Shape | None]) -> str:
    """The shapes of a call's tensors, comma-separated; ``-`` for none."""
    return ", ".join(shape(s) for s in values) if values else "-"


def _si(n: int, unit: str = "") -> str:
    """``n`` to three significant digits with a decimal prefix: 347 kB, 4.09 G."""
    value = float(n)
    for prefix in ("", "k", "M", "G", "T", "P"):
        if abs(value) < 999.5 or prefix == "P":
            break
        value /= 1000
    if not prefix:
        return f"{n} {unit}".rstrip()
    digits = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{digits}f} {prefix}{unit}"


def byte_size(n: int | None) -> str:
    """Bytes to three significant digits in decimal units; ``unknown`` when None.

    Example:
        >>> byte_size(448), byte_size(999_999), byte_size(83_500_000), byte_size(None)
        ('448 B', '1.00 MB', '83.5 MB', 'unknown')
    """
    return "unknown" if n is None else _si(n, "B")


def cost_line(report: Report) -> str:
    """``Cost: 1,234 MACs per forward pass; 347 kB unique, 694 kB per use`` (docs/cost.md).

    An unknown figure reads ``unknown`` (``6.98 kB unique, unknown per use``);
    ``bytes unknown`` when neither is known.

    Example:
        >>> cost_line(weighttie.analyze(model))  # doctest: +SKIP
        'Cost: 21,680 MACs per forward pass; 740 B unique, 1.41 kB per use'
    """
    c = report.cost
    if c.macs is None:
        macs = "MACs per forward pass unknown"
    else:
        macs = f"{c.macs:,} MACs per forward pass"
        if c.uncounted:
            macs = "at least " + macs
    if c.uncounted:
        macs += f" ({c.uncounted} layer{'s' if c.uncounted != 1 else ''} not counted)"
    b = c.bytes
    if b.unique is None and b.per_use is None:
        size = "bytes unknown"
    else:  # what is known is shown: a file that states no calls knows the unique bytes
        size = f"{byte_size(b.unique)} unique, {byte_size(b.per_use)} per use"
    return f"Cost: {macs}; {size}"


#: What the layer table's columns mean, said once under it.
_LEGEND = "#i: i-th call in its model's graph · Runs: per forward pass · Params read: by those runs"


def layer_legend(report: Report) -> str:
    """The line under the layer table; it explains ``Σ`` where a container row shows it."""
    containers = any(row.params.held == 0 and row.params.inside for row in report.layers)
    inside = " · Σ: held inside, counted on the rows below" if containers else ""
    return _LEGEND + inside


def params_cell(held: int, inside: int) -> str:
    """A row's parameters: those it holds, or ``Σ n`` for a container whose layers inside
    hold ``n`` (a nested model, an RNN holding its cell), never added to the total.

    Example:
        >>> params_cell(160, 160), params_cell(0, 86_720), params_cell(0, 0)
        ('160', 'Σ 86,720', '0')
    """
    if held == 0 and inside:
        return f"Σ {inside:,}"
    return f"{held:,}"


def shared_by(group: SharingGroup) -> str:
    """How a group shares: ``2 calls`` of one layer or model, or ``3 layers`` holding or
    reading one variable.

    Example:
        >>> shared_by(report.groups[0])  # doctest: +SKIP
        '2 calls'
    """
    noun = "call" if group.kind in (GroupKind.SHARED_LAYER, GroupKind.SHARED_MODEL) else "layer"
    if group.calls is None:
        return f"unknown {noun}s"
    return count(group.calls, noun)
