"""The drawing of a laid-out Report as SVG: boxes, frames, chips, edges, colours, badges.

Reads only the Report and its :mod:`weighttie.picture.layout` scene (never Keras). Every
name from the report is untrusted: :func:`esc` makes it printable
(:func:`weighttie.escape.printable`, which also removes every character XML 1.0
cannot carry) and then escapes it for HTML and XML. :mod:`weighttie.picture`
is the API; :mod:`weighttie.picture.page` puts the drawing in a page.

What a call box shows: ``name #index``, the class, parameters held, uses and
bytes held (when the dtypes say), and the output shapes of that call; its
tooltip adds each input with its shape, the per-use count, the groups and the
findings. Each sharing group has one colour (a bar on the left of each box of
its layers, the box tinted by the first; the boxes inside a shared layer or
model outlined in it; a dashed tie edge between tied layers); a finding is a
red badge. A fold is drawn as a stack of boxes marked ``×N``.

Example:
    >>> scene = layout(report)                                # doctest: +SKIP
    >>> g = geometry(scene, lambda frame: True)               # doctest: +SKIP
    >>> svg = Svg(Labels(report, scene), scene, g).draw(header=True)  # doctest: +SKIP
"""

from __future__ import annotations

import colorsys
import html
import math

from weighttie.escape import printable
from weighttie.picture.layout import (
    BODY_GAP,
    CALL_TOP,
    GAP,
    HEADER_H,
    NODE_H,
    NODE_W,
    PAD,
    Container,
    Edge,
    Geometry,
    Item,
    ItemKind,
    Scene,
    edge_path,
)
from weighttie.report import CallNode, GroupKind, LayerInfo, Report
from weighttie.text import byte_size, count, num, shape, shapes, short

__all__ = [
    "COMPACT_CALLS",
    "SVG_CSS",
    "TIE_BULGE",
    "TIE_KEY",
    "Labels",
    "Svg",
    "clip",
    "esc",
    "held_bytes",
]

MARGIN = 16
#: Reports with more calls get compact boxes (name and shapes; the rest in the tooltip):
#: a browser lays out every text line, and 80,000 of them take it seconds.
COMPACT_CALLS = 2000
_CHAR_W = 6.1  # width of a 10 px monospace character
_NAME_CHAR_W = 6.7  # width of an 11 px bold monospace character
_TEXT_LEFT = 10
_LINE_H = 18  # header lines of the standalone SVG
_LEGEND_W = 420
_MAX_TITLE_INPUTS = 20
TIE_BULGE = 36  #: how far right of its boxes a tie edge bends
TIE_ROOM = TIE_BULGE + 12  #: extra width of a picture with tie edges
#: The legend's words for a tie edge.
TIE_KEY = "tie edge (dashed, in the group's colour): tied layers hold the same variables"
_MAX_CAPTION_NAME = 60  # a frame title's name (and class) is cut past this, never its counts
_TITLE_GLYPH_W = 16  # the ▸ / ▾ before a frame's title, and a space

_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#ff9da7",
    "#5b8e7d",
    "#8c6bb1",
)


# -- text ----------------------------------------------------------------------------


def esc(text: str) -> str:
    """``text`` made printable, then escaped for HTML and XML text and attributes.

    Example:
        >>> esc('<script>"x"\\x00')
        '&lt;script&gt;&quot;x&quot;\\\\x00'
    """
    return html.escape(printable(text), quote=True)


def clip(text: str, chars: int) -> str:
    """escaped  ``text`` cut to ``chars`` printable characters (an ellipsis marks a cut)."""
    shown = printable(text)
    if len(shown) > chars:
        shown = shown[: max(chars - 1, 0)] + "…"
    return html.escape(shown, quote=True)


def title_width(caption: str) -> int:
    """The width a frame needs for ``caption`` (printable text) after its ▸ glyph."""
    return 2 * PAD + _TITLE_GLYPH_W + math.ceil(len(caption) * _NAME_CHAR_W)


