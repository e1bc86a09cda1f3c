"""Renderers: a Report → text (table, Markdown, JSON). No Keras here."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from weighttie.report import CallNode, LayerInfo, Report, Shape


def tabulate(rows: Sequence[Sequence[object]], **kwargs: object) -> str:
    """tabulate, imported on first use (it costs 0.1 s of start-up)."""
    from tabulate import tabulate as _tabulate

    return str(_tabulate(rows, **kwargs))


__all__ = ["Format", "render"]


class Format(StrEnum):
    """Output formats of ``weighttie report``."""

    TABLE = "table"
    MARKDOWN = "markdown"
    JSON = "json"


def render(report: Report, fmt: Format | str = Format.TABLE) -> str:
    """Render a report as text ending in a newline.

    Example:
        >>> print(render(weighttie.analyze(model), "markdown"))  # doctest: +SKIP
    """
    fmt = Format(fmt)
    if fmt is Format.JSON:
        return report.to_json()
    return _Human(report, markdown=fmt is Format.MARKDOWN).text()


def _shape(shape: Shape) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({dims},)" if len(shape) == 1 else f"({dims})"


def _shapes(shapes: Sequence[Shape | None]) -> str:
    if not shapes:
        return "-"
    return ", ".join("unknown" if s is None else _shape(s) for s in shapes)


def _num(n: int) -> str:
    return f"{n:,}"


class _Human:
    """Table and Markdown share one layout; only the table format and headings differ."""

    def __init__(self, report: Report, *, markdown: bool) -> None:
        self.report = report
        self.markdown = markdown
        self.tablefmt = "github" if markdown else "simple"
        self.newline = "<br>" if markdown else "\n"

    def heading(self, text: str) -> str:
        return f"## {text}" if self.markdown else text

    def text(self) -> str:
        r = self.report
        title = f"Model {r.model.name!r} ({r.model.class_name})"
        if r.model.file:
            title += f" from {r.model.file}"
        parts = [f"# {title}" if self.markdown else title, self.layer_table()]
        if r.groups:
            parts += [self.heading("Sharing groups"), self.group_table()]
        else:
            parts.append("No weights are shared.")
        if r.ties:
            parts += [self.heading("Declared ties"), self.tie_table()]
        if r.findings:
            parts += [self.heading("Findings"), self.finding_lines()]
        parts.append(self.summary())
        return "\n\n".join(parts) + "\n"

    def group_labels(self) -> dict[str, list[str]]:
        labels: dict[str, list[str]] = {}
        for n, group in enumerate(self.report.groups, start=1):
            for layer in group.layers:
                labels.setdefault(layer, []).append(f"G{n} {group.kind.value}")
        return labels

    def calls(self, nodes: tuple[CallNode, ...] | None) -> str:
        if nodes is None:
            return "unknown"
        return self.newline.join(f"#{n.index} {_shapes(n.output_shapes)}" for n in nodes)

    def layer_table(self) -> str:
        labels = self.group_labels()
        rows = [
            [
                self.row_path(row),
                row.class_name,
                self.calls(row.nodes),
                _num(row.params.held),
                row.uses,
                _num(row.params.per_use),
                self.newline.join(labels.get(row.path, [])),
            ]
            for row in self.report.layers
        ]
        headers = ["Layer", "Class", "Calls: output shape", "Params", "Uses", "Per use", "Sharing"]
        return str(tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True))

    def row_path(self, row: LayerInfo) -> str:
        return row.path or f"({row.name})"

    def group_table(self) -> str:
        rows = [
            [
                f"G{n}",
                g.kind.value,
                self.newline.join(g.layers),
                _num(g.params),
                g.calls,
                _num(g.duplicated),
            ]
            for n, g in enumerate(self.report.groups, start=1)
        ]
        headers = ["Group", "Kind", "Layers", "Params", "Calls", "Duplicated"]
        return str(tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True))

    def tie_table(self) -> str:
        rows = [
            [t.target, t.source, ", ".join(t.variables), "bound" if t.bound else "BROKEN"]
            for t in self.report.ties
        ]
        headers = ["Target", "Source", "Variables", "State"]
        return str(tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True))

    def finding_lines(self) -> str:
        bullet = "- " if self.markdown else "  "
        return "\n".join(
            f"{bullet}{f.kind}: {f.message} ({_num(f.params)} params)" for f in self.report.findings
        )

    def summary(self) -> str:
        p = self.report.params
        line = (
            f"Params: {_num(p.unique)} unique, {_num(p.per_use)} per use, "
            f"{_num(p.duplicated)} duplicated "
            f"(trainable {_num(p.trainable_unique)}, non-trainable {_num(p.non_trainable_unique)})"
        )
        groups = len(self.report.groups)
        line += f"; {groups} sharing group{'s' if groups != 1 else ''}"
        if self.report.model.source:
            line += f"; source: {self.report.model.source}"
        return f"**{line}**" if self.markdown else line
