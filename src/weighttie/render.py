"""Renderers: Reports, check results and diffs → text. No Keras here.

Everything a human reads is rendered here, and every name from a file is escaped
on the way out: :func:`~weighttie.escape.printable` for text and JUnit XML,
:func:`~weighttie.escape.markdown` for Markdown. JSON stays exact (the encoder
escapes what a terminal would act on).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from weighttie.collector import collector_paused
from weighttie.escape import markdown as escape_markdown
from weighttie.escape import printable
from weighttie.report import CallNode, LayerInfo, Report
from weighttie.text import (
    cost_line,
    layer_legend,
    num,
    params_cell,
    shapes,
    shared_by,
    sharing_sentence,
)

if TYPE_CHECKING:
    from weighttie.spec import Diff, Result


def tabulate(rows: Sequence[Sequence[object]], **kwargs: object) -> str:
    """tabulate, imported on first use (it costs 0.1 s of start-up)."""
    from tabulate import tabulate as _tabulate

    return str(_tabulate(rows, **kwargs))


__all__ = [
    "CheckFormat",
    "DiffFormat",
    "Format",
    "Sort",
    "render",
    "render_check",
    "render_diff",
]


class Format(StrEnum):
    """Output formats of ``weighttie report``."""

    TABLE = "table"
    MARKDOWN = "markdown"
    JSON = "json"
    HTML = "html"  # a self-contained page with the picture (docs/picture.md)
    SVG = "svg"  # the picture alone


class Sort(StrEnum):
    """Row order of the human layer table."""

    MODEL = "model"  # as the model lists its layers, nested ones under their model
    NAME = "name"  # by path


class CheckFormat(StrEnum):
    """Output formats of ``weighttie check``: text, ``weighttie.check/1`` JSON, JUnit XML."""

    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"


class DiffFormat(StrEnum):
    """Output formats of ``weighttie diff``: text or ``weighttie.diff/1`` JSON."""

    TEXT = "text"
    JSON = "json"


@collector_paused()
def render(
    report: Report, fmt: Format | str = Format.TABLE, *, sort: Sort | str = Sort.MODEL
) -> str:
    """Render a report as text ending in a newline.

    Example:
        >>> print(render(weighttie.analyze(model), "markdown"))  # doctest: +SKIP
    """
    fmt = Format(fmt)
    if fmt is Format.JSON:
        return report.to_json()
    if fmt is Format.HTML:
        from weighttie.picture import to_html

        return to_html(report)
    if fmt is Format.SVG:
        from weighttie.picture import to_svg

        return to_svg(report)
    return _Human(report, markdown=fmt is Format.MARKDOWN, sort=Sort(sort)).text()


class _Human:
    """Table and Markdown share one layout; only the table format, headings and escaping differ."""

    def __init__(self, report: Report, *, markdown: bool, sort: Sort = Sort.MODEL) -> None:
        self.report = report
        self.markdown = markdown
        self.sort = sort
        self.tablefmt = "github" if markdown else "simple"
        self.newline = "<br>" if markdown else "\n"
        self.esc: Callable[[str], str] = escape_markdown if markdown else printable

    def rows(self) -> list[LayerInfo]:
        """The layer rows in the order asked for (the Report keeps them by path)."""
        if self.sort is Sort.NAME:
            return list(self.report.layers)
        return sorted(self.report.layers, key=lambda row: (row.order, row.path))

    def heading(self, text: str) -> str:
        return f"## {text}" if self.markdown else text

    def names(self, names: Iterable[str], sep: str) -> str:
        return sep.join(self.esc(name) for name in names)

    def text(self) -> str:
        r = self.report
        title = f"Model {self.esc(repr(r.model.name))} ({self.esc(r.model.class_name)})"
        if r.model.file:
            title += f" from {self.esc(r.model.file)}"
        parts = [f"# {title}" if self.markdown else title, self.layer_table()]
        if r.groups:
            parts += [self.heading("Sharing groups"), self.group_table()]
        sentence = sharing_sentence(r)
        if sentence is not None:
            parts.append(sentence)
        if r.ties:
            parts += [self.heading("Declared ties"), self.tie_table()]
        if r.findings:
            parts += [self.heading("Findings"), self.finding_lines()]
        parts.append(self.summary())
        if r.model.notes:
            parts.append(self.note_lines())
        return "\n\n".join(parts) + "\n"

    def note_lines(self) -> str:
        """What the source cannot tell, one line each."""
        bullet = "- " if self.markdown else ""
        return "\n".join(f"{bullet}Note: {self.esc(note)}" for note in self.report.model.notes)

    def group_labels(self) -> dict[str, list[str]]:
        labels: dict[str, list[str]] = {}
        for n, group in enumerate(self.report.groups, start=1):
            for layer in group.layers:
                labels.setdefault(layer, []).append(f"G{n} {group.kind.value}")
        return labels

    def calls(self, nodes: tuple[CallNode, ...] | None) -> str:
        if nodes is None:
            return "unknown"
        return self.newline.join(f"#{n.index} {shapes(n.output_shapes)}" for n in nodes)

    def layer_table(self) -> str:
        labels = self.group_labels()
        rows = [
            [
                self.row_path(row),
                self.esc(row.class_name),
                self.calls(row.nodes),
                params_cell(row.params.held, row.params.inside),
                num(row.uses),
                num(row.params.per_use),
                "" if row.nodes is None else num(row.macs),  # no calls: counted in its caller
                self.newline.join(labels.get(row.path, [])),
            ]
            for row in self.rows()
        ]
        headers = [
            "Layer",
            "Class",
            "Output shape per call",
            "Params",
            "Runs",
            "Params read",
            "MACs",
            "Sharing",
        ]
        table = tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True)
        return f"{table}\n{self.esc(layer_legend(self.report))}"

    def row_path(self, row: LayerInfo) -> str:
        return self.esc(row.path) if row.path else self.esc(f"({row.name})")

    def group_table(self) -> str:
        rows = [
            [
                f"G{n}",
                g.kind.value,
                self.names(g.layers, self.newline),
                num(g.params),
                shared_by(g),
                num(g.duplicated),
            ]
            for n, g in enumerate(self.report.groups, start=1)
        ]
        headers = ["Group", "Kind", "Layers", "Params", "Shared by", "Duplicated"]
        return str(tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True))

    def tie_table(self) -> str:
        rows = [
            [
                self.esc(t.target),
                self.esc(t.source),
                self.names(t.variables, ", "),
                "bound" if t.bound else "BROKEN",
            ]
            for t in self.report.ties
        ]
        headers = ["Target", "Source", "Variables", "State"]
        return str(tabulate(rows, headers=headers, tablefmt=self.tablefmt, disable_numparse=True))

    def finding_lines(self) -> str:
        bullet = "- " if self.markdown else "  "
        return "\n".join(
            f"{bullet}{self.esc(f.kind)}: {self.esc(f.message)} ({num(f.params)} params)"
            for f in self.report.findings
        )

    def summary(self) -> str:
        p = self.report.params
        line = (
            f"Params: {num(p.unique)} unique, {num(p.per_use)} per use, "
            f"{num(p.duplicated)} duplicated "
            f"(trainable {num(p.trainable_unique)}, non-trainable {num(p.non_trainable_unique)})"
        )
        groups = len(self.report.groups)
        line += f"; {groups} sharing group{'s' if groups != 1 else ''}"
        if self.report.model.source:
            line += f"; source: {self.esc(self.report.model.source)}"
        cost = self.cost()
        if self.markdown:
            return f"**{line}**\n\n**{cost}**"
        return f"{line}\n{cost}"

    def cost(self) -> str:
        return self.esc(cost_line(self.report))


# -- check results ----------------------------------------------------------------------


def render_check(
    report: Report,
    results: Sequence[Result],
    spec_label: str,
    fmt: CheckFormat | str = CheckFormat.TEXT,
) -> str:
    """Render the results of checking ``report`` against a spec, ending in a newline.

    ``text``: one ``FAIL <expectation>: <what was found>`` line per violation and a
    closing ``N passed, M failed ('<model>' against <spec_label>)``. ``json``: the
    ``weighttie.check/1`` document. ``junit``: JUnit XML, one test case per
    expectation. ``spec_label`` (shown in text only) names the spec, e.g. its path.

    Example:
        >>> results = check(report, load_spec("weighttie.toml"))  # doctest: +SKIP
        >>> print(render_check(report, results, "weighttie.toml"), end="")  # doctest: +SKIP
        9 passed, 0 failed ('siamese_tower' against weighttie.toml)
    """
    fmt = CheckFormat(fmt)
    if fmt is CheckFormat.JSON:
        return _check_json(report, results)
    if fmt is CheckFormat.JUNIT:
        return _junit(report, results)
    return _check_text(report, results, spec_label)


def _check_text(report: Report, results: Sequence[Result], spec_label: str) -> str:
    failed = [r for r in results if r.failure]
    lines = [f"FAIL {printable(r.name)}: {printable(r.failure or '')}" for r in failed]
    lines.append(
        f"{len(results) - len(failed)} passed, {len(failed)} failed"
        f" ({report.model.name!r} against {printable(spec_label)})"
    )
    return "\n".join(lines) + "\n"


def _check_json(report: Report, results: Sequence[Result]) -> str:
    doc = {
        "schema": "weighttie.check/1",
        "model": report.model.name,
        "file": report.model.file,
        "passed": not any(r.failure for r in results),
        "results": [{"name": r.name, "passed": r.passed, "failure": r.failure} for r in results],
    }
    return json.dumps(doc, indent=2) + "\n"  # ASCII: every control character escaped


def _junit(report: Report, results: Sequence[Result]) -> str:
    """JUnit XML. XML 1.0 cannot carry most control characters even as character
    references, so every name and message is made printable first."""
    import xml.etree.ElementTree as ET

    model = printable(report.model.name)
    failures = [r for r in results if r.failure]
    suite = ET.Element(
        "testsuite",
        name=f"weighttie {model}",
        tests=str(len(results)),
        failures=str(len(failures)),
        errors="0",
        skipped="0",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname=f"weighttie.{model}", name=printable(r.name)
        )
        if r.failure:
            failure = printable(r.failure)
            ET.SubElement(
                case, "failure", message=failure, type="weighttie.violation"
            ).text = failure
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


# -- diffs -------------------------------------------------------------------------------


def render_diff(diff: Diff, fmt: DiffFormat | str = DiffFormat.TEXT) -> str:
    """Render how two reports differ, ending in a newline.

    ``text``: one line per change: groups removed (``-``), added (``+``) or changed
    (``~``), ties, layers, findings, then parameter counts and cost; then, where a
    report cannot tell how often its layers run, what was not compared and why
    (``?``). ``json``: the ``weighttie.diff/1`` document.

    Example:
        >>> print(render_diff(diff(a, b)), end="")  # doctest: +SKIP
        - shared-model group [tower] (168 params, 2 calls)
        ~ params.unique: 185 -> 353 (+168)
    """
    fmt = DiffFormat(fmt)
    if fmt is DiffFormat.JSON:
        return json.dumps(diff.to_dict(), indent=2) + "\n"  # ASCII: controls escaped
    if diff.same:
        return "No differences in layers, sharing groups, ties, findings, counts or cost.\n"
    lines = [] if diff.differs else ["No differences in what both reports know."]
    for g in diff.removed:
        lines.append(
            f"- {g.kind.value} group {_paths(g.layers)} ({g.params:,} params, {num(g.calls)} calls)"
        )
    for g in diff.added:
        lines.append(
            f"+ {g.kind.value} group {_paths(g.layers)} ({g.params:,} params, {num(g.calls)} calls)"
        )
    for a, b in diff.changed:
        lines.append(
            f"~ {a.kind.value} group {_paths(a.layers)}: params {a.params:,} -> {b.params:,}, "
            f"calls {num(a.calls)} -> {num(b.calls)}"
        )
    for change, tie in diff.ties:
        lines.append(f"{change} tie {printable(tie)}")
    for change, path, class_name in diff.layers:
        lines.append(f"{change} layer {printable(path)} ({printable(class_name)})")
    for change, f in diff.findings:
        lines.append(f"{change} {f.kind.value} finding {_paths(f.layers)} ({f.params:,} params)")
    for count, before, after in diff.params:
        lines.append(f"~ params.{count}: {before:,} -> {after:,} ({after - before:+,})")
    for figure, before, after in diff.cost:
        lines.append(f"~ {figure}: {before:,} -> {after:,} ({after - before:+,})")
    if diff.not_compared:
        lines.append(f"? not compared: {', '.join(diff.not_compared)}")
        for side, why in zip("AB", diff.calls_unknown, strict=True):
            if why is not None:
                lines.append(f"? {side} cannot tell how often its layers run: {printable(why)}")
    return "\n".join(lines) + "\n"


def _paths(paths: Iterable[str]) -> str:
    return "[" + ", ".join(printable(p) for p in paths) + "]"
