"""Cost per use: bytes and MACs in the Report, the JSON, the table, specs.

Each class's MAC rule is checked against TensorFlow's profiler in tests/layers/
(its family's file); here: bytes against the variables' own ``nbytes``, live
against static, the counting rules (sublayers counted once, a tower once per
call, unknown in → unknown out), reading /1 reports, and the spec budgets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from support import zoo
from support.cli_run import run
from weighttie.build import build_report
from weighttie.dtypes import variable_bytes
from weighttie.facts import ModelFacts, RawLayer, RawVariable
from weighttie.render import render
from weighttie.report import CallNode, ModelInfo, Report, Source
from weighttie.spec import Spec, check, snapshot
from weighttie.static import read_report
from weighttie.testing import assert_cost
from weighttie.text import byte_size, cost_line


def _by_path(report: Report) -> dict[str, object]:
    return {v.path: v for v in report.variables}


# -- bytes ------------------------------------------------------------------------------


def mixed_dtypes() -> keras.Model:
    """Variables of five dtypes: float16/bfloat16/float64 layers, BatchNormalization, an int
    counter (Normalization's ``count``), so bytes differ from 4 × params."""
    keras.utils.set_random_seed(3)
    x = keras.Input((6,), name="x")
    norm = layers.Normalization(name="norm")
    norm.adapt(np.arange(24, dtype="float32").reshape(4, 6))
    h = norm(x)
    h = layers.Dense(5, dtype="float16", name="half")(h)
    h = layers.Dense(4, dtype="bfloat16", name="brain")(h)
    h = layers.Dense(3, dtype="float64", name="double")(h)
    h = layers.BatchNormalization(name="bn")(h)
    return keras.Model(x, h, name="mixed_dtypes")


def time_distributed() -> keras.Model:
    """TimeDistributed over a Conv2D, a Flatten and a Dense: the wrapped layers are sublayers
    without calls, costed in the wrapper's call."""
    keras.utils.set_random_seed(4)
    x = keras.Input((4, 10, 10, 3), name="frames")
    h = layers.TimeDistributed(layers.Conv2D(5, 3), name="conv")(x)
    h = layers.TimeDistributed(layers.Flatten(), name="flat")(h)
    h = layers.TimeDistributed(layers.Dense(7), name="dense")(h)
    return keras.Model(x, h, name="time_distributed")


MODELS = {
    "time_distributed": time_distributed,
    "mixed_dtypes": mixed_dtypes,
    "siamese_tower": zoo.siamese_tower,
    "siamese_lstm": zoo.siamese_lstm,
    "nested_twice": zoo.nested_twice,
    "tied_embeddings": zoo.tied_embeddings,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_variable_bytes_are_the_variables_own_nbytes(name: str) -> None:
    model = MODELS[name]()
    report = weighttie.analyze(model)
    nbytes = {}
    for layer in [model, *model._flatten_layers(include_self=False)]:
        for v in layer.weights:
            nbytes[id(v)] = keras.ops.convert_to_numpy(v).nbytes
    assert sorted(v.bytes for v in report.variables) == sorted(nbytes.values())  # type: ignore[misc]
    assert report.cost.bytes.unique == sum(nbytes.values())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bytes_add_up_like_params(name: str) -> None:
    """Rows sum to the totals; per use = Σ bytes × uses; a group's bytes are its variables'."""
    report = weighttie.analyze(MODELS[name]())
    b = report.cost.bytes
    assert b.unique == sum(v.bytes for v in report.variables)  # type: ignore[misc]
    assert b.per_use == sum(v.bytes * v.uses for v in report.variables)  # type: ignore[operator]
    assert b.unique == sum(row.bytes.unique for row in report.layers)  # type: ignore[misc]
    assert b.per_use == sum(row.bytes.per_use for row in report.layers)  # type: ignore[misc]
    for row in report.layers:
        held = sum(_by_path(report)[p].bytes for p in row.variables)  # type: ignore[attr-defined]
        assert row.bytes.held == held
        assert row.bytes.per_use == held * row.uses
    variables = _by_path(report)
    for g in report.groups:
        members = [variables[p] for p in g.variables]
        assert g.bytes.unique == sum(v.bytes for v in members)  # type: ignore[attr-defined]
        assert g.bytes.per_use == sum(v.bytes * v.uses for v in members)  # type: ignore[attr-defined]


def test_a_tied_weight_is_stored_once_and_read_at_every_use() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    tower = report.groups[0]
    assert tower.bytes.per_use == 2 * tower.bytes.unique  # type: ignore[operator]
    assert report.cost.bytes.per_use - report.cost.bytes.unique == tower.bytes.unique  # type: ignore[operator]


def _facts(dtype: str, nodes: tuple[CallNode, ...] | None = None) -> ModelFacts:
    node = CallNode(0, (), ((None, 2),), ((None, 3),))
    nodes = nodes or (node, node)
    return ModelFacts(
        model=ModelInfo("m", "Functional", Source.STATIC),
        layers=[
            RawLayer("", "m", "Functional", None, "m", True, None, (), runs=1),
            RawLayer("d", "d", "Dense", "", "d", False, nodes, ("k", "b"), runs=len(nodes)),
        ],
        variables=[
            RawVariable("k", "kernel", (2, 3), dtype, True),
            RawVariable("b", "bias", (3,), "float32", True),
        ],
    )


def test_an_unknown_dtype_width_is_unknown_bytes_never_guessed() -> None:
    report = build_report(_facts("string"))
    kernel = report.variable("d/kernel")
    assert kernel.bytes is None and report.variable("d/bias").bytes == 12
    assert report.layer("d").bytes.held is None and report.layer("d").bytes.per_use is None
    assert report.cost.bytes.unique is None and report.cost.bytes.per_use is None
    assert report.cost.macs == 2 * 6  # MACs do not need the width
    assert "bytes unknown" in render(report)


@pytest.mark.parametrize(
    "dtype", ["float16", "bfloat16", "float32", "float64", "int8", "int64", "<f4", "|V2", ">i8"]
)
def test_dtype_widths_are_numpys(dtype: str) -> None:
    import ml_dtypes

    width = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).itemsize
    assert variable_bytes(7, dtype) == 7 * width


def test_dtype_docstring_examples() -> None:
    import doctest

    import weighttie.dtypes

    assert doctest.testmod(weighttie.dtypes).failed == 0


# -- MACs: counting rules -------------------------------------------------------------------


def test_a_shared_tower_counts_once_per_call() -> None:
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    tower = report.layer("tower")
    assert tower.nodes is not None
    per_call = {n.macs for n in tower.nodes}
    assert len(per_call) == 1
    (one,) = per_call
    inner = [r for r in report.layers if r.path.startswith("tower/")]
    assert one == sum(r.macs for r in inner) // 2  # type: ignore[misc]
    assert tower.macs == 2 * one
    score = report.layer("score").macs
    assert report.cost.macs == 2 * one + score  # type: ignore[operator]
    assert report.cost.uncounted == 0


def test_nested_towers_multiply_uses() -> None:
    model = zoo.nested_twice()
    report = weighttie.analyze(model)
    dense = report.layer("outer/inner/dense")
    kernel = model.get_layer("outer").get_layer("inner").get_layer("dense").kernel
    assert dense.uses == 4
    assert dense.macs == 4 * math.prod(kernel.shape)  # (None, 6) → (None, 3), four runs
    assert report.cost.macs == dense.macs


def test_sublayers_without_calls_are_counted_once_in_their_caller() -> None:
    """MultiHeadAttention's projections and an LSTM's cell have rows but no calls."""
    x = keras.Input((7, 12))
    h = layers.MultiHeadAttention(3, 4, name="mha")(x, x)
    h = layers.LSTM(5, name="lstm")(h)
    report = weighttie.analyze(keras.Model(x, h))
    mha, lstm = report.layer("mha"), report.layer("lstm")
    for sub in ("mha/query", "mha/key", "mha/value", "mha/attention_output", "lstm/lstm_cell"):
        assert report.layer(sub).nodes is None and report.layer(sub).macs is None
    assert report.cost.macs == mha.macs + lstm.macs  # type: ignore[operator]
    assert report.cost.uncounted == 0


def test_unknown_in_is_unknown_out() -> None:
    """Unknown node shapes in the facts: the row and the total say unknown (a call's
    own unknowns: tests/layers/test_core.py)."""
    unknown = (CallNode(0, (), (None,), (None,)),)
    report = build_report(_facts("float32", unknown))
    assert report.layer("d").macs is None and report.cost.macs is None
    assert report.cost.uncounted == 1


def test_custom_layers_are_not_guessed_and_the_total_says_how_many() -> None:
    report = weighttie.analyze(zoo.tied_embeddings())
    logits = report.layer("logits")
    assert logits.class_name == "TiedOutput" and logits.macs is None
    assert report.cost.uncounted == 1
    assert report.cost.macs == report.layer("mix").macs  # Embedding: a lookup, 0
    assert "at least 320 MACs per forward pass (1 layer not counted)" in render(report)


def test_subclassed_layers_outside_a_graph_are_uncounted() -> None:
    report = weighttie.analyze(zoo.subclassed())
    assert report.cost.macs is None
    assert report.cost.uncounted == 2  # two Dense; BatchNormalization counts 0 by convention


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"tied_embeddings"}))  # TiedOutput: no config
def test_static_cost_equals_live_cost(name: str, save) -> None:
    model = MODELS[name]()
    live = weighttie.analyze(model)
    static = read_report(save(model))
    assert static.cost == live.cost
    assert {r.path: r.macs for r in static.layers} == {r.path: r.macs for r in live.layers}
    # by value, not path: the static reader names Normalization's variables 0, 1, 2
    assert sorted(v.bytes for v in static.variables) == sorted(v.bytes for v in live.variables)  # type: ignore[type-var]


