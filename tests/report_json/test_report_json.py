"""The Report data model and its JSON contract (weighttie.report/3; /2 and /1 still read)."""

from __future__ import annotations

import dataclasses
import json

import pytest

import weighttie
from support import REPO, zoo
from weighttie import Report, ReportFormatError


@pytest.mark.parametrize("name", ["siamese_lstm", "nested_twice", "subclassed", "tied_embeddings"])
def test_report_round_trips_through_json(name: str) -> None:
    report = weighttie.analyze(zoo.ZOO[name]())
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.to_json() == report.to_json()


def test_json_has_the_documented_keys() -> None:
    doc = json.loads(weighttie.analyze(zoo.siamese_lstm()).to_json())
    assert doc["schema"] == "weighttie.report/3"
    assert list(doc) == [
        "schema",
        "model",
        "params",
        "cost",
        "layers",
        "variables",
        "groups",
        "ties",
        "findings",
    ]
    assert set(doc["params"]) == {
        "unique",
        "per_use",
        "duplicated",
        "trainable_unique",
        "non_trainable_unique",
    }
    lstm = next(row for row in doc["layers"] if row["path"] == "lstm")
    assert list(lstm) == [
        "name",
        "path",
        "parent",
        "order",
        "class",
        "uses",
        "params",
        "bytes",
        "macs",
        "variables",
        "nodes",
    ]
    assert lstm["nodes"][1] == {
        "index": 1,
        "inbound": [["right", 0, 0]],
        "input_shapes": [[None, None, 6]],
        "output_shapes": [[None, 8]],
        "macs": None,
    }
    assert set(lstm["bytes"]) == {"held", "unique", "per_use"}
    assert doc["cost"] == {
        "bytes": {"unique": doc["cost"]["bytes"]["unique"], "per_use": 3908},
        "macs": 16,
        "uncounted": 1,
    }
    variable = doc["variables"][0]
    assert set(variable) == {
        "path",
        "name",
        "shape",
        "dtype",
        "trainable",
        "size",
        "layers",
        "read_by",
        "uses",
        "bytes",
    }
    group = doc["groups"][0]
    assert set(group) == {"kind", "layers", "variables", "params", "calls", "duplicated", "bytes"}
    assert set(group["bytes"]) == {"unique", "per_use"}
    assert group["kind"] == "shared-layer"


def test_same_model_gives_the_same_bytes() -> None:
    assert (
        weighttie.analyze(zoo.multi_io()).to_json() == weighttie.analyze(zoo.multi_io()).to_json()
    )


def test_report_is_frozen() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.params = None  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema": "other/2"}', "schema='other/2'"),
        ('{"schema": "weighttie.report/1"}', "KeyError"),
        ('{"schema": "weighttie.report/2"}', "does not follow weighttie.report/2: KeyError"),
        ('{"schema": "weighttie.report/3"}', "does not follow weighttie.report/3: KeyError"),
        (
            '{"schema": "weighttie.report/4"}',
            "'weighttie.report/3' \\(or 'weighttie.report/2', 'weighttie.report/1'\\)",
        ),
        ("[" * 100_000, "nests arrays or objects too deeply"),
        (b'{"schema": "\xff"}', "not valid JSON: 'utf-8' codec can't decode"),
    ],
)
def test_bad_report_documents_are_clear_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(ReportFormatError, match=message):
        Report.from_json(text)


def test_wrongly_typed_fields_are_rejected() -> None:
    doc = weighttie.analyze(zoo.siamese_lstm()).to_dict()
    doc["layers"][0]["nodes"][0]["output_shapes"] = [["a"]]
    with pytest.raises(ReportFormatError, match="shape dimension"):
        Report.from_dict(doc)
    doc = weighttie.analyze(zoo.siamese_lstm()).to_dict()
    doc["params"]["unique"] = "12"
    with pytest.raises(ReportFormatError, match="expected an integer"):
        Report.from_dict(doc)
    doc = weighttie.analyze(zoo.siamese_lstm()).to_dict()
    doc["model"]["file"] = ["m.keras"]
    with pytest.raises(ReportFormatError, match="expected a string, got"):
        Report.from_dict(doc)


def test_json_is_printable_and_exact_for_any_name() -> None:
    """json escapes C0 controls itself; DEL, C1, bidi overrides and lone surrogates are ours."""
    doc = weighttie.analyze(zoo.siamese_lstm()).to_dict()
    doc["model"]["name"] = "m\x1b[2J\x7f\x9b\u202e\u2028\ud800 é中"
    report = Report.from_dict(doc)
    text = report.to_json()
    assert '"name": "m\\u001b[2J\\u007f\\u009b\\u202e\\u2028\\ud800 é中"' in text
    assert Report.from_json(text) == report
    assert Report.from_json(text.encode("utf-8")) == report


def test_the_documented_example_is_what_the_zoo_model_gives() -> None:
    """docs/json-contract.md shows siamese_lstm's report, trimmed: keep it true."""

    text = (REPO / "docs" / "json-contract.md").read_text()
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    actual = weighttie.analyze(zoo.siamese_lstm()).to_dict()
    assert example["schema"] == actual["schema"]
    assert example["params"] == actual["params"]
    assert example["cost"] == actual["cost"]
    assert example["groups"] == actual["groups"]
    documented_lstm = example["layers"][0]
    assert documented_lstm == next(r for r in actual["layers"] if r["path"] == "lstm")
    documented_kernel = example["variables"][0]
    assert documented_kernel in actual["variables"]


def test_order_is_model_order_and_reports_without_it_read_in_path_order() -> None:
    """The table lists layers as the model does; older JSON still reads."""
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    by_order = [row.path for row in sorted(report.layers, key=lambda r: r.order)]
    top_level = [p for p in by_order if "/" not in p]
    assert top_level == [layer.name for layer in model.layers]
    tower = model.get_layer("tower")
    assert [p for p in by_order if p.startswith("tower/")] == [
        f"tower/{layer.name}" for layer in tower.layers
    ]
    assert by_order.index("tower") < by_order.index("tower/" + tower.layers[0].name)
    doc = json.loads(report.to_json())
    for row in doc["layers"]:
        del row["order"]
    old = Report.from_dict(doc)
    assert [row.order for row in old.layers] == list(range(len(old.layers)))


@pytest.mark.parametrize("source", list(weighttie.Source))
def test_every_source_round_trips_and_an_unknown_one_is_refused(source: weighttie.Source) -> None:
    """``traced`` (--load without weight values) is read back as Source.TRACED, like the rest."""
    report = weighttie.analyze(zoo.siamese_lstm())
    report = dataclasses.replace(report, model=dataclasses.replace(report.model, source=source))
    doc = json.loads(report.to_json())
    assert doc["model"]["source"] == source.value
    again = Report.from_json(report.to_json())
    assert again.model.source is source and again == report
    doc["model"]["source"] = "guessed"
    with pytest.raises(ReportFormatError, match="guessed"):
        Report.from_dict(doc)
