"""Human output, compared in full against golden files (pytest --update-golden rewrites them)."""

from __future__ import annotations

import pytest

import weighttie
import zoo

GOLDEN_MODELS = ["siamese_lstm", "siamese_tower", "nested_twice", "tied_embeddings", "subclassed"]


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