def _sequence_and_image(api: Any) -> Any:
    """One architecture in Keras 3 or tf_keras: recurrent, attention and conv rules at once."""
    L = api.layers
    x = api.Input((10, 8))
    h = L.LSTM(6, return_sequences=True)(x)
    h = L.Bidirectional(L.GRU(5, return_sequences=True))(h)
    h = L.MultiHeadAttention(2, 4)(h, h)
    h = L.SimpleRNN(3)(h)
    img = api.Input((12, 12, 3))
    c = L.Conv2D(4, 3)(img)
    c = L.DepthwiseConv2D(3, depth_multiplier=2)(c)
    c = L.SeparableConv2D(5, 3)(c)
    c = L.Conv2DTranspose(5, 3, strides=2)(c)
    c = L.GlobalAveragePooling2D()(c)
    out = L.Dense(2)(L.Concatenate()([h, c]))
    return api.Model([x, img], out)


def test_a_keras2_h5_read_statically_costs_what_keras3_counts_live(tmp_path: Path) -> None:
    """tf_keras files name variables ``kernel:0`` and hold an RNN's weights on its cell or on
    the layer itself; the rules read them the same (Keras 3 cannot load this file at all:
    LSTM's ``time_major``)."""
    k2 = pytest.importorskip("tf_keras")
    path = tmp_path / "k2.h5"
    _sequence_and_image(k2).save(path)
    static = read_report(path)
    live = weighttie.analyze(_sequence_and_image(keras))
    assert static.cost == live.cost and static.cost.uncounted == 0

    def by_class(report: Report) -> list[tuple[str, int | None]]:
        return sorted((r.class_name, r.macs) for r in report.layers if r.nodes is not None)

    assert by_class(static) == by_class(live)


