"""Human output, compared in full against golden files (pytest --update-golden rewrites them)."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET

import pytest

import weighttie
from support import zoo
from weighttie.render import render, render_check, render_diff
from weighttie.spec import Spec, check, diff, snapshot

GOLDEN_MODELS = [
    "siamese_lstm",
    "siamese_tower",
    "nested_twice",
    "tied_embeddings",
    "subclassed",
    "cloned_tower",  # findings
]


@pytest.mark.parametrize("name", GOLDEN_MODELS)
@pytest.mark.parametrize(("fmt", "suffix"), [("table", "txt"), ("markdown", "md")])
def test_human_output_matches_golden(name: str, fmt: str, suffix: str, golden) -> None:
    report = weighttie.analyze(zoo.ZOO[name]())
    golden(f"{name}.{suffix}", weighttie.render(report, fmt))


def test_json_format_is_the_report_json() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    assert weighttie.render(report, "json") == report.to_json()


def test_unknown_format_is_rejected() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    with pytest.raises(ValueError, match="yaml"):
        weighttie.render(report, "yaml")


def test_render_never_shows_a_model_without_groups_as_shared() -> None:
    text = weighttie.render(weighttie.analyze(zoo.twin_towers()))
    assert "No weights are shared." in text
    assert "0 sharing groups" in text


# -- check results and diffs ------------------------------------------------------------


@pytest.fixture(scope="module")
def twins_against_the_siamese_spec() -> tuple[weighttie.Report, list]:
    """The twin-tower variant checked against the siamese tower's snapshot: 6 violations."""
    spec = Spec.from_dict(tomllib.loads(snapshot(weighttie.analyze(zoo.siamese_tower()))))
    report = weighttie.analyze(zoo.twin_towers())
    return report, check(report, spec)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("text", "check_twin_towers.txt"),
        ("json", "check_twin_towers.json"),
        ("junit", "check_twin_towers.junit.xml"),
    ],
)
def test_check_output_matches_golden(
    fmt: str, name: str, twins_against_the_siamese_spec, golden
) -> None:
    report, results = twins_against_the_siamese_spec
    golden(name, render_check(report, results, "weighttie.toml", fmt))


def test_check_formats_agree(twins_against_the_siamese_spec) -> None:
    report, results = twins_against_the_siamese_spec
    text = render_check(report, results, "weighttie.toml")
    doc = json.loads(render_check(report, results, "weighttie.toml", "json"))
    suite = ET.fromstring(render_check(report, results, "weighttie.toml", "junit"))
    failed = [r for r in doc["results"] if not r["passed"]]
    assert [f"FAIL {r['name']}: {r['failure']}" for r in failed] == text.splitlines()[:-1]
    assert text.splitlines()[-1] == "6 passed, 6 failed ('twin_towers' against weighttie.toml)"
    assert suite.get("tests") == str(len(doc["results"])) and suite.get("failures") == "6"


def test_a_passing_check_is_one_line() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    results = check(report, Spec.from_dict(tomllib.loads(snapshot(report))))
    assert render_check(report, results, "weighttie.toml") == (
        "12 passed, 0 failed ('siamese_tower' against weighttie.toml)\n"
    )


def test_diff_output_matches_golden(golden) -> None:
    changes = diff(weighttie.analyze(zoo.siamese_tower()), weighttie.analyze(zoo.twin_towers()))
    golden("diff_siamese_tower_twin_towers.txt", render_diff(changes))
    golden("diff_siamese_tower_twin_towers.json", render_diff(changes, "json"))


def test_diff_of_a_report_with_itself() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    assert render_diff(diff(report, report)) == (
        "No differences in layers, sharing groups, ties, findings, counts or cost.\n"
    )
    assert json.loads(render_diff(diff(report, report), "json"))["same"] is True


def test_unknown_check_and_diff_formats_are_rejected() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    with pytest.raises(ValueError, match="'xml' is not a valid CheckFormat"):
        render_check(report, [], "weighttie.toml", "xml")
    with pytest.raises(ValueError, match="'junit' is not a valid DiffFormat"):
        render_diff(diff(report, report), "junit")


def test_container_rows_show_what_is_inside_marked_and_the_columns_say_what_they_count() -> None:
    """A nested model's row showed Params 0 beside its inner rows; it shows Σ now, and a
    legend says what #i, Runs and Params read mean (they needed the docs)."""
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    tower = report.layer("tower")
    assert tower.params.held == 0
    assert tower.params.inside == model.get_layer("tower").count_params()
    text = render(report)
    row = next(line for line in text.splitlines() if line.startswith("tower "))
    assert f"Σ {tower.params.inside:,}" in row
    assert "#i: i-th call in its model's graph · Runs: per forward pass" in text
    assert "Σ: held inside, counted on the rows below" in text
    assert "Shared by" in text and "2 calls" in text
    # totals never add the Σ: rows' own held params sum to the unique count
    assert sum(r.params.unique for r in report.layers) == report.params.unique