def _span(first: str, last: str, chars: int) -> str:
    """``first … last``; when too long, ``last`` loses what it shares with ``first``
    (``transformer_layer_0 … 11``)."""
    text = f"{first} … {last}"
    if len(printable(text)) <= chars:
        return text
    shared = next((k for k, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), 0)
    return f"{first} … {last[shared:] or last}"


def _link(sets: list[set[str]], a: str, b: str) -> bool:
    """Put ``a`` and ``b`` in one of ``sets``; False when they already were."""
    sa = next((s for s in sets if a in s), None)
    sb = next((s for s in sets if b in s), None)
    if sa is not None and sa is sb:
        return False
    merged = (sa or {a}) | (sb or {b})
    sets[:] = [s for s in sets if s is not sa and s is not sb] + [merged]
    return True


def tie_path(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> str:
    """A tie edge from the right side of box ``a`` to box ``b`` (x, y, width, height),
    bulging right; "" when one is missing or both are the same box (a closed frame).
    The page's script draws the same."""
    if a is None or b is None or a == b:
        return ""
    ax, ay = a[0] + a[2], a[1] + a[3] // 2
    bx, by = b[0] + b[2], b[1] + b[3] // 2
    bulge = max(ax, bx) + TIE_BULGE
    return f"M{ax},{ay}C{bulge},{ay} {bulge},{by} {bx},{by}"


def held_bytes(n: int | None) -> str:
    """Bytes as :func:`weighttie.text.byte_size` writes them; ``bytes unknown`` when None."""
    return "bytes unknown" if n is None else byte_size(n)


# -- colours ------------------------------------------------------------------------


def _colour(n: int) -> str:
    """The colour of group ``n`` (0-based): a fixed palette, then golden-angle hues."""
    if n < len(_PALETTE):
        return _PALETTE[n]
    hue = (n * 0.618033988749895) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.55)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _tint(colour: str, keep: float = 0.16) -> str:
    """``colour`` mixed with white (``keep`` of the colour)."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * keep):02x}" for c in rgb)


# -- what the picture says about each layer ------------------------------------------


class Labels:
    """Labels, colours, counts and bytes per layer path, computed once from the report."""

    def __init__(self, report: Report, scene: Scene | None = None) -> None:
        self.report = report
        self.scene = scene
        self.children: dict[str, list[str]] = {}
        for row in sorted(report.layers, key=lambda r: r.path):
            if row.parent is not None and row.path:
                self.children.setdefault(row.parent, []).append(row.path)
        self.groups: dict[str, list[tuple[str, str]]] = {}  # path -> [(label, colour)]
        self.colours = [_colour(n) for n in range(len(report.groups))]
        for n, group in enumerate(report.groups):
            for path in dict.fromkeys(group.layers):
                self.groups.setdefault(path, []).append((f"G{n + 1}", self.colours[n]))
        self.within = self.enclosing()
        self.findings: dict[str, list[str]] = {}
        for n, finding in enumerate(report.findings):
            for path in dict.fromkeys(finding.layers):
                self.findings.setdefault(path, []).append(f"F{n + 1}")
        self.variables = {v.path: v for v in report.variables}
        self.rows = {row.path: row for row in report.layers}

    def inside(self, *rows: LayerInfo) -> tuple[int, int | None, int]:
        """Parameters and bytes of the distinct variables held in frames, and their layer count."""
        seen: dict[str, None] = {}
        stack, layers = [row.path for row in rows], 0
        while stack:
            path = stack.pop()
            sub = self.rows.get(path)
            if sub is not None:
                seen.update(dict.fromkeys(sub.variables))
            children = self.children.get(path, [])
            layers += len(children)
            stack.extend(children)
        held = [self.variables.get(p) for p in seen]
        size = sum(v.size for v in held if v is not None)
        nbytes = [None if v is None else v.bytes for v in held]  # the Report's bytes
        known = None if None in nbytes else sum(b for b in nbytes if b is not None)
        return size, known, layers

    def enclosing(self) -> dict[str, list[tuple[str, str]]]:
        """Per layer path, the groups of the shared layers or models it is inside.

        A shared tower's inner layers run once per call of the tower: their boxes
        are outlined in its group's colour (their own groups are drawn as usual).
        """
        shared = (GroupKind.SHARED_MODEL, GroupKind.SHARED_LAYER)
        within: dict[str, list[tuple[str, str]]] = {}
        for n, group in enumerate(self.report.groups):
            if group.kind not in shared:
                continue
            entry = (f"G{n + 1}", self.colours[n])
            stack = [c for path in dict.fromkeys(group.layers) for c in self.children.get(path, [])]
            seen: set[str] = set()
            while stack:
                path = stack.pop()
                if path in seen:
                    continue
                seen.add(path)
                within.setdefault(path, []).append(entry)
                stack.extend(self.children.get(path, []))
        return within

    def tie_pairs(self) -> list[tuple[str, str, str, str]]:
        """Tie edges to draw: (layer, layer, group label or "", colour).

        Each declared tie (``Report.ties``) is drawn, in its tied group's colour (grey
        outside any group, red when broken); then each layer of a tied group that is
        still not linked to the group's first layer is linked to it.
        """
        tied = {
            path: n
            for n, group in enumerate(self.report.groups)
            if group.kind is GroupKind.TIED
            for path in group.layers
        }
        pairs: list[tuple[str, str, str, str]] = []
        linked: dict[int, list[set[str]]] = {}  # group -> linked sets of its layers
        for tie in self.report.ties:
            n = tied.get(tie.source, -1)
            if n >= 0 and tied.get(tie.target) == n:
                pairs.append((tie.source, tie.target, f"G{n + 1}", self.colours[n]))
                _link(linked.setdefault(n, []), tie.source, tie.target)
            else:
                pairs.append((tie.source, tie.target, "", "#6b7280" if tie.bound else "#c62828"))
        for n, group in enumerate(self.report.groups):
            if group.kind is GroupKind.TIED:
                first, *others = dict.fromkeys(group.layers)
                for other in others:
                    if _link(linked.setdefault(n, []), first, other):
                        pairs.append((first, other, f"G{n + 1}", self.colours[n]))
        pairs = list({frozenset(p[:2]): p for p in reversed(pairs)}.values())[::-1]
        return [p for p in pairs if p[0] in self.rows and p[1] in self.rows and p[0] != p[1]]

    def within_attr(self, path: str) -> str:
        labels = self.within.get(path)
        return f' data-gi="{" ".join(label for label, _ in labels)}"' if labels else ""

    def caption(self, row: LayerInfo) -> str:
        """A frame's title, in full: name, class, layers inside, Σ parameters (bytes), calls.

        Only a name longer than :data:`_MAX_CAPTION_NAME` characters is cut; the
        counts never are (the frame is made wide enough, :meth:`frame_width`).
        """
        params, size, layers = self.inside(row)
        name = printable(row.name)
        if len(name) > _MAX_CAPTION_NAME:
            name = name[: _MAX_CAPTION_NAME - 1] + "…"
        return (
            f"{name} · {printable(row.class_name)[:_MAX_CAPTION_NAME]} · "
            f"{count(layers, 'layer')} · Σ {short(params)} params ({held_bytes(size)}) · "
            f"{count(len(row.nodes or ()), 'call')}"
        )

    def fold_caption(self, rows: list[LayerInfo]) -> str:
        """A fold's title: ×N, the class, the first and last block, Σ parameters (bytes)."""
        params, size, layers = self.inside(*rows)
        first, last = (printable(r.name)[:_MAX_CAPTION_NAME] for r in (rows[0], rows[-1]))
        return (
            f"×{len(rows)} {printable(rows[0].class_name)[:_MAX_CAPTION_NAME]} · {first} … "
            f"{last} · {count(layers, 'layer')} · Σ {short(params)} params ({held_bytes(size)})"
        )

    def frame_width(self, rows: list[LayerInfo]) -> int:
        """The least width of the frame of ``rows`` (one, or a fold's): its whole title fits."""
        caption = self.caption(rows[0]) if len(rows) == 1 else self.fold_caption(rows)
        return title_width(caption)

    def group_attr(self, path: str) -> str:
        labels = self.groups.get(path)
        return f' data-g="{" ".join(label for label, _ in labels)}"' if labels else ""