# -- JSON, reading /1 -------------------------------------------------------------------


def test_cost_round_trips_through_json() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    again = Report.from_json(report.to_json())
    assert again == report
    assert again.cost == report.cost and again.layer("tower").nodes == report.layer("tower").nodes


def _as_schema_1(report: Report) -> dict[str, object]:
    """The document weighttie 0.x (``weighttie.report/1``) wrote: no cost anywhere."""
    doc = report.to_dict()
    doc["schema"] = "weighttie.report/1"
    del doc["cost"]
    for row in doc["layers"]:
        del row["bytes"], row["macs"]
        for node in row["nodes"] or ():
            del node["macs"]
    for v in doc["variables"]:
        del v["bytes"]
    for g in doc["groups"]:
        del g["bytes"]
    return doc


def test_a_schema_1_report_reads_with_cost_unknown(tmp_path: Path, capsys) -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    old = Report.from_dict(_as_schema_1(report))
    assert old.params == report.params and old.groups[0].layers == report.groups[0].layers
    assert old.cost.macs is None and old.cost.bytes.unique is None
    assert all(r.macs is None and r.bytes.held is None for r in old.layers)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_as_schema_1(report)))
    new = tmp_path / "new.json"
    new.write_text(report.to_json())

    code, out, err = run(capsys, "report", str(path))
    assert code == 0 and err == ""
    assert "Cost: MACs per forward pass unknown; bytes unknown" in out
    code, out, err = run(capsys, "snapshot", str(path))
    assert code == 0 and out == snapshot(report)  # a snapshot holds no cost
    code, out, err = run(capsys, "diff", str(path), str(new))
    assert (code, err) == (0, "")
    assert out == "No differences in layers, sharing groups, ties, findings, counts or cost.\n"
    spec = tmp_path / "spec.toml"
    spec.write_text("[cost]\nmax_macs = 1000000\nmax_bytes_unique = 1000000\n")
    code, out, err = run(capsys, "check", str(path), "--spec", str(spec))
    assert code == 1 and err == ""
    assert "FAIL cost.macs <= 1,000,000: unknown: no call's MACs are known" in out
    assert "FAIL cost.bytes.unique <= 1,000,000: unknown" in out


