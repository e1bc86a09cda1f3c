"""See the sharing: a Report drawn as a standalone SVG or a self-contained HTML page.

Reads only the Report, never Keras. One box per call (``name #i``); nested
models, and other layers that hold layers, as frames with their calls in a
header row, an edge from each call into the frame's inputs and their layers
inside, drawn once however often they are called (the boxes inside a shared one
outlined in its group's colour); a frame's whole title with Σ the parameters
inside; runs of identical blocks folded into one ×N stack that opens on click;
each sharing group in its own colour with a legend; dashed tie edges between
tied layers; findings as red badges and a list; per call the parameters held,
uses, bytes and output shapes; tooltips with every input's shape; the layers
table in model order. docs/picture.md shows and explains it.

- :func:`to_svg`: the drawing with a header (title, legend, findings); static,
  no script; the same report always gives the same bytes.
- :func:`to_html`: one file that opens from disk and fetches nothing (its
  Content-Security-Policy forbids it): the same drawing, the legend, findings and
  the report's tables (sortable); a small inline script opens and closes frames
  and folds (redrawing tie edges), zooms, highlights a group and finds a layer.

Placement: :mod:`weighttie.picture.layout`; SVG: :mod:`weighttie.picture.drawing`; page:
:mod:`weighttie.picture.page`.

Example:
    >>> from weighttie.picture import to_html, to_svg
    >>> report = weighttie.analyze(model)                              # doctest: +SKIP
    >>> Path("model.html").write_text(to_html(report), encoding="utf-8")  # doctest: +SKIP
    >>> Path("model.svg").write_text(to_svg(report), encoding="utf-8")    # doctest: +SKIP
"""

from __future__ import annotations

from weighttie.picture.drawing import Labels, Svg
from weighttie.picture.layout import Geometry, Scene, geometry, layout
from weighttie.picture.page import page
from weighttie.report import Report

__all__ = ["AUTO_OPEN_CALLS", "to_html", "to_svg"]

#: With ``expanded=None``, frames start open when the report has at most this many calls.
AUTO_OPEN_CALLS = 100


def _geometry(scene: Scene, expanded: bool | None) -> Geometry:
    is_open = scene.calls <= AUTO_OPEN_CALLS if expanded is None else expanded
    return geometry(scene, lambda frame: expanded is True if frame.fold else is_open)


def _scene(report: Report) -> tuple[Labels, Scene]:
    """The labels and the layout (frames wide enough for their whole titles)."""
    facts = Labels(report)
    scene = layout(report, min_width=facts.frame_width)
    facts.scene = scene
    return facts, scene


def to_svg(report: Report, *, expanded: bool | None = None) -> str:
    """The picture of ``report`` as a standalone SVG document (static, no script).

    Frames are open when ``expanded`` is True, closed when False, and with None
    (the default) open when the report has at most :data:`AUTO_OPEN_CALLS` calls.
    The same report always gives the same text.

    Example:
        >>> svg = to_svg(weighttie.analyze(model))               # doctest: +SKIP
        >>> Path("model.svg").write_text(svg, encoding="utf-8")  # doctest: +SKIP
    """
    facts, scene = _scene(report)
    svg = Svg(facts, scene, _geometry(scene, expanded)).draw(header=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n"


def to_html(report: Report, *, expanded: bool | None = None, fragment: bool = False) -> str:
    """The picture of ``report`` as one self-contained HTML page (no network, no other file).

    The page holds the drawing (frames open or closed as in :func:`to_svg`), a
    legend, the findings and the report's tables. ``fragment=True`` gives a
    ``<div>`` to embed (a notebook's ``_repr_html_``) instead of a document.

    Example:
        >>> page = to_html(weighttie.analyze(model))               # doctest: +SKIP
        >>> Path("model.html").write_text(page, encoding="utf-8")  # doctest: +SKIP
    """
    facts, scene = _scene(report)
    svg = Svg(facts, scene, _geometry(scene, expanded)).draw(header=False)
    return page(report, facts, svg, scene.calls, fragment=fragment)
