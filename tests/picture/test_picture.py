"""The picture (weighttie.picture): one box per call, frames, colours, escaping, layout.

The SVG is parsed as XML (it must be well-formed whatever the names), compared in
full with a golden file for one model (pytest --update-golden rewrites it), and
checked against the report it came from. The page in a real browser:
test_picture_browser.py.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

import keras
import pytest
from keras import layers

import weighttie
from support import zoo
from weighttie.picture import AUTO_OPEN_CALLS, to_html, to_svg
from weighttie.picture.layout import GAP, ItemKind, geometry, layout
from weighttie.report import LayerBytes, Report
from weighttie.static import read_report
from weighttie.text import byte_size, cost_line

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    return {name: weighttie.analyze(build()) for name, build in zoo.ZOO.items()}


def _calls(report: Report) -> int:
    return sum(len(row.nodes or ()) for row in report.layers)


def _groups(element: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in element.iter(f"{SVG}g") if g.get("class") == cls]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


# -- what is drawn -------------------------------------------------------------------


def test_one_call_box_per_call_of_the_report(reports: dict[str, Report]) -> None:
    """Every call is one box; layers with unknown calls (or none) are chips, not calls."""
    for name, report in reports.items():
        for expanded in (True, False):
            root = _parse(to_svg(report, expanded=expanded))
            boxes = _groups(root, "call")
            assert len(boxes) == _calls(report), name
            drawn = sorted((b.get("data-p"), int(b.get("data-i", -1))) for b in boxes)
            expected = sorted((r.path, n.index) for r in report.layers for n in r.nodes or ())
            assert drawn == expected, name
            chips = sorted(c.get("data-p") or "" for c in _groups(root, "chip"))
            assert chips == sorted(r.path for r in report.layers if not r.nodes), name


def test_nested_models_are_frames_holding_their_layers_once(reports: dict[str, Report]) -> None:
    root = _parse(to_svg(reports["nested_twice"]))
    (outer,) = [f for f in _groups(root, "frame") if f.get("data-p") == "outer"]
    (inner,) = [f for f in _groups(outer, "frame") if f.get("data-p") == "outer/inner"]
    inside_inner = [b.get("data-p") for b in _groups(inner, "call")]
    # the frame's own two calls in its header, its layers' calls once each
    assert sorted(inside_inner) == ["outer/inner", "outer/inner", "outer/inner/dense",
                                    "outer/inner/inner_in"]  # fmt: skip
    assert outer.get("data-open") == inner.get("data-open") == "1"


def test_layers_with_unknown_calls_are_chips_in_the_frame_of_their_layer(
    reports: dict[str, Report],
) -> None:
    root = _parse(to_svg(reports["siamese_lstm"]))
    (lstm,) = _groups(root, "frame")
    assert lstm.get("data-p") == "lstm"
    assert [c.get("data-p") for c in _groups(lstm, "chip")] == ["lstm/lstm_cell"]
    subclassed = _parse(to_svg(reports["subclassed"]))
    assert _groups(subclassed, "call") == []
    assert sorted(c.get("data-p") for c in _groups(subclassed, "chip")) == ["hidden", "norm", "out"]


def test_every_group_has_a_colour_in_the_legend_and_on_its_layers_calls(
    reports: dict[str, Report],
) -> None:
    for name, report in reports.items():
        root = _parse(to_svg(report))
        legend = {g.get("data-g"): g.find(f"{SVG}rect") for g in _groups(root, "legend")}
        assert sorted(legend) == sorted(f"G{n + 1}" for n in range(len(report.groups))), name
        colours = {label: rect.get("fill") for label, rect in legend.items() if rect is not None}
        assert len(set(colours.values())) == len(colours), name
        for n, group in enumerate(report.groups):
            label = f"G{n + 1}"
            for box in _groups(root, "call"):
                bars = {
                    bar.get("data-g"): bar.get("fill")
                    for bar in box.findall(f"{SVG}rect")
                    if bar.get("class") == "gbar"
                }
                if box.get("data-p") in group.layers:
                    assert bars.get(label) == colours[label], (name, box.get("data-p"))
                else:
                    assert label not in bars, (name, box.get("data-p"))


def test_html_legend_and_tables_list_every_group_and_layer(reports: dict[str, Report]) -> None:
    report = reports["nested_twice"]
    page = to_html(report)
    legend = re.findall(r'<li data-g="(G\d+)">', page)
    assert legend == ["G1", "G2"]
    rows = re.search(r'data-table="layers">(.*?)</table>', page)
    assert rows is not None and rows.group(1).count("<tr>") == len(report.layers) + 1


def test_findings_are_badges_on_their_layers_and_listed(reports: dict[str, Report]) -> None:
    report = reports["cloned_tower"]
    root = _parse(to_svg(report))
    badged = {
        box.get("data-p")
        for box in _groups(root, "call")
        if any(g.get("class") == "badge" for g in box.findall(f"{SVG}g"))
    }
    assert badged == {path for f in report.findings for path in f.layers}
    assert [g.get("data-f") for g in _groups(root, "finding")] == ["F1", "F2", "F3"]
    assert re.findall(r'<li data-f="(F\d+)">', to_html(report)) == ["F1", "F2", "F3"]


def test_edges_carry_the_shapes_they_transport(reports: dict[str, Report]) -> None:
    root = _parse(to_svg(reports["siamese_tower"]))
    titles = sorted(
        p.findtext(f"{SVG}title") or "" for p in root.iter(f"{SVG}path") if p.get("class") == "e"
    )
    assert "left #0 → tower #0 · (None, 12, 12, 3)" in titles
    assert "tower #1 → merge #0 · (None, 8)" in titles
    assert "tower/tower_conv #0 → tower/tower_bn #0 · (None, 10, 10, 4)" in titles
    assert len(titles) == sum(len(n.inbound) for r in reports["siamese_tower"].layers
                              for n in r.nodes or ())  # fmt: skip


def test_frames_start_closed_on_large_reports(reports: dict[str, Report]) -> None:
    report = reports["siamese_tower"]
    assert _calls(report) <= AUTO_OPEN_CALLS
    assert 'data-open="1"' in to_svg(report)
    closed = to_svg(report, expanded=False)
    assert 'data-open="1"' not in closed and 'data-open="0"' in closed
    assert len(_groups(_parse(closed), "call")) == _calls(report)


# -- the golden file and determinism ----------------------------------------------------


def test_svg_matches_golden(reports: dict[str, Report], golden) -> None:
    golden("siamese_tower.svg", to_svg(reports["siamese_tower"]))


def test_same_report_same_bytes(reports: dict[str, Report]) -> None:
    for name in ("siamese_tower", "nested_twice", "cloned_tower"):
        report = reports[name]
        again = weighttie.analyze(zoo.ZOO[name]())
        through_json = Report.from_json(report.to_json())
        assert to_svg(report) == to_svg(again) == to_svg(through_json), name
        assert to_html(report) == to_html(through_json), name


# -- untrusted names ---------------------------------------------------------------------

HOSTILE = {
    "tower_conv": "<script>window.pwned=1</script>\"'&amp;\x00\x1b[2J\u202e\ufffe",
    "tower": "t</style><img src=x onerror=alert(1)>\ud800",
    "merge": "]]><!-- -->\u2028\x7f\x85",
    "siamese_tower": "<svg onload=alert(2)>",
}


def _hostile(report: Report) -> Report:
    text = report.to_json()
    for plain, evil in HOSTILE.items():
        text = text.replace(plain, json.dumps(evil)[1:-1])
    return Report.from_json(text)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def test_hostile_names_are_escaped(reports: dict[str, Report]) -> None:
    report = _hostile(reports["siamese_tower"])
    assert any("<script>" in row.path for row in report.layers)
    svg = to_svg(report)
    root = _parse(svg)  # well-formed XML 1.0: no raw controls, surrogates or markup
    assert len(_groups(root, "call")) == _calls(report)
    assert "<script" not in svg and "<img" not in svg and "<svg onload" not in svg
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;&quot;&#x27;&amp;amp;\\x00\\x1b[2J" in svg
    page = to_html(report)
    tags = _Tags()
    tags.feed(page)
    assert tags.tags.count("script") == 1 and "img" not in tags.tags
    assert tags.tags.count("style") == 2 and tags.handlers == []
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u202e\ud800\ufffe]", page)


def test_the_page_fetches_nothing(reports: dict[str, Report]) -> None:
    page = to_html(reports["cloned_tower"])
    assert "default-src 'none'" in page
    urls = re.findall(r'(?:src|href|url)\s*[=(]\s*"?([^")\s>]+)', page)
    assert set(urls) <= {"#", "#wt-arrow"}
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"]


def test_fragment_is_one_div(reports: dict[str, Report]) -> None:
    fragment = to_html(reports["siamese_tower"], fragment=True)
    assert fragment.startswith('<div class="wt">') and fragment.endswith("</div>\n")
    assert "<html" not in fragment and "Content-Security-Policy" not in fragment


# -- layout --------------------------------------------------------------------------------


def test_items_of_a_band_never_overlap_and_edges_run_down(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        scene = layout(report)
        for container in scene.containers:
            bands: dict[int, list[tuple[int, int]]] = {}
            for item in container.items:
                bands.setdefault(item.band, []).append((item.x, item.x + item.width + item.extra))
            for spans in bands.values():
                spans.sort()
                for (_, right), (left, _) in itertools.pairwise(spans):
                    assert right + GAP <= left, name
            for edge in container.edges:
                assert edge.loop or edge.start.band < edge.end.band, name


def _serial_block() -> keras.Model:
    """A nested model applied to its own output: its second call consumes its first."""
    keras.utils.set_random_seed(13)
    x = keras.Input((4,), name="block_in")
    block = keras.Model(x, layers.Dense(4, name="dense")(x), name="block")
    y = keras.Input((4,), name="y")
    return keras.Model(y, block(block(y)), name="serial")


def test_a_frame_feeding_itself_gets_a_loop_edge() -> None:
    report = weighttie.analyze(_serial_block())
    scene = layout(report)
    loops = [e for e in scene.root.edges if e.loop]
    assert len(loops) == 1 and loops[0].start.kind is ItemKind.FRAME
    root = _parse(to_svg(report))
    assert len(_groups(root, "call")) == _calls(report)
    assert any(p.get("class") == "e loop" for p in root.iter(f"{SVG}path"))


def test_a_report_with_a_cycle_or_dangling_references_still_draws(
    reports: dict[str, Report],
) -> None:
    doc = reports["siamese_tower"].to_dict()
    by_path = {row["path"]: row for row in doc["layers"]}
    by_path["left"]["nodes"][0]["inbound"] = [["score", 0, 0], ["nowhere", 3, 0], ["merge", 9, 9]]
    report = Report.from_dict(doc)
    scene = layout(report)
    assert sum(e.back for e in scene.root.edges) == 1
    assert len(_groups(_parse(to_svg(report)), "call")) == _calls(report)


def test_closed_frames_are_shorter_and_keep_their_width(reports: dict[str, Report]) -> None:
    scene = layout(reports["nested_twice"])
    opened, closed = geometry(scene, lambda f: True), geometry(scene, lambda f: False)
    for frame in scene.frames:
        assert closed.height(frame) < opened.height(frame)
    assert closed.content_height[id(scene.root)] < opened.content_height[id(scene.root)]


@pytest.mark.budget
def test_a_20k_call_report_draws_in_seconds() -> None:
    """Branches of 50 Dense layers, one Dense shared by every branch (as benchmarks/run.py)."""
    from weighttie.report import CallNode, InboundRef, LayerInfo, LayerParams, ModelInfo, Params

    def row(path: str, nodes: list[CallNode]) -> LayerInfo:
        return LayerInfo(path, path, "Dense", len(nodes), LayerParams(0, 0, 0), (), tuple(nodes))

    def call(index: int, source: str, source_index: int = 0) -> CallNode:
        return CallNode(index, (InboundRef(source, source_index, 0),), ((None, 4),), ((None, 4),))

    rows = [LayerInfo("x", "x", "InputLayer", 1, LayerParams(0, 0, 0), (),
                      (CallNode(0, (), (), ((None, 4),)),))]  # fmt: skip
    shared = []
    for b in range(400):
        previous = "x"
        for i in range(50):
            rows.append(row(f"b{b}_d{i}", [call(0, previous)]))
            previous = f"b{b}_d{i}"
        shared.append(call(b, previous))
    rows.append(row("shared", shared))
    report = Report(ModelInfo("wide", "Functional", "live"), Params(0, 0, 0, 0, 0),
                    tuple(rows), (), ())  # fmt: skip
    start = time.perf_counter()
    page = to_html(report)
    took = time.perf_counter() - start
    assert page.count('<g class="call"') == _calls(report) == 20_401
    assert took < 60


# -- bytes: the Report's, in the cost line's format ------------------------------------------


def test_bytes_on_the_page_are_the_reports_for_a_bfloat16_file(tmp_path) -> None:
    """bfloat16 weights (two opaque bytes in HDF5, named by Keras's attribute): the page
    shows the Report's bytes, never ``?``."""

    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(3, dtype="bfloat16", name="d")(x), name="bf")
    model.save(tmp_path / "bf.keras")
    report = read_report(tmp_path / "bf.keras")
    dense = report.layer("d")
    assert {report.variable(v).dtype for v in dense.variables} == {"bfloat16"}
    assert dense.bytes.held == 2 * 15 == report.cost.bytes.unique
    page = to_html(report)
    assert "30 B unique" in cost_line(report) and f'<p class="sum">{cost_line(report)}</p>' in page
    assert '<td class="n" data-v="30">30 B</td>' in page  # the layer table's Bytes cell
    assert "?" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S).replace("(?)", "")
    svg = to_svg(report)
    assert "params 15 · uses 1 · 30 B" in svg  # the box
    assert "params held 15 (30 B)" in svg  # its tooltip
    assert byte_size(dense.bytes.held) == "30 B"


def test_frame_bytes_and_byte_format_match_the_cost_line() -> None:
    """A frame's caption sums the Report's variable bytes; 999,999 B is 1.00 MB everywhere."""
    x = keras.Input((999_999 // 3,), name="x")
    inner = keras.Sequential([keras.Input((333_333,)), layers.Dense(2, name="d")], name="tower")
    model = keras.Model(x, inner(x), name="m")
    report = weighttie.analyze(model)
    unique = report.cost.bytes.unique
    assert unique == 4 * report.params.unique == 4 * (333_333 * 2 + 2)
    svg = to_svg(report)
    assert "2.67 MB)" in svg  # the frame's caption: (tower's bytes), 3 significant digits
    assert "2.67 MB unique" in to_html(report)
    assert byte_size(999_999) == "1.00 MB" and byte_size(None) == "unknown"


def test_unknown_bytes_read_unknown_not_a_question_mark() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    unknown = replace(
        report,
        layers=tuple(replace(r, bytes=LayerBytes(None, None, None)) for r in report.layers),
        variables=tuple(replace(v, bytes=None) for v in report.variables),
    )
    page = to_html(unknown)
    assert "bytes unknown" in page and "(?)" not in page
    assert '<td class="n" data-v="-1">unknown</td>' in page
