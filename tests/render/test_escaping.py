"""Names from a file cannot act on a terminal, a CI log, a Markdown page or an XML file.

Regression tests: a layer name could clear the screen, retitle the terminal, forge
a ``Params:`` line with a newline, inject HTML into a rendered Markdown summary, and
make ``snapshot`` and ``--graph`` write files that weighttie (or any XML parser)
could not read back. Every test here runs on a real Keras model
whose layers carry such names.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import keras
import networkx as nx
import pytest
from keras import layers

import weighttie
from support import zoo
from weighttie import Report
from weighttie.escape import from_xml_safe, markdown, printable, printable_json, to_xml_safe
from weighttie.render import render_check, render_diff
from weighttie.spec import Spec, SpecError, check, diff, load_spec, snapshot

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
FORGED_SUMMARY = "Params: 1 unique, 1 per use, 0 duplicated (trainable 1, non-trainable 0)"
SHARED = f"{CLEAR}shared*[0]\n{FORGED_SUMMARY}"
COPY_A = "copy|a_<img src=x onerror=alert(1)>"
COPY_B = "copy|b\x00`code`"
TIE_SOURCE = "# head\x1b[1m"
TIE_TARGET = "head~b~$x$\x9b2J"
LEFT = "left\r"
RIGHT = "right\u202eelif"
MERGE = "merge&amp;#1"
HOSTILE_NAMES = [SHARED, COPY_A, COPY_B, TIE_SOURCE, TIE_TARGET, LEFT, RIGHT, MERGE]

UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def hostile_model() -> keras.Model:
    """Every name is an attack: terminal escapes (clear screen, retitle, 8-bit CSI), a
    newline followed by a forged summary line, a carriage return, a bidi override, NUL,
    Markdown (| * _ ` [ ] ~ $ #) and HTML (<img onerror>, &amp;).

    One shared-layer group (the Dense called on both inputs), one declared tie, and
    one broken-tie finding (two Dense layers holding copied weights), so that names
    reach every table, the findings, checks, diffs and graph files.
    """
    keras.utils.set_random_seed(9)
    left = keras.Input((4,), name=LEFT)
    right = keras.Input((4,), name=RIGHT)
    shared = layers.Dense(3, name=SHARED)
    copy_a, copy_b = layers.Dense(2, name=COPY_A), layers.Dense(2, name=COPY_B)
    merged = layers.Concatenate(name=MERGE)([copy_a(shared(left)), copy_b(shared(right))])
    head_a, head_b = layers.Dense(2, name=TIE_SOURCE), layers.Dense(2, name=TIE_TARGET)
    out = layers.Add(name="out")([head_a(merged), head_b(merged)])
    model = keras.Model([left, right], out, name=f"model{TITLE}")
    copy_b.set_weights(copy_a.get_weights())
    weighttie.tie_weights(head_a, head_b, keep="source")
    return model


@pytest.fixture(scope="module")
def report() -> Report:
    """The hostile model's report, with a hostile file name and source as well."""
    analyzed = weighttie.analyze(hostile_model())
    model = dataclasses.replace(analyzed.model, file=f"evil{CLEAR}\n.keras", source="live")
    return dataclasses.replace(analyzed, model=model)


@pytest.fixture(scope="module")
def ordinary() -> Report:
    return weighttie.analyze(zoo.siamese_tower())


def failing_spec() -> Spec:
    """A spec that fails on hostile names: patterns, groups and findings all echo them."""
    return Spec.from_dict(
        {
            "params": {"unique": 1},
            "group": [{"kind": "tied", "layers": [LEFT, f"ghost{CLEAR}"]}],
            "not_shared": [{"layers": [TIE_SOURCE, TIE_TARGET]}],
        }
    )


def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal or log viewer could act on; line breaks between lines are ours."""
    return sorted({c for c in text if c != "\n" and unicodedata.category(c) in UNSAFE})


def test_the_model_really_carries_the_hostile_names(report: Report) -> None:
    paths = {row.path for row in report.layers}
    assert set(HOSTILE_NAMES) <= paths
    assert report.model.name == f"model{TITLE}"
    assert [g.layers for g in report.groups if g.kind.value == "shared-layer"] == [(SHARED,)]
    assert [(t.source, t.target, t.bound) for t in report.ties] == [(TIE_SOURCE, TIE_TARGET, True)]
    assert [(f.kind, f.layers) for f in report.findings] == [("broken-tie", (COPY_A, COPY_B))]


# -- human output: nothing raw, nothing forged --------------------------------------------


def human_outputs(report: Report, ordinary: Report) -> dict[str, str]:
    results = check(report, failing_spec())
    return {
        "table": weighttie.render(report, "table"),
        "markdown": weighttie.render(report, "markdown"),
        "check text": render_check(report, results, f"spec{CLEAR}.toml"),
        "junit": render_check(report, results, "spec.toml", "junit"),
        "diff text": render_diff(diff(ordinary, report)) + render_diff(diff(report, ordinary)),
    }


def test_no_raw_control_or_format_character_reaches_human_output(
    report: Report, ordinary: Report
) -> None:
    for name, text in human_outputs(report, ordinary).items():
        assert unsafe_characters(text) == [], name


def test_a_newline_in_a_name_cannot_forge_a_summary_line(report: Report, ordinary: Report) -> None:
    for name, text in human_outputs(report, ordinary).items():
        forged = [line for line in text.splitlines() if line.lstrip("*").startswith("Params: 1 ")]
        assert forged == [], name
    table = weighttie.render(report, "table")
    assert [line for line in table.splitlines() if line.startswith("Params: ")] == [
        "Params: 41 unique, 66 per use, 25 duplicated (trainable 41, non-trainable 0); "
        "2 sharing groups; source: live"
    ]


def test_every_name_shows_as_its_printable_escape(report: Report) -> None:
    table = weighttie.render(report, "table")
    for name in HOSTILE_NAMES:
        assert printable(name) in table
    assert "\\x1b[2Jshared*[0]\\nParams: 1 unique" in table
    assert table.startswith(
        "Model 'model\\x1b]0;pwned\\x07' (Functional) from evil\\x1b[2J\\n.keras\n"
    )


def test_human_output_of_hostile_names_matches_golden(
    report: Report, ordinary: Report, golden
) -> None:
    outputs = human_outputs(report, ordinary)
    golden("hostile_names.txt", outputs["table"])
    golden("hostile_names.md", outputs["markdown"])
    golden("hostile_names.check.txt", outputs["check text"])
    golden("hostile_names.junit.xml", outputs["junit"])
    golden("hostile_names.diff.txt", outputs["diff text"])


# -- Markdown: a name renders as text, never as markup or HTML ----------------------------


def test_markdown_renders_names_as_plain_text(report: Report) -> None:
    """Rendered by a real CommonMark parser (GFM tables on, raw HTML allowed)."""
    markdown_it = pytest.importorskip("markdown_it")
    source = weighttie.render(report, "markdown")
    tokens = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(source)
    inline = [child for t in tokens if t.children for child in t.children]
    html = {c.content for c in inline if c.type == "html_inline"} | {
        t.content for t in tokens if t.type == "html_block"
    }
    assert html == {"<br>"}  # the line breaks inside a cell are ours; nothing else is HTML
    markup = sorted({c.type for c in inline} - {"text", "html_inline", "softbreak"})
    assert markup == ["strong_close", "strong_open"]  # only the summary lines are bold
    headings = [_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings == [
        "Model 'model\\x1b]0;pwned\\x07' (Functional) from evil\\x1b[2J\\n.keras",
        "Sharing groups",
        "Declared ties",
        "Findings",
    ]
    rows = _table_rows(tokens)
    assert {len(row) for row in rows} <= {4, 6, 8}  # a | in a name adds no cell
    layer_cells = {row[0] for row in rows if len(row) == 8}
    assert {printable(name) for name in HOSTILE_NAMES} <= layer_cells


def _table_rows(tokens: list[Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for before, t in itertools.pairwise(tokens):
        if t.type == "tr_open":
            rows.append([])
        elif t.type == "inline" and before.type in ("th_open", "td_open"):
            rows[-1].append(_text(t))
    return rows


def _text(inline: Any) -> str:
    """What a reader sees of an inline token: its text, entities and escapes resolved."""
    return "".join(c.content for c in inline.children if c.type == "text")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tower/lstm_cell", "tower/lstm_cell"),
        ("dense_1", "dense_1"),
        ("tf.__operators__.add", "tf.\\_\\_operators\\_\\_.add"),
        ("_private", "\\_private"),
        ("a|b", "a\\|b"),
        ("*bold*", "\\*bold\\*"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("<script>&", "&lt;script&gt;&amp;"),
        ("`code`", "\\`code\\`"),
        ("~strike~", "\\~strike\\~"),
        ("$x$", "\\$x\\$"),
        ("a\\b", "a\\\\b"),
        ("# heading", "\\# heading"),
        ("- item", "\\- item"),
        ("1. item", "1\\. item"),
        ("a\x1b[2J", "a\\\\x1b\\[2J"),
        ("a\nb", "a\\\\nb"),
    ],
)
def test_markdown_escape(name: str, expected: str) -> None:
    assert markdown(name) == expected


# -- JSON: exact, and printable -----------------------------------------------------------


def test_json_report_is_exact_and_printable(report: Report) -> None:
    text = weighttie.render(report, "json")
    assert unsafe_characters(text) == []
    assert Report.from_json(text) == report
    assert Report.from_json(report.to_json(compact=True)) == report
    assert "model\\u001b]0;pwned\\u0007" in text  # json's own escapes
    assert "right\\u202eelif" in text and "head~b~$x$\\u009b2J" in text  # ours


def test_check_and_diff_json_are_exact(report: Report, ordinary: Report) -> None:
    results = check(report, failing_spec())
    doc = json.loads(render_check(report, results, "spec.toml", "json"))
    assert doc["model"] == report.model.name
    assert [r["name"] for r in doc["results"]] == [r.name for r in results]
    assert [r["failure"] for r in doc["results"]] == [r.failure for r in results]
    assert render_check(report, results, "spec.toml", "json").isascii()
    changes = json.loads(render_diff(diff(ordinary, report), "json"))
    assert changes["groups"]["added"][0]["layers"] == [SHARED]


def test_printable_json_keeps_the_document_and_escapes_what_json_leaves_raw() -> None:
    names = ["a\x7fb", "c\x9bd", "\u202e", "\u2028", "\ud800", "\U000e0001", "é中😀", "plain"]
    raw = json.dumps(names, ensure_ascii=False)
    text = printable_json(raw)
    assert json.loads(text) == names
    assert text == (
        '["a\\u007fb", "c\\u009bd", "\\u202e", "\\u2028", "\\ud800", "\\udb40\\udc01", '
        '"é中😀", "plain"]'
    )


# -- JUnit XML: well-formed whatever the names ---------------------------------------------


def test_junit_is_well_formed_and_names_each_case_printably(report: Report) -> None:
    results = check(report, failing_spec())
    suite = ET.fromstring(render_check(report, results, "spec.toml", "junit"))
    assert suite.get("name") == "weighttie model\\x1b]0;pwned\\x07"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [printable(r.name) for r in results]
    failures = [c.find("failure") for c in cases]
    assert [f.get("message") if f is not None else None for f in failures] == [
        printable(r.failure) if r.failure else None for r in results
    ]


# -- snapshot: the spec it writes is read back as it was ------------------------------------


def test_snapshot_of_hostile_names_loads_and_passes(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "weighttie.toml"
    path.write_text(snapshot(report), encoding="utf-8")
    spec = load_spec(path)
    results = check(report, spec)
    assert [r.failure for r in results if r.failure] == []
    # glob characters bracketed, so that each pattern matches its layer alone
    assert sorted(g.layers for g in spec.groups) == [
        ("\x1b[[]2Jshared[*][[]0]\n" + FORGED_SUMMARY,),
        ("# head\x1b[[]1m", TIE_TARGET),
    ]
    assert unsafe_characters(path.read_text(encoding="utf-8")) == []


def test_snapshot_globs_in_names_match_only_that_layer(tmp_path: Path) -> None:
    """A layer named ``a*`` next to ``ab``: the spec must name ``a*`` alone."""
    x = keras.Input((2,), name="x")
    star, plain = layers.Dense(2, name="a*"), layers.Dense(2, name="ab")
    model = keras.Model(x, layers.Add()([star(star(x)), plain(plain(x))]))
    report = weighttie.analyze(model)
    path = tmp_path / "weighttie.toml"
    path.write_text(snapshot(report), encoding="utf-8")
    assert 'layers = ["a[*]"]' in path.read_text()
    assert all(r.passed for r in check(report, load_spec(path)))


def test_snapshot_refuses_a_lone_surrogate_in_one_line(report: Report) -> None:
    doc = report.to_dict()
    doc["groups"][0]["layers"] = ["bad\ud800"]
    with pytest.raises(SpecError, match=r"lone surrogate \(U\+D800\), which TOML cannot"):
        snapshot(Report.from_dict(doc))


# -- graph files: well-formed and round-trippable ------------------------------------------


def test_graphml_of_hostile_names_parses_and_decodes_back(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "sharing.graphml"
    weighttie.write_graph(report, path)
    ET.parse(path)  # well-formed XML 1.0
    expected = weighttie.to_networkx(report)
    graph = nx.relabel_nodes(nx.read_graphml(path), from_xml_safe)
    assert graph.number_of_nodes() == expected.number_of_nodes()
    assert set(graph.nodes) == set(expected.nodes)
    assert set(graph.edges) == set(expected.edges)
    for node, attrs in expected.nodes(data=True):
        decoded = {
            k: from_xml_safe(v) if isinstance(v, str) else v for k, v in graph.nodes[node].items()
        }
        assert decoded == attrs, node
    assert from_xml_safe(graph.graph["name"]) == report.model.name


def test_node_link_json_of_hostile_names_is_exact(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "sharing.json"
    weighttie.write_graph(report, path)
    text = path.read_text(encoding="utf-8")
    assert text.isascii()
    graph = nx.node_link_graph(json.loads(text), edges="edges")
    expected = weighttie.to_networkx(report)
    assert dict(graph.nodes(data=True)) == dict(expected.nodes(data=True))
    assert set(graph.edges) == set(expected.edges)


def test_graph_files_carry_a_lone_surrogate(report: Report, tmp_path: Path) -> None:
    doc = report.to_dict()
    doc["model"]["name"] = "bad\ud800name"
    odd = Report.from_dict(doc)
    weighttie.write_graph(odd, tmp_path / "g.graphml")
    weighttie.write_graph(odd, tmp_path / "g.json")
    assert from_xml_safe(nx.read_graphml(tmp_path / "g.graphml").graph["name"]) == "bad\ud800name"
    assert json.loads((tmp_path / "g.json").read_text())["graph"]["name"] == "bad\ud800name"
    assert Report.from_json(odd.to_json()) == odd


def test_xml_safe_round_trips_every_code_point() -> None:
    everything = "".join(map(chr, range(0x110000)))
    encoded = to_xml_safe(everything)
    assert from_xml_safe(encoded) == everything
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", encoded)
    assert to_xml_safe("tower/conv2d_1:0 é中") == "tower/conv2d_1:0 é中"
    assert to_xml_safe("a\\u0000b\x00") == "a\\\\u0000b\\u0000"


def test_graph_path_errors_name_no_flag(report: Report, tmp_path: Path) -> None:
    with pytest.raises(
        weighttie.WeighttieError,
        match=r"^a graph file name must end in \.graphml or \.json; received: 'g\.png'$",
    ):
        weighttie.write_graph(report, tmp_path / "g.png")
