"""The HTML page around the drawing: header, legend, toolbar, findings, tables, script.

Everything here is inline: one style sheet, one script, the SVG from
:mod:`weighttie.picture.drawing`. A Content-Security-Policy allows exactly those (by
hash) and nothing else, so the page fetches nothing, and a name that escaped
escaping still could not run. The script only interacts: it opens and closes
frames (recomputing vertical positions as :func:`weighttie.picture.layout.geometry`
does), zooms, highlights a group, finds a layer and sorts tables.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

from weighttie.picture.drawing import SVG_CSS, TIE_BULGE, TIE_KEY, Labels, esc
from weighttie.picture.layout import BAND_GAP, BODY_GAP, HEADER_H, NODE_H, PAD
from weighttie.report import LayerInfo, Report
from weighttie.text import byte_size, cost_line, num, shapes, sharing_sentence

__all__ = ["csp_hash", "page"]

_PAGE_CSS = """\
.wt{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2937;padding:8px 16px}
.wt h1{font-size:20px;margin:8px 0 2px}
.wt h2,.wt summary{font-size:16px;font-weight:bold;margin:18px 0 6px}
.wt summary{cursor:pointer}
.wt .sum{margin:0 0 8px;color:#374151}
.wt ul.legend,.wt ul.findings{list-style:none;padding:0;margin:4px 0}
.wt ul.legend li{display:inline-flex;align-items:center;gap:6px;margin:2px 18px 2px 0;\
cursor:default}
.wt ul.findings li{margin:3px 0}
.wt .fb{display:inline-block;background:#c62828;color:#fff;border-radius:9px;padding:0 7px;\
font-weight:bold;font-size:12px}
.wt .toolbar{display:flex;gap:6px;align-items:center;margin:8px 0}
.wt .toolbar button{font:inherit;font-size:13px;padding:2px 10px;cursor:pointer;white-space:nowrap}
.wt .viewport{overflow:auto;max-height:78vh;border:1px solid #d1d5db;background:#fff}
.wt .viewport svg{display:block}
.wt table{border-collapse:collapse;margin:6px 0 18px;font-size:13px}
.wt th,.wt td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
.wt th{background:#f3f4f6;cursor:pointer;user-select:none;white-space:nowrap}
.wt th[aria-sort=ascending]::after{content:" \\25B2"}
.wt th[aria-sort=descending]::after{content:" \\25BC"}
.wt td.n{text-align:right;font-variant-numeric:tabular-nums}
.wt td.m{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.wt a[data-go]{color:#1d4ed8;text-decoration:none}
.wt .wt-graph .ftitle,.wt .wt-graph .foldbox{cursor:pointer}
.wt .wt-graph.dim g.call:not(.hl),.wt .wt-graph.dim g.chip:not(.hl){opacity:.25}
.wt .wt-graph .flash>.box,.wt .wt-graph .flash>.fbox{stroke:#dc2626;stroke-width:4}
"""

_SCRIPT = """\
(function () {
"use strict";
var C = __CONSTANTS__;
var root = document.currentScript.parentElement;
var svg = root.querySelector("svg.wt-graph");
if (!svg) { return; }
var frames = [];
Array.prototype.forEach.call(svg.querySelectorAll("g.frame"), function (f) {
  frames[Number(f.dataset.n)] = f;
});
var rootContent = svg.querySelector("g.content.root");
var baseW = Number(svg.getAttribute("width"));
var zoom = 1;

function wrapper(f) { return f.lastElementChild; }
function contentOf(f) { return wrapper(f).firstElementChild; }
function isOpen(f) { return f.dataset.open === "1"; }
function height(item) {
  if (!item.classList.contains("frame")) { return C.nodeH; }
  if (!isOpen(item)) { return C.headerH; }
  return C.headerH + C.bodyGap + Number(contentOf(item).dataset.h) + C.pad;
}
function left(el) {
  if (el.wtX === undefined) {
    el.wtX = Number(/translate\\((-?[0-9]+),/.exec(el.getAttribute("transform"))[1]);
  }
  return el.wtX;
}
function startHeight(p) {
  return p.dataset.s === undefined ? C.nodeH : height(frames[Number(p.dataset.s)]);
}
function edgePath(p, tops, hs) {
  var r = p.dataset.r.split(" ").map(Number);
  var yb, yt, d;
  if (p.classList.contains("loop")) {
    var top = tops[r[0]], out = r[1], into = r[2], right = r[3];
    yb = top + startHeight(p);
    yt = top;
    return "M" + out + "," + yb + "C" + out + "," + (yb + 24) + " " + right + "," + (yb + 24) +
      " " + right + "," + Math.floor((yb + yt) / 2) + "C" + right + "," + (yt - 24) + " " +
      into + "," + (yt - 24) + " " + into + "," + yt;
  }
  var bs = r[0], bt = r[1], xs = r.slice(2);
  var y = tops[bs] + startHeight(p);
  yb = tops[bs] + hs[bs];
  d = "M" + xs[0] + "," + y;
  if (yb !== y) { d += "V" + yb; }
  var last = xs.length - 1;
  for (var j = 1; j <= last; j++) {
    var band = j === last ? bt : bs + j;
    yt = tops[band];
    var mid = yb + Math.floor((yt - yb) / 2);
    d += "C" + xs[j - 1] + "," + mid + " " + xs[j] + "," + mid + " " + xs[j] + "," + yt;
    if (j < last) { yb = tops[band] + hs[band]; d += "V" + yb; }
  }
  return d;
}
function reflow(content) {
  var items = [], hs = [], el, b, h;
  for (el = content.firstElementChild; el; el = el.nextElementSibling) {
    if (el.dataset.b === undefined) { continue; }
    b = Number(el.dataset.b);
    h = height(el);
    items.push(el);
    if (!(hs[b] >= h)) { hs[b] = h; }
  }
  var tops = [], y = 0;
  for (b = 0; b < hs.length; b++) {
    if (hs[b] === undefined) { hs[b] = 0; }
    tops.push(y);
    y += hs[b] + C.bandGap;
  }
  items.forEach(function (item) {
    var t = "translate(" + left(item) + "," + tops[Number(item.dataset.b)] + ")";
    if (item.getAttribute("transform") !== t) { item.setAttribute("transform", t); }
  });
  for (el = content.firstElementChild.firstElementChild; el; el = el.nextElementSibling) {
    var d = edgePath(el, tops, hs);
    if (el.getAttribute("d") !== d) { el.setAttribute("d", d); }
  }
  content.dataset.h = String(hs.length ? y - C.bandGap : 0);
}
function owner(content) {
  var f = content.parentNode.parentNode;
  return f && f.classList && f.classList.contains("frame") ? f : null;
}
function anchor(path) {
  var sel = '[data-p="' + CSS.escape(path) + '"]';
  var el = svg.querySelector("g.call" + sel + ",g.chip" + sel + ",g.frame" + sel);
  if (!el) { return null; }
  for (var w = el; w && w !== svg; w = w.parentNode) {
    if (w.classList && w.classList.contains("frame") && !isOpen(w)) { el = w; }
  }
  var m = svg.getScreenCTM().inverse().multiply(el.getScreenCTM());
  var box = el.querySelector(":scope > rect");
  var h = el.classList.contains("frame") ? C.headerH : Number(box.getAttribute("height"));
  return [Math.round(m.e), Math.round(m.f), Number(box.getAttribute("width")), h];
}
function ties() {
  Array.prototype.forEach.call(svg.querySelectorAll("path.tie[data-ta]"), function (p) {
    var a = anchor(p.dataset.ta), b = anchor(p.dataset.tb), d = "";
    if (a && b && a.join() !== b.join()) {
      var ax = a[0] + a[2], ay = a[1] + Math.floor(a[3] / 2);
      var bx = b[0] + b[2], by = b[1] + Math.floor(b[3] / 2);
      var bulge = Math.max(ax, bx) + C.tieBulge;
      d = "M" + ax + "," + ay + "C" + bulge + "," + ay + " " + bulge + "," + by + " " +
        bx + "," + by;
    }
    p.setAttribute("d", d);
    if (d) { p.removeAttribute("display"); } else { p.setAttribute("display", "none"); }
  });
}
function setBox(f) { f.firstElementChild.setAttribute("height", String(height(f))); }
function resize() {
  var h = Number(svg.dataset.top) + Number(rootContent.dataset.h) + Number(svg.dataset.margin);
  svg.setAttribute("viewBox", "0 0 " + baseW + " " + h);
  svg.setAttribute("width", String(Math.round(baseW * zoom)));
  svg.setAttribute("height", String(Math.round(h * zoom)));
}
function setOpen(f, open) {
  f.dataset.open = open ? "1" : "0";
  if (open) { wrapper(f).removeAttribute("display"); }
  else { wrapper(f).setAttribute("display", "none"); }
  f.querySelector("text.ftitle > tspan.tog").textContent = open ? "\\u25BE" : "\\u25B8";
}
function settle(f) {
  setBox(f);
  for (var c = f.parentNode; c; ) {
    reflow(c);
    var o = owner(c);
    if (!o) { break; }
    setBox(o);
    c = o.parentNode;
  }
  resize();
  ties();
}
function setAll(open) {
  frames.forEach(function (f) { setOpen(f, open); });
  var inDocumentOrder = Array.prototype.slice.call(svg.querySelectorAll("g.frame"));
  inDocumentOrder.reverse().forEach(function (f) { reflow(contentOf(f)); setBox(f); });
  reflow(rootContent);
  resize();
  ties();
}
function reveal(path) {
  var sel = '[data-p="' + CSS.escape(path) + '"]';
  var el = svg.querySelector("g.call" + sel + ",g.chip" + sel + ",g.frame" + sel);
  if (!el) { return; }
  for (var w = el.parentNode; w && w !== svg; w = w.parentNode) {
    if (w.getAttribute && w.getAttribute("display") === "none") {
      setOpen(w.parentNode, true);
      settle(w.parentNode);
    }
  }
  el.scrollIntoView({block: "center", inline: "center"});
  el.classList.add("flash");
  setTimeout(function () { el.classList.remove("flash"); }, 1600);
}
function highlight(group) {
  svg.classList.toggle("dim", Boolean(group));
  Array.prototype.forEach.call(svg.querySelectorAll(".hl"), function (e) {
    e.classList.remove("hl");
  });
  if (group) {
    var sel = '[data-g~="' + group + '"],[data-gi~="' + group + '"]';
    Array.prototype.forEach.call(svg.querySelectorAll(sel), function (e) {
      e.classList.add("hl");
    });
  }
}
function setZoom(z) { zoom = Math.max(0.02, Math.min(4, z)); resize(); }
var actions = {
  "open-all": function () { setAll(true); },
  "close-all": function () { setAll(false); },
  "zoom-in": function () { setZoom(zoom * 1.25); },
  "zoom-out": function () { setZoom(zoom / 1.25); },
  "zoom-fit": function () {
    setZoom(Math.min(1, (svg.parentNode.clientWidth - 2) / baseW));
  },
  "zoom-1": function () { setZoom(1); }
};
svg.addEventListener("click", function (ev) {
  var t = ev.target.closest("text.ftitle,g.foldbox");
  if (t) { var f = t.parentNode; setOpen(f, !isOpen(f)); settle(f); }
});
root.addEventListener("click", function (ev) {
  var go = ev.target.closest("[data-go]");
  if (go) { ev.preventDefault(); reveal(go.dataset.go); return; }
  var act = ev.target.closest("[data-act]");
  if (act && actions[act.dataset.act]) { actions[act.dataset.act](); }
});
Array.prototype.forEach.call(root.querySelectorAll("ul.legend li[data-g]"), function (li) {
  li.addEventListener("mouseenter", function () { highlight(li.dataset.g); });
  li.addEventListener("mouseleave", function () { highlight(null); });
});
Array.prototype.forEach.call(root.querySelectorAll("table.sortable"), function (table) {
  var heads = table.tHead.rows[0].cells, body = table.tBodies[0];
  Array.prototype.forEach.call(body.rows, function (r, i) { r.wtK = i; });
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending", num = "num" in th.dataset;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var keyed = Array.prototype.map.call(body.rows, function (r) {
        var c = r.cells[col];
        return [num ? Number(c.dataset.v) : c.textContent, r.wtK, r];
      });
      keyed.sort(function (a, b) {
        var o = num ? a[0] - b[0] : (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
        return (asc ? o : -o) || a[1] - b[1];
      });
      keyed.forEach(function (k) { body.appendChild(k[2]); });
    });
  });
});
root.dataset.ready = "1";
}());
"""


def _script() -> str:
    """The page's script, with the layout's constants written in."""
    constants = {
        "bandGap": BAND_GAP,
        "bodyGap": BODY_GAP,
        "headerH": HEADER_H,
        "nodeH": NODE_H,
        "pad": PAD,
        "tieBulge": TIE_BULGE,
    }
    return _SCRIPT.replace("__CONSTANTS__", json.dumps(constants, sort_keys=True))


def csp_hash(text: str) -> str:
    """The Content-Security-Policy source allowing one inline ``<script>`` or ``<style>``.

    Example:
        >>> csp_hash("")
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _swatch(colour: str) -> str:
    return (
        f'<svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" rx="2" '
        f'fill="{colour}"/></svg>'
    )


def _go(path: str, label: str | None = None) -> str:
    return f'<a href="#" data-go="{esc(path)}">{esc(label if label is not None else path)}</a>'


def _n(value: int | None, text: str | None = None) -> str:
    shown = text if text is not None else num(value)  # None: "unknown"
    return f'<td class="n" data-v="{-1 if value is None else value}">{shown}</td>'


#: Tables with more rows start folded: laying out 20,000 rows costs a browser seconds.
FOLD_ROWS = 2000


def _table(title: str, headers: Sequence[tuple[str, bool]], rows: list[str], name: str) -> str:
    """A sortable table under a heading that folds it (folded when it has many rows)."""
    if not rows:
        return ""
    head = "".join(
        f"<th{' data-num' if numeric else ''}>{esc(text)}</th>" for text, numeric in headers
    )
    folded = len(rows) > FOLD_ROWS
    return (
        f"<details{'' if folded else ' open'}><summary>{esc(title)} ({len(rows):,})"
        f"{' — click to show' if folded else ''}</summary>"
        f'<table class="sortable" data-table="{name}"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


class _Page:
    """The HTML around the drawing: one method per section."""

    def __init__(self, report: Report, facts: Labels) -> None:
        self.report = report
        self.facts = facts

    def header(self, calls: int) -> str:
        r = self.report
        p = r.params
        title = f"Model {esc(repr(r.model.name))} ({esc(r.model.class_name)})"
        if r.model.file:
            title += f" from {esc(r.model.file)}"
        groups = len(r.groups)
        summary = (
            f"Params: {num(p.unique)} unique, {num(p.per_use)} per use, "
            f"{num(p.duplicated)} duplicated (trainable {num(p.trainable_unique)}, "
            f"non-trainable {num(p.non_trainable_unique)}) · {num(calls)} calls · "
            f"{groups} sharing group{'s' if groups != 1 else ''} · source: {esc(r.model.source)}"
        )
        cost = esc(cost_line(r))
        notes = "".join(f'<p class="note">Note: {esc(note)}</p>' for note in r.model.notes)
        return f'<h1>{title}</h1><p class="sum">{summary}</p><p class="sum">{cost}</p>{notes}'

    def legend(self) -> str:
        sentence = sharing_sentence(self.report)
        if not self.report.groups:
            return f'<p class="legend-none">{esc(sentence or "")}</p>'
        items = []
        for n, group in enumerate(self.report.groups):
            layers = ", ".join(_go(path) for path in group.layers)
            items.append(
                f'<li data-g="G{n + 1}">{_swatch(self.facts.colours[n])}<b>G{n + 1}</b> '
                f"{esc(group.kind.value)}: {layers} · {num(group.params)} params · "
                f"{num(group.calls)} calls · {num(group.duplicated)} duplicated</li>"
            )
        pairs = self.facts.tie_pairs()
        if pairs:
            colour = pairs[0][3]
            items.append(
                f'<li class="tie-key"><svg width="30" height="10" aria-hidden="true">'
                f'<path d="M1,5h28" stroke="{colour}" stroke-width="2" stroke-dasharray="7 4"/>'
                f"</svg>{esc(TIE_KEY)}</li>"
            )
        more = f'<p class="legend-none">{esc(sentence)}</p>' if sentence else ""
        return f'<h2>Sharing groups</h2><ul class="legend">{"".join(items)}</ul>{more}'

    def toolbar(self, has_frames: bool) -> str:
        buttons = (
            [
                ("open-all", "Open all frames"),
                ("close-all", "Close all frames"),
            ]
            if has_frames
            else []
        )
        buttons += [("zoom-out", "−"), ("zoom-in", "+"), ("zoom-fit", "Fit"), ("zoom-1", "1:1")]
        inner = "".join(
            f'<button type="button" data-act="{act}">{label}</button>' for act, label in buttons
        )
        hint = (
            " Click a frame's title (or a folded ×N stack) to open or close it."
            if has_frames
            else ""
        )
        return (
            f'<div class="toolbar">{inner}<span class="hint">Hover a box or an edge for '
            f"shapes.{hint}</span></div>"
        )

    def findings(self) -> str:
        if not self.report.findings:
            return ""
        items = []
        for n, finding in enumerate(self.report.findings):
            layers = ", ".join(_go(path) for path in finding.layers)
            items.append(
                f'<li data-f="F{n + 1}"><span class="fb">F{n + 1}</span> '
                f"<b>{esc(finding.kind)}</b> ({layers}; {num(finding.params)} params): "
                f"{esc(finding.message)}</li>"
            )
        return f'<h2>Findings</h2><ul class="findings">{"".join(items)}</ul>'

    def layer_rows(self) -> list[str]:
        rows = []
        for row in sorted(self.report.layers, key=lambda r: (r.order, r.path)):
            sharing = "<br>".join(
                f"{label} {esc(self.report.groups[int(label[1:]) - 1].kind.value)}"
                for label, _ in self.facts.groups.get(row.path, [])
            )
            findings = " ".join(self.facts.findings.get(row.path, []))
            rows.append(
                f"<tr><td>{_go(row.path, row.path or f'({row.name})')}</td>"
                f'<td>{esc(row.class_name)}</td><td class="m">{self.calls(row)}</td>'
                f"{_n(row.params.held)}{_n(row.bytes.held, byte_size(row.bytes.held))}"
                f"{_n(row.uses)}"
                f"{_n(row.params.per_use)}{self.macs(row)}<td>{sharing}</td><td>{findings}</td></tr>"
            )
        return rows

    @staticmethod
    def macs(row: LayerInfo) -> str:
        """Blank for a row without calls: its cost is in the call that runs it."""
        if row.nodes is None:
            return '<td class="n" data-v="-1"></td>'
        return _n(row.macs, "unknown" if row.macs is None else None)

    @staticmethod
    def calls(row: LayerInfo) -> str:
        if row.nodes is None:
            return "unknown"
        return "<br>".join(f"#{n.index} {esc(shapes(n.output_shapes))}" for n in row.nodes)

    def tables(self) -> str:
        r = self.report
        parts = [
            _table(
                "Layers",
                [
                    ("Layer", False),
                    ("Class", False),
                    ("Calls: output shape", False),
                    ("Params", True),
                    ("Bytes", True),
                    ("Uses", True),
                    ("Per use", True),
                    ("MACs", True),
                    ("Sharing", False),
                    ("Findings", False),
                ],
                self.layer_rows(),
                "layers",
            ),
            _table(
                "Sharing groups",
                [
                    ("Group", False),
                    ("Kind", False),
                    ("Layers", False),
                    ("Params", True),
                    ("Calls", True),
                    ("Duplicated", True),
                ],
                [
                    f"<tr><td>{_swatch(self.facts.colours[n])} G{n + 1}</td>"
                    f"<td>{esc(g.kind.value)}</td>"
                    f"<td>{'<br>'.join(_go(path) for path in g.layers)}</td>"
                    f"{_n(g.params)}{_n(g.calls)}{_n(g.duplicated)}</tr>"
                    for n, g in enumerate(r.groups)
                ],
                "groups",
            ),
            _table(
                "Declared ties",
                [("Target", False), ("Source", False), ("Variables", False), ("State", False)],
                [
                    f"<tr><td>{_go(t.target)}</td><td>{_go(t.source)}</td>"
                    f"<td>{', '.join(esc(v) for v in t.variables)}</td>"
                    f"<td>{'bound' if t.bound else 'BROKEN'}</td></tr>"
                    for t in r.ties
                ],
                "ties",
            ),
            _table(
                "Findings",
                [
                    ("Finding", False),
                    ("Kind", False),
                    ("Layers", False),
                    ("Params", True),
                    ("Message", False),
                ],
                [
                    f"<tr><td>F{n + 1}</td><td>{esc(f.kind)}</td>"
                    f"<td>{'<br>'.join(_go(path) for path in f.layers)}</td>"
                    f"{_n(f.params)}<td>{esc(f.message)}</td></tr>"
                    for n, f in enumerate(r.findings)
                ],
                "findings",
            ),
        ]
        return "".join(parts)


def page(report: Report, facts: Labels, svg: str, calls: int, *, fragment: bool) -> str:
    """The page (or, with ``fragment``, the ``<div>``) holding ``svg`` and the report's tables."""
    p = _Page(report, facts)
    script = _script()
    body = (
        f'<div class="wt"><style>{_PAGE_CSS}</style>{p.header(calls)}{p.legend()}'
        f"{p.findings()}{p.toolbar(bool(facts.scene and facts.scene.frames))}"
        f'<div class="viewport">{svg}</div>{p.tables()}<script>{script}</script></div>'
    )
    if fragment:
        return body + "\n"
    policy = (
        f"default-src 'none'; style-src {csp_hash(_PAGE_CSS)} {csp_hash(SVG_CSS)}; "
        f"script-src {csp_hash(script)}; img-src data:; base-uri 'none'; form-action 'none'"
    )
    title = f"weighttie · {esc(report.model.name)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body>\n{body}</body></html>\n"
    )