# -- SVG ----------------------------------------------------------------------------------

SVG_CSS = """\
.wt-graph text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",\
monospace;font-size:10px;fill:#222}
.wt-graph .t1{font-size:11px;font-weight:bold}
.wt-graph .head{font-family:system-ui,sans-serif;font-size:12px}
.wt-graph .h1{font-size:15px;font-weight:bold}
.wt-graph .e{fill:none;stroke:#6b7280;stroke-width:1.3;marker-end:url(#wt-arrow)}
.wt-graph .e.back{stroke-dasharray:5 3;marker-end:none;marker-start:url(#wt-arrow)}
.wt-graph .e.loop{stroke-dasharray:5 3}
.wt-graph .e:hover{stroke:#111;stroke-width:3}
.wt-graph .chip .box{stroke-dasharray:4 3}
.wt-graph .badge circle{fill:#c62828}
.wt-graph .badge text{fill:#fff;font-weight:bold;text-anchor:middle}
.wt-graph .ftitle{font-size:11px}
.wt-graph .e.feed{stroke-dasharray:2 2}
.wt-graph .tie{fill:none;stroke-width:2;stroke-dasharray:7 4}
.wt-graph .tie:hover{stroke-width:4}
.wt-graph .frame[data-open="0"]>.feeds{display:none}
"""