def test_a_report_of_another_schema_is_one_clear_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "future.json"
    path.write_text('{"schema": "weighttie.report/4"}')
    code, out, err = run(capsys, "report", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert (
        "expected a report with schema 'weighttie.report/3' "
        "(or 'weighttie.report/2', 'weighttie.report/1')"
    ) in err


# -- spec budgets -----------------------------------------------------------------------


def test_cost_budgets_pass_and_fail_with_the_numbers() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    macs, b = report.cost.macs, report.cost.bytes
    assert macs is not None and b.unique is not None and b.per_use is not None
    fits = Spec(
        cost={"max_macs": macs, "max_bytes_unique": b.unique, "max_bytes_per_use": b.per_use},
        forbid_findings=frozenset(),
    )
    assert [r.failure for r in check(report, fits)] == [None, None, None]
    tight = Spec(
        cost={"max_macs": macs - 1, "max_bytes_unique": b.unique - 1, "max_bytes_per_use": 1},
        forbid_findings=frozenset(),
    )
    assert [(r.name, r.failure) for r in check(report, tight)] == [
        (f"cost.macs <= {macs - 1:,}", f"found {macs:,}"),
        (f"cost.bytes.unique <= {b.unique - 1:,}", f"found {b.unique:,}"),
        ("cost.bytes.per_use <= 1", f"found {b.per_use:,}"),
    ]


def test_a_macs_budget_fails_while_layers_are_uncounted() -> None:
    report = weighttie.analyze(zoo.tied_embeddings())
    (result,) = check(report, Spec(cost={"max_macs": 10**12}, forbid_findings=frozenset()))
    assert result.failure == (
        "unknown: 320 counted, 1 layer not counted (calls of unknown MACs: "
        f"'logits' ({report.layer('logits').class_name}): no rule for the class, "
        "or a shape unknown)"
    )
    assert report.layer("logits").macs is None
    (result,) = check(report, Spec(cost={"max_macs": 100}, forbid_findings=frozenset()))
    assert result.failure == "found at least 320"


def test_cost_budgets_from_a_spec_file_on_the_command_line(tmp_path: Path, save, capsys) -> None:
    model = save(zoo.siamese_tower())
    macs = weighttie.analyze(zoo.siamese_tower()).cost.macs
    spec = tmp_path / "spec.toml"
    spec.write_text(f"[cost]\nmax_macs = {macs}\nmax_bytes_per_use = 1_000_000\n")
    code, out, _ = run(capsys, "check", str(model), "--spec", str(spec))
    assert code == 0 and out.startswith("7 passed, 0 failed")  # and 5 findings kinds
    spec.write_text("[cost]\nmax_macs = 1000\n")
    code, out, _ = run(capsys, "check", str(model), "--spec", str(spec))
    assert code == 1
    assert out.splitlines()[0] == f"FAIL cost.macs <= 1,000: found {macs:,}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cost]\nmax_flops = 3", "[cost] has unknown key 'max_flops'; use one of max_macs"),
        ("[cost]\nmax_macs = -3", "cost.max_macs must be a non-negative integer"),
        ("cost = 3", "[cost] must be a table"),
    ],
)
def test_bad_cost_budgets_are_one_clear_line(
    text: str, message: str, tmp_path: Path, save, capsys
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    code, out, err = run(capsys, "check", str(save(zoo.siamese_tower())), "--spec", str(spec))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert message in err


def test_assert_cost() -> None:
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    assert_cost(model, max_macs=report.cost.macs, max_bytes_unique=10**6)
    with pytest.raises(AssertionError, match=r"cost.bytes.per_use <= 10: found 1,412$"):
        assert_cost(model, max_bytes_per_use=10)


# -- the table ---------------------------------------------------------------------------


def test_the_summary_line_states_macs_and_bytes() -> None:
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    last = render(report).splitlines()[-1]
    unique = sum(keras.ops.convert_to_numpy(v).nbytes for v in model.weights)
    per_use = unique + sum(
        keras.ops.convert_to_numpy(v).nbytes for v in model.get_layer("tower").weights
    )
    assert (unique, per_use) == (740, 1412)  # so the line shows bytes below and above 1 kB
    assert (
        last == f"Cost: {report.cost.macs:,} MACs per forward pass; 740 B unique, 1.41 kB per use"
    )


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.00 kB"),
        (9994, "9.99 kB"),
        (9995, "10.0 kB"),
        (99_950, "100 kB"),
        (999_499, "999 kB"),
        (999_500, "1.00 MB"),
        (102_546_848, "103 MB"),
        (4_089_184_256, "4.09 GB"),
    ],
)
def test_bytes_are_shown_to_three_digits_in_decimal_units(n: int, text: str) -> None:
    from weighttie.text import _si

    assert _si(n, "B") == text


def test_the_html_page_shows_the_cost_line_and_a_macs_column() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    page = render(report, "html")
    assert f'<p class="sum">{cost_line(report)}</p>' in page
    assert ">MACs<" in page
    assert f'data-v="{report.layer("tower").macs}"' in page


def test_the_cost_line_shows_known_bytes_when_per_use_is_unknown(tmp_path: Path) -> None:
    """A keras_hub preset states no calls: per-use bytes are unknown, unique bytes are not."""
    pytest.importorskip("keras_hub")
    from support.hub_zoo import backbone_and_task

    _, task = backbone_and_task("gpt2")
    task.save_to_preset(str(tmp_path / "gpt2"))
    report = read_report(tmp_path / "gpt2")
    assert report.cost.bytes.per_use is None
    assert report.cost.bytes.unique == 4 * task.count_params()
    line = cost_line(report)
    assert line.endswith(f"; {byte_size(report.cost.bytes.unique)} unique, unknown per use")
    assert "bytes unknown" not in line
    for fmt in ("table", "markdown", "html"):
        assert f"{byte_size(report.cost.bytes.unique)} unique, unknown per use" in render(
            report, fmt
        )
