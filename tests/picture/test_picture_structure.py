"""The picture's structure on real models, read from the parsed SVG/HTML.

Each test builds a real model, analyzes it and compares what is drawn with the
Report: the layers table in model order, frame titles that fit, an edge into
every open frame, a shared tower's inner boxes in its group's colour, tie edges,
and runs of identical blocks folded into one ×N frame.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import keras
import pytest
from keras import layers

import weighttie
from support import zoo
from weighttie.picture import to_html, to_svg
from weighttie.report import Report

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    names = ["siamese_tower", "siamese_lstm", "nested_twice", "tied_embeddings", "cloned_tower"]
    return {name: weighttie.analyze(zoo.ZOO[name]()) for name in names}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def _classed(element: ET.Element, cls: str, tag: str = "g") -> list[ET.Element]:
    return [e for e in element.iter(f"{SVG}{tag}") if cls in (e.get("class") or "").split()]


class _LayerTable(HTMLParser):
    """The layer paths of the HTML layers table, row by row (the first cell's link)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.first_cell = False
        self.paths: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.inside = found.get("data-table") == "layers"
        elif self.inside and tag == "tr":
            self.first_cell = True
        elif self.inside and tag == "a" and self.first_cell:
            self.paths.append(found.get("data-go") or "")
            self.first_cell = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False


def test_the_layers_table_is_in_model_order(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        parser = _LayerTable()
        parser.feed(to_html(report))
        expected = [row.path for row in sorted(report.layers, key=lambda r: r.order)]
        assert parser.paths == expected, name
        assert parser.paths != sorted(parser.paths) or expected == sorted(expected), name


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def test_frame_titles_are_whole_and_fit_their_frames(reports: dict[str, Report]) -> None:
    """The whole title (name, class, Σ params from the Report, calls) is drawn, never cut."""
    from weighttie.picture.drawing import title_width
    from weighttie.text import count, short

    for name, report in reports.items():
        root = _parse(to_svg(report))
        frames = [f for f in _classed(root, "frame") if f.get("data-p")]
        framed = [r for r in report.layers if r.nodes and report.children(r.path) and r.path]
        assert sorted(f.get("data-p") for f in frames) == sorted(r.path for r in framed), name
        for frame in frames:
            row = report.layer(frame.get("data-p") or "")
            (title,) = _classed(frame, "ftitle", "text")[:1]
            caption = "".join(t.text or "" for t in title if t.get("class") == "cap")
            assert "…" not in caption, (name, caption)
            assert caption.startswith(f"{row.name} · {row.class_name} · "), caption
            assert f"Σ {short(row.params.inside)} params" in caption, caption
            assert caption.endswith(count(len(row.nodes or ()), "call")), caption
            box = next(r for r in frame.iter(f"{SVG}rect") if r.get("class") == "fbox")
            assert int(box.get("width") or 0) >= title_width(caption), (name, caption)


def test_an_edge_enters_every_open_frame_from_each_of_its_calls(
    reports: dict[str, Report],
) -> None:
    """A frame's calls feed its body: one edge per call into each input of the body."""
    for name, report in reports.items():
        root = _parse(to_svg(report, expanded=True))
        for frame in [f for f in _classed(root, "frame") if f.get("data-p")]:
            path = frame.get("data-p") or ""
            row = report.layer(path)
            (feeds,) = [g for g in frame if g.get("class") == "feeds"]
            edges = [p for p in feeds if "e" in (p.get("class") or "").split()]
            assert edges, (name, path)
            sources = {"".join(e.itertext()).split(" input → ")[0] for e in edges}
            assert sources == {f"{path} #{node.index}" for node in row.nodes or ()}, name
            inputs = {"".join(e.itertext()).split(" input → ")[1] for e in edges}
            for target in inputs:  # a layer of the frame, with no input inside the frame
                layer = report.layer(target.split(" #")[0])
                assert layer.parent == path, (name, target)
                calls = [n for n in layer.nodes or () if f"{layer.path} #{n.index}" == target]
                refs = [ref.layer for n in calls for ref in n.inbound]
                assert not [r for r in refs if r.startswith(path + "/")], (name, target)


def _inside(report: Report, path: str) -> set[str]:
    """The paths strictly inside ``path`` (Report.subtree without the row itself)."""
    return {row.path for row in report.subtree(path)} - {path}


def test_boxes_inside_a_shared_tower_carry_its_group_colour(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        root = _parse(to_svg(report, expanded=True))
        legend = {g.get("data-g"): g.find(f"{SVG}rect") for g in _classed(root, "legend")}
        colours = {label: rect.get("fill") for label, rect in legend.items() if rect is not None}
        expected: dict[str, set[str]] = {}
        for n, group in enumerate(report.groups):
            if group.kind.value in ("shared-model", "shared-layer"):
                for path in group.layers:
                    for inner in _inside(report, path):
                        expected.setdefault(inner, set()).add(f"G{n + 1}")
        boxes = _classed(root, "call") + _classed(root, "chip")
        for box in boxes:
            path = box.get("data-p") or ""
            labels = set((box.get("data-gi") or "").split())
            assert labels == expected.get(path, set()), (name, path)
            rect = next(r for r in box.iter(f"{SVG}rect") if r.get("class") == "box")
            if labels:
                assert rect.get("stroke") in {colours[label] for label in labels}, (name, path)
                assert rect.get("stroke-width") == "2", (name, path)
        if name == "siamese_tower":  # the model: every inner box is marked
            (group,) = report.groups
            inner = _inside(report, group.layers[0])
            marked = {b.get("data-p") for b in boxes if b.get("data-gi") == "G1"}
            assert inner and marked == inner


def tied_model() -> keras.Model:
    """Three Dense layers of one shape, the last two tied to the first with ``tie_weights``;
    one of them inside a nested model."""
    x = keras.Input((8,), name="x")
    inner_in = keras.Input((8,), name="inner_in")
    inner_dense = layers.Dense(8, name="inner_dense")
    block = keras.Model(inner_in, inner_dense(inner_in), name="block")
    first, last = layers.Dense(8, name="first"), layers.Dense(8, name="last")
    model = keras.Model(x, last(block(first(x))), name="tied")
    weighttie.tie_weights(first, last, keep="source")
    weighttie.tie_weights(first, inner_dense, keep="source")
    return model


def _connected(pairs: set[frozenset[str]], nodes: set[str]) -> bool:
    """Whether ``pairs`` (edges) join all of ``nodes``."""
    start = next(iter(nodes))
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        for pair in pairs:
            if node in pair:
                for other in pair - seen:
                    seen.add(other)
                    stack.append(other)
    return nodes <= seen


def test_tie_edges_link_tied_layers_in_the_group_colour() -> None:
    report = weighttie.analyze(tied_model())
    assert report.ties  # the model really is tied
    for expanded in (True, False):
        root = _parse(to_svg(report, expanded=expanded))
        legend = {g.get("data-g"): g.find(f"{SVG}rect") for g in _classed(root, "legend")}
        colours = {label: rect.get("fill") for label, rect in legend.items() if rect is not None}
        ties = [p for p in _classed(root, "tie", "path") if p.get("data-ta")]
        drawn = {frozenset((p.get("data-ta"), p.get("data-tb"))) for p in ties}
        declared = {frozenset((t.source, t.target)) for t in report.ties}
        assert declared <= drawn
        tied = [set(g.layers) for g in report.groups if g.kind.value == "tied"]
        assert tied and all(_connected(drawn, layers) for layers in tied)
        assert all(pair in declared or any(pair <= t for t in tied) for pair in drawn)
        for path in ties:
            label = path.get("data-g")
            n = int((label or "G0")[1:]) - 1
            assert report.groups[n].kind.value == "tied"
            assert path.get("stroke") == colours[label]
            assert {path.get("data-ta"), path.get("data-tb")} <= set(report.groups[n].layers)
            if path.get("display") != "none":
                assert (path.get("d") or "").startswith("M")
        # closed, the nested layer's tie ends at its frame, still drawn
        assert all(p.get("display") != "none" for p in ties), expanded
        assert _classed(root, "legend-tie"), expanded
    page = to_html(report)
    assert 'class="tie-key"' in page


def test_an_untied_model_draws_no_tie_edges(reports: dict[str, Report]) -> None:
    for name in ("siamese_tower", "nested_twice"):
        root = _parse(to_svg(reports[name]))
        assert _classed(root, "tie", "path") == [], name
        assert "tie-key" not in to_html(reports[name]), name


def gpt2_tiny() -> keras.Model:
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=1000,
        num_layers=12,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=64,
    )


@pytest.fixture(scope="module")
def gpt2() -> Report:
    return weighttie.analyze(gpt2_tiny())


def test_gpt2_transformer_layers_fold_into_one_box(gpt2: Report) -> None:
    """The chain of identical TransformerDecoder blocks is one closed ×N fold."""
    blocks = sorted(
        (r for r in gpt2.layers if r.parent == "" and r.class_name == "TransformerDecoder"),
        key=lambda r: r.order,
    )
    assert len(blocks) > 2
    root = _parse(to_svg(gpt2))
    (fold,) = _classed(root, "fold")
    assert fold.get("data-fold") == str(len(blocks))
    assert fold.get("data-first") == blocks[0].path
    assert fold.get("data-last") == blocks[-1].path
    assert fold.get("data-open") == "0"
    (box,) = _classed(fold, "foldbox")
    lines = [_text(t) for t in box if t.tag == f"{SVG}text"]
    assert lines[0] == f"×{len(blocks)} TransformerDecoder"
    inside = [f.get("data-p") for f in _classed(fold, "frame") if f.get("data-p")]
    assert sorted(inside) == sorted(b.path for b in blocks)
    # the fold is an item of the model's graph: edges enter it and leave it
    root_content = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "content root")
    edges = [p for p in root_content.find(f"{SVG}g") or [] if p.tag == f"{SVG}path"]
    titles = ["".join(p.itertext()) for p in edges]
    assert any(t.split(" → ")[1].startswith(blocks[0].path + " #") for t in titles)
    assert any(t.startswith(blocks[-1].path + " #") for t in titles)
    assert any(p.get("data-s") == fold.get("data-n") for p in edges)  # leaves the fold
    # the fold's title is whole, and its box wide enough
    (title,) = [t for t in fold if t.tag == f"{SVG}text"]
    caption = "".join(t.text or "" for t in title if t.get("class") == "cap")
    assert "…" in caption and caption.startswith(f"×{len(blocks)} TransformerDecoder")
    from weighttie.picture.drawing import title_width
    from weighttie.text import short

    params = sum(b.params.inside for b in blocks)
    assert caption.endswith(f"Σ {short(params)} params ({_bytes(gpt2, blocks)})")
    fbox = next(r for r in fold if r.get("class") == "fbox")
    assert int(fbox.get("width") or 0) >= title_width(caption)


def _bytes(report: Report, blocks: list) -> str:
    from weighttie.text import byte_size

    return byte_size(sum(b.bytes.held or 0 for r in blocks for b in report.subtree(r.path)))


def test_a_fold_opens_fully_when_expanded(gpt2: Report) -> None:
    root = _parse(to_svg(gpt2, expanded=True))
    (fold,) = _classed(root, "fold")
    assert fold.get("data-open") == "1"
    calls = sum(len(r.nodes or ()) for r in gpt2.layers)
    assert len(_classed(root, "call")) == calls  # every call is still drawn, inside the fold


def _block_chain(count: int) -> keras.Model:
    """``count`` nested models of the same structure in a chain, then one of another."""
    x = keras.Input((6,), name="x")
    h = x
    for k in range(count):
        inner = keras.Input((6,))
        block = keras.Model(inner, layers.Dense(6)(layers.Dense(6)(inner)), name=f"block_{k}")
        h = block(h)
    other_in = keras.Input((6,))
    other = keras.Model(other_in, layers.Dense(6)(other_in), name="other")
    return keras.Model(x, other(h), name="chain")


def test_short_chains_and_different_blocks_do_not_fold() -> None:
    from weighttie.picture.layout import FOLD_MIN

    long = weighttie.analyze(_block_chain(FOLD_MIN + 1))
    (fold,) = _classed(_parse(to_svg(long)), "fold")
    assert fold.get("data-fold") == str(FOLD_MIN + 1)  # "other" differs: not in the run
    short = weighttie.analyze(_block_chain(FOLD_MIN - 1))
    assert _classed(_parse(to_svg(short)), "fold") == []