_ARROW = (
    '<defs><marker id="wt-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
    'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#6b7280"/>'
    "</marker></defs>"
)


class Svg:
    """Writes the drawing of one scene for one choice of open frames."""

    def __init__(self, facts: Labels, scene: Scene, g: Geometry) -> None:
        self.facts = facts
        self.scene = scene
        self.g = g
        self.out: list[str] = []
        self.compact = scene.calls > COMPACT_CALLS
        self.origin = (0, 0)  # where the graph being drawn sits, in the SVG's coordinates
        self.hidden: tuple[int, int, int, int] | None = None  # the closed frame around it
        self.anchors: dict[str, tuple[int, int, int, int]] = {}  # path -> its first box
        self.tie_pairs = facts.tie_pairs()

    def draw(self, *, header: bool) -> str:
        """The whole ``<svg>`` element; ``header`` adds title, legend and findings."""
        root = self.scene.root
        head = self.header_lines() if header else []
        top = MARGIN + (len(head) * _LINE_H + 8 if head else 0)
        width = max(root.width + 2 * MARGIN, 2 * MARGIN + NODE_W)
        width += TIE_ROOM if self.tie_pairs else 0
        if head:
            width = max(width, min(_LEGEND_W * 2, max(w for _, w in head)) + 2 * MARGIN)
        height = top + self.g.content_height[id(root)] + MARGIN
        self.out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="wt-graph" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" data-top="{top}" '
            f'data-margin="{MARGIN}">',
            f"<style>{SVG_CSS}</style>",
            _ARROW,
            '<rect class="bg" width="100%" height="100%" fill="#ffffff"/>',
        ]
        for k, (line, _) in enumerate(head):
            self.out.append(f'<g transform="translate(0,{MARGIN + 12 + k * _LINE_H})">{line}</g>')
        self.content(root, MARGIN, top, root_graph=True)
        self.ties()
        self.out.append("</svg>")
        return "".join(self.out)

    # -- header (standalone SVG only) --

    def header_lines(self) -> list[tuple[str, int]]:
        """Text lines (on a baseline at y=0) and their estimated widths."""
        r = self.facts.report
        title = f"Model {r.model.name!r} ({r.model.class_name})"
        p = r.params
        summary = (
            f"Params: {num(p.unique)} unique, {num(p.per_use)} per use, "
            f"{num(p.duplicated)} duplicated · {self.scene.calls} calls · "
            f"{len(r.groups)} sharing group{'s' if len(r.groups) != 1 else ''}"
        )
        lines = [
            (f'<text class="head h1" x="{MARGIN}" y="0">{esc(title)}</text>', len(title) * 9),
            (f'<text class="head" x="{MARGIN}" y="0">{esc(summary)}</text>', len(summary) * 7),
        ]
        for n, group in enumerate(r.groups):
            colour = self.facts.colours[n]
            text = (
                f"G{n + 1} {group.kind.value}: {', '.join(group.layers)} · "
                f"{num(group.params)} params · {num(group.calls)} calls · "
                f"{num(group.duplicated)} duplicated"
            )
            lines.append(
                (
                    f'<g class="legend" data-g="G{n + 1}"><rect x="{MARGIN}" y="0" '
                    f'transform="translate(0,-10)" width="12" height="12" fill="{colour}"/>'
                    f'<text class="head" x="{MARGIN + 18}" y="0">{clip(text, 110)}'
                    f"<title>{esc(text)}</title></text></g>",
                    min(len(text), 110) * 7 + 18,
                )
            )
        if self.tie_pairs:
            lines.append((self.tie_key(), len(TIE_KEY) * 7 + 40))
        for n, finding in enumerate(r.findings):
            text = f"F{n + 1} {finding.kind}: {finding.message}"
            lines.append(
                (
                    f'<g class="finding" data-f="F{n + 1}"><circle cx="{MARGIN + 6}" cy="0" '
                    f'transform="translate(0,-4)" r="6" fill="#c62828"/>'
                    f'<text class="head" x="{MARGIN + 18}" y="0">{clip(text, 110)}'
                    f"<title>{esc(text)}</title></text></g>",
                    min(len(text), 110) * 7 + 18,
                )
            )
        return lines

    def tie_key(self) -> str:
        """The legend's line for tie edges: a dashed stroke in each tied group's colour."""
        colours = list(dict.fromkeys(colour for _, _, _, colour in self.tie_pairs))
        dashes = "".join(
            f'<path class="tie" d="M{MARGIN + k * 4},{-4 + k * 3}h28" stroke="{colour}"/>'
            for k, colour in enumerate(colours[:3])
        )
        return (
            f'<g class="legend-tie">{dashes}<text class="head" x="{MARGIN + 40}" y="0">'
            f"{esc(TIE_KEY)}</text></g>"
        )

    # -- graphs --

    def content(self, container: Container, x: int, y: int, *, root_graph: bool = False) -> None:
        g = self.g
        cls = "content root" if root_graph else "content"
        self.out.append(
            f'<g class="{cls}" data-h="{g.content_height[id(container)]}" '
            f'transform="translate({x},{y})"><g class="edges">'
        )
        for edge in container.edges:
            self.edge(edge, container)
        self.out.append("</g>")
        outer = self.origin
        self.origin = (outer[0] + x, outer[1] + y)
        for item in container.items:
            top = g.top(item, container)
            box = (self.origin[0] + item.x, self.origin[1] + top, item.width, NODE_H)
            if item.kind is ItemKind.FRAME:
                box = (*box[:3], HEADER_H)
            if not item.fold:
                self.anchors.setdefault(item.row.path, self.hidden or box)
            if item.kind is ItemKind.FRAME:
                self.frame(item, top)
            elif item.kind is ItemKind.CALL:
                assert item.call is not None
                self.call(item.row, item.call, item.x, top, band=item.band)
            else:
                self.chip(item, top)
        self.origin = outer
        self.out.append("</g>")

    def edge(self, edge: Edge, container: Container) -> None:
        classes = "e back" if edge.back else "e loop" if edge.loop else "e"
        if edge.loop:
            route = f"{edge.start_band} " + " ".join(map(str, edge.route))
        else:
            route = f"{edge.start_band} {edge.end_band} " + " ".join(map(str, edge.route))
        source = f' data-s="{edge.start.number}"' if edge.start.kind is ItemKind.FRAME else ""
        label = (
            f"{edge.source_row.path} #{edge.source_call.index} → "
            f"{edge.target_row.path} #{edge.target_call.index} · {shape(edge.shape)}"
        )
        self.out.append(
            f'<path class="{classes}" data-r="{route}"{source} '
            f'd="{edge_path(edge, container, self.g)}"><title>{esc(label)}</title></path>'
        )

    def frame(self, item: Item, top: int) -> None:
        row, inner = item.row, item.inner
        assert inner is not None
        is_open = id(item) in self.g.opened
        groups = self.facts.groups.get(row.path, [])
        within = self.facts.within.get(row.path, [])
        stroke = groups[0][1] if groups else within[-1][1] if within else "#9ca3af"
        fill = _tint(groups[0][1], 0.08) if groups else "#f9fafb"
        if item.fold:
            last = item.fold[-1].row.path
            head = (
                f'<g class="frame fold" data-n="{item.number}" data-fold="{len(item.fold)}" '
                f'data-first="{esc(row.path)}" data-last="{esc(last)}"'
            )
        else:
            head = f'<g class="frame" data-n="{item.number}" data-p="{esc(row.path)}"'
        self.out.append(
            f'{head} data-b="{item.band}" data-open="{1 if is_open else 0}"'
            f"{self.facts.group_attr(row.path)}{self.facts.within_attr(row.path)} "
            f'transform="translate({item.x},{top})">'
            f'<rect class="fbox" width="{item.width}" height="{self.g.height(item)}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if groups or within else 1}"/>'
        )
        if item.fold:
            self.fold_box(item)
            caption = self.facts.fold_caption([i.row for i in item.fold])
        else:
            for k, node in enumerate(row.nodes or ()):
                self.call(row, node, PAD + k * (NODE_W + GAP), CALL_TOP)
            caption = self.facts.caption(row)
        self.feeds(item)
        glyph = "▾" if is_open else "▸"
        under = title_width(printable(caption)) - 2 * PAD + 4  # the feeds pass under the title
        self.out.append(
            f'<rect class="tbg" x="{PAD - 2}" y="{CALL_TOP + NODE_H + 4}" width="{under}" '
            f'height="15" fill="{fill}"/>'
            f'<text class="ftitle" x="{PAD}" y="{CALL_TOP + NODE_H + 15}">'
            f'<tspan class="tog">{glyph}</tspan> <tspan class="cap">{esc(caption)}</tspan>'
            f"<title>{esc(row.path)} · {esc(caption)}</title></text>"
        )
        display = "" if is_open else ' display="none"'
        self.out.append(f"<g{display}>")
        outer, hidden = self.origin, self.hidden
        self.origin = (outer[0] + item.x, outer[1] + top)
        if not is_open and hidden is None:
            self.hidden = (*self.origin, item.width, HEADER_H)
        self.content(inner, PAD, HEADER_H + BODY_GAP)
        self.origin, self.hidden = outer, hidden
        self.out.append("</g></g>")

    def fold_box(self, item: Item) -> None:
        """A fold's header: one box drawn as a stack, ``×N class``, its first and last
        block, Σ parameters and the last block's output shapes."""
        rows = [i.row for i in item.fold]
        first, last = rows[0], rows[-1]
        params, size, _ = self.facts.inside(*rows)
        nodes = last.nodes or ()
        out = shapes(nodes[0].output_shapes) if nodes else "?"
        self.out.append(f'<g class="foldbox" transform="translate({PAD},{CALL_TOP})">')
        title = (
            f"{len(rows)} identical {first.class_name} blocks in a chain, "
            f"{first.path} … {last.path}: Σ {num(params)} params ({held_bytes(size)}). "
            "Click the title to open the fold."
        )
        self.out.append(f"<title>{esc(title)}</title>")
        for shift in (6, 3):
            self.out.append(
                f'<rect x="{shift}" y="{-shift}" width="{NODE_W}" height="{NODE_H}" rx="4" '
                f'fill="#ffffff" stroke="#9ca3af"/>'
            )
        self.out.append(
            f'<rect class="box" width="{NODE_W}" height="{NODE_H}" rx="4" fill="#ffffff" '
            f'stroke="#4b5563" stroke-width="1.5"/>'
        )
        chars = int((NODE_W - _TEXT_LEFT - 6) / _CHAR_W)
        self.lines(
            [
                clip(f"×{len(rows)} {first.class_name}", int((NODE_W - 16) / _NAME_CHAR_W)),
                clip(_span(first.name, last.name, chars), chars),
                clip(f"Σ {short(params)} params · {held_bytes(size)}", chars),
                clip("→ " + out, chars),
            ]
        )
        self.out.append("</g>")

    def ties(self) -> None:
        """Dashed edges between tied layers, over everything (the page's script redraws them
        when frames open or close: a layer in a closed frame is reached at the frame)."""
        if not self.tie_pairs:
            return
        self.out.append('<g class="ties">')
        for a, b, label, colour in self.tie_pairs:
            d = tie_path(self.anchors.get(a), self.anchors.get(b))
            shown = f'd="{d}"' if d else 'd="" display="none"'
            group = f' data-g="{label}"' if label else ""
            what = f"{label} tied" if label else "declared tie"
            self.out.append(
                f'<path class="tie" data-ta="{esc(a)}" data-tb="{esc(b)}"{group} '
                f'stroke="{colour}" {shown}><title>{esc(f"{a} ↔ {b}: {what}, the same variables")}'
                "</title></path>"
            )
        self.out.append("</g>")

    def feeds(self, item: Item) -> None:
        """Edges from the bottom of each of a frame's calls into its body's inputs.

        Drawn before the title, which has a background: they pass under it. Hidden
        with the body.
        """
        row = item.row
        nodes = row.nodes or ()
        top, bottom = CALL_TOP + NODE_H, HEADER_H + BODY_GAP
        middle = (top + bottom) // 2
        self.out.append('<g class="feeds">')
        for position, x_in, target in item.feeds:
            x_out = item.call_port(position)
            where = f"{target.row.path} #{target.call.index}" if target.call else target.row.path
            source = (
                f"×{len(item.fold)} fold" if item.fold else f"{row.path} #{nodes[position].index}"
            )
            label = f"{source} input → {where}"
            self.out.append(
                f'<path class="e feed" d="M{x_out},{top}C{x_out},{middle} {x_in},{middle} '
                f'{x_in},{bottom}"><title>{esc(label)}</title></path>'
            )
        self.out.append("</g>")

    def call(self, row: LayerInfo, node: CallNode, x: int, y: int, *, band: int = -1) -> None:
        facts = self.facts
        groups = facts.groups.get(row.path, [])
        band_attr = f' data-b="{band}"' if band >= 0 else ""
        self.out.append(
            f'<g class="call" data-p="{esc(row.path)}" data-i="{node.index}"{band_attr}'
            f"{facts.group_attr(row.path)}{facts.within_attr(row.path)} "
            f'transform="translate({x},{y})"><title>{self.call_title(row, node)}</title>'
        )
        self.box(row, groups, dashed=False)
        name = f"{row.name} #{node.index}"
        badges = facts.findings.get(row.path, [])
        name_chars = int((NODE_W - _TEXT_LEFT - (22 if badges else 6)) / _NAME_CHAR_W)
        chars = int((NODE_W - _TEXT_LEFT - 6) / _CHAR_W)
        self.lines(
            [
                clip(name, name_chars),
                clip(row.class_name, chars),
                clip(self.counts(row), chars),
                clip("→ " + shapes(node.output_shapes), chars),
            ]
        )
        self.badge(badges)
        self.out.append("</g>")

    def chip(self, item: Item, top: int) -> None:
        row = item.row
        facts = self.facts
        self.out.append(
            f'<g class="chip" data-p="{esc(row.path)}" data-b="{item.band}"'
            f"{facts.group_attr(row.path)}{facts.within_attr(row.path)} "
            f'transform="translate({item.x},{top})"><title>{self.chip_title(row)}</title>'
        )
        self.box(row, facts.groups.get(row.path, []), dashed=True)
        chars = int((NODE_W - _TEXT_LEFT - 6) / _CHAR_W)
        badges = facts.findings.get(row.path, [])
        name_chars = int((NODE_W - _TEXT_LEFT - (22 if badges else 6)) / _NAME_CHAR_W)
        self.lines(
            [
                clip(row.name or f"({facts.report.model.name})", name_chars),
                clip(row.class_name, chars),
                clip(self.counts(row), chars),
                "calls unknown" if row.nodes is None else "not called",
            ]
        )
        self.badge(badges)
        self.out.append("</g>")

    def box(self, row: LayerInfo, groups: list[tuple[str, str]], *, dashed: bool) -> None:
        """The box: tinted by its first group; outlined (thicker) in the colour of the
        shared tower it is inside, else of its first group."""
        fill = _tint(groups[0][1]) if groups else "#ffffff"
        within = self.facts.within.get(row.path, [])
        stroke = within[-1][1] if within else groups[0][1] if groups else "#9ca3af"
        width = ' stroke-width="2"' if within else ""
        self.out.append(
            f'<rect class="box" width="{NODE_W}" height="{NODE_H}" rx="4" fill="{fill}" '
            f'stroke="{stroke}"{width}/>'
        )
        if groups:
            bar = NODE_H // len(groups) if len(groups) <= 4 else NODE_H / len(groups)
            for k, (label, colour) in enumerate(groups):
                self.out.append(
                    f'<rect class="gbar" data-g="{label}" x="0" y="{round(k * bar)}" width="5" '
                    f'height="{round((k + 1) * bar) - round(k * bar)}" fill="{colour}"/>'
                )

    def lines(self, texts: list[str]) -> None:
        """Name, class, counts, shapes; only name and shapes when compact."""
        if self.compact:
            texts = [texts[0], texts[-1]]
        step = 18 if self.compact else 13
        top = 21 if self.compact else 14
        for k, text in enumerate(texts):
            cls = ' class="t1"' if k == 0 else ""
            self.out.append(f'<text{cls} x="{_TEXT_LEFT}" y="{top + step * k}">{text}</text>')

    def badge(self, labels: list[str]) -> None:
        if not labels:
            return
        text = "!" if len(labels) == 1 else str(len(labels))
        self.out.append(
            f'<g class="badge" data-f="{" ".join(labels)}"><circle cx="{NODE_W - 10}" cy="10" '
            f'r="7"/><text x="{NODE_W - 10}" y="13.5">{text}</text></g>'
        )

    def counts(self, row: LayerInfo) -> str:
        held = row.params.held
        text = f"params {short(held)} · uses {num(row.uses)}"
        if held:
            text += f" · {held_bytes(row.bytes.held)}"
        return text

    def call_title(self, row: LayerInfo, node: CallNode) -> str:
        lines = [f"{row.path} #{node.index} ({row.class_name})"]
        for k, ref in enumerate(node.inbound[:_MAX_TITLE_INPUTS]):
            given = node.input_shapes[k] if k < len(node.input_shapes) else None
            lines.append(f"in: {ref.layer} #{ref.node_index} {shape(given)}")
        if len(node.inbound) > _MAX_TITLE_INPUTS:
            lines.append(f"in: … {len(node.inbound) - _MAX_TITLE_INPUTS} more")
        lines.append(f"out: {shapes(node.output_shapes)}")
        lines += self.row_facts(row)
        return "\n".join(esc(line) for line in lines) + "\n"

    def chip_title(self, row: LayerInfo) -> str:
        what = "calls unknown" if row.nodes is None else "not called in this graph"
        lines = [f"{row.path or self.facts.report.model.name} ({row.class_name}): {what}"]
        lines += self.row_facts(row)
        return "\n".join(esc(line) for line in lines) + "\n"

    def row_facts(self, row: LayerInfo) -> list[str]:
        facts = self.facts
        lines = [
            f"params held {num(row.params.held)} ({held_bytes(row.bytes.held)}) · "
            f"uses {num(row.uses)} · per use {num(row.params.per_use)}"
        ]
        for label, _ in facts.groups.get(row.path, []):
            group = facts.report.groups[int(label[1:]) - 1]
            lines.append(f"sharing: {label} {group.kind.value}")
        for label, _ in facts.within.get(row.path, []):
            group = facts.report.groups[int(label[1:]) - 1]
            lines.append(f"inside {label} {group.kind.value}: runs once per call of it")
        for label in facts.findings.get(row.path, []):
            finding = facts.report.findings[int(label[1:]) - 1]
            lines.append(f"finding: {label} {finding.kind}: {finding.message}")
        return lines
