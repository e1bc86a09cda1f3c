"""Checks, assertions, snapshots and diffs of reports that cannot tell how often layers run.

A keras_hub preset (or a subclassed model's file) read statically states no calls:
its per-use counts are unknown. Unknown is a failure that says why, never a pass
(docs/ci.md): a check that depends on calls fails saying so, a snapshot claims
nothing it cannot know (so a check of the same file passes), and a diff does not
say "no differences" where it could not look. Ties stay known.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import keras
import pytest
from keras import layers

import weighttie
from support import zoo
from weighttie.build import build_report
from weighttie.cli import main
from weighttie.facts import ROOT
from weighttie.front_door import report_of
from weighttie.spec import Spec, check, diff, load_spec, snapshot
from weighttie.static import read_report
from weighttie.testing import (
    assert_cost,
    assert_matches_spec,
    assert_not_shared,
    assert_params,
    assert_shared,
    assert_tied,
)
from weighttie.walk import model_facts

keras_hub = pytest.importorskip("keras_hub")

from support.hub_zoo import backbone_and_task  # noqa: E402

EMBEDDING = "gpt2_backbone/token_embedding"
NOTE = "GPT2CausalLM's config holds constructor arguments"


def _stating_no_calls(model: keras.Model) -> weighttie.Report:
    """The model's report as a source that states no calls gives it (a graphless
    file): the static readers' rows, runs unknown below the model, and a
    layer object at two paths holding its variables at the first only (Keras saves
    them once)."""
    facts = model_facts(model)
    seen: set[object] = set()
    rows = []
    for row in facts.layers:
        if row.path != ROOT:
            again = row.identity in seen
            seen.add(row.identity)
            row = dataclasses.replace(
                row,
                nodes=None,
                runs=None,
                reads=None,
                variables=() if again else row.variables,
            )
        rows.append(row)
    return build_report(dataclasses.replace(facts, layers=rows))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GPT-2 and OPT task models saved as presets, and GPT-2 also as a .keras file."""
    directory = tmp_path_factory.mktemp("unknown_calls")
    found = {}
    for family in ("gpt2", "opt"):
        _, task = backbone_and_task(family)
        found[family] = directory / f"{family}_preset"
        task.save_to_preset(str(found[family]))
        if family == "gpt2":
            found["gpt2.keras"] = directory / "gpt2.keras"
            task.save(found["gpt2.keras"])
    return found


def test_the_preset_states_no_calls_and_loading_counts_them(files: dict[str, Path]) -> None:
    static = read_report(files["gpt2"])
    why = static.model.calls_note
    assert why is not None and why.startswith(NOTE) and "--load" in why
    assert static.groups == ()
    loaded = report_of(files["gpt2.keras"], load=True)
    assert loaded.model.calls_note is None
    (group,) = [g for g in loaded.groups if EMBEDDING in g.layers]
    assert (group.kind.value, group.calls) == ("shared-layer", 2)  # what the preset hides


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_human_output_never_says_no_weights_are_shared(files: dict[str, Path], fmt: str) -> None:
    text = weighttie.render(read_report(files["gpt2"]), fmt)
    assert "No weights are shared" not in text
    assert (
        "No two layers hold the same variables; calls are unknown (see the notes), so a layer "
        "or model called more than once, sharing its weights, cannot be seen."
    ) in text


# -- checks ----------------------------------------------------------------------------


def test_exact_groups_fails_as_unknown(files: dict[str, Path]) -> None:
    report = read_report(files["gpt2"])
    (result,) = check(report, Spec(exact_groups=True, forbid_findings=frozenset()))
    assert result.name == "no other sharing groups"
    assert result.failure is not None
    assert result.failure.startswith(
        "unknown: this static report cannot tell how often layers run, so a layer or model "
        "called more than once (sharing its weights) is not seen: " + NOTE
    )
    assert result.failure.endswith("(--load on a .keras file counts them through Keras)")


def test_not_shared_fails_as_unknown_for_a_layer_holding_weights(files: dict[str, Path]) -> None:
    report = read_report(files["gpt2"])
    spec = Spec.from_dict({"not_shared": [{"layers": [EMBEDDING]}], "findings": {"forbid": []}})
    (result,) = check(report, spec)
    assert result.failure is not None
    assert result.failure.startswith(
        f"unknown: this static report cannot tell how often layers run, so a layer of "
        f"[{EMBEDDING}] called more than once (sharing its weights) is not seen: {NOTE}"
    )
    # loaded, the same check fails for what it is: the embedding is called twice
    (loaded,) = check(report_of(files["gpt2.keras"], load=True), spec)
    assert loaded.failure is not None
    assert loaded.failure.startswith(f"[{EMBEDDING}] in shared-layer group [{EMBEDDING}, ")


def test_not_shared_holds_for_weightless_layers_whatever_their_calls(
    files: dict[str, Path],
) -> None:
    report = read_report(files["gpt2"])
    layers = ["gpt2_backbone/embeddings_add", "gpt2_backbone/embeddings_dropout"]
    spec = Spec.from_dict({"not_shared": [{"layers": layers}], "findings": {"forbid": []}})
    assert [r.failure for r in check(report, spec)] == [None]
    assert_not_shared(files["gpt2"], *layers)


def test_an_expected_shared_layer_group_is_unknown_not_absent(files: dict[str, Path]) -> None:
    report = read_report(files["gpt2"])
    spec = Spec.from_dict(
        {
            "group": [{"kind": "shared-layer", "layers": [EMBEDDING], "calls": 2}],
            "findings": {"forbid": []},
        }
    )
    (result,) = check(report, spec)
    assert result.failure is not None
    assert result.failure.startswith(
        "unknown: this static report cannot tell how often layers run, so a shared-layer "
        f"group is not seen: {NOTE}"
    )
    assert "share no weights" not in result.failure


@pytest.mark.parametrize(
    ("budget", "why"),
    [("max_macs", "its MACs are unknown"), ("max_bytes_per_use", "its per-use bytes are unknown")],
)
def test_call_dependent_budgets_say_calls_are_unknown(
    files: dict[str, Path], budget: str, why: str
) -> None:
    report = read_report(files["gpt2"])
    (result,) = check(report, Spec(cost={budget: 10**12}, forbid_findings=frozenset()))
    assert result.failure is not None
    assert result.failure.startswith(
        f"unknown: this static report cannot tell how often layers run, so {why}: {NOTE}"
    )
    with pytest.raises(AssertionError, match=why):
        assert_cost(files["gpt2"], **{budget: 10**12})
    assert_cost(files["gpt2"], max_bytes_unique=report.cost.bytes.unique)  # known: holds


def test_assert_not_shared_fails_saying_unknown(files: dict[str, Path]) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_not_shared(files["gpt2"], EMBEDDING)
    message = str(caught.value)
    assert message.startswith(f"expected no sharing among {EMBEDDING}; unknown: this static")
    assert NOTE in message and "--load" in message
    with pytest.raises(AssertionError, match="shared-layer group"):
        assert_not_shared(report_of(files["gpt2.keras"], load=True), EMBEDDING)


def test_assert_shared_fails_saying_unknown_not_unshared(files: dict[str, Path]) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_shared(files["gpt2"], EMBEDDING)
    message = str(caught.value)
    assert message.startswith(f"expected {EMBEDDING} to share weights; unknown: ")
    assert NOTE in message
    assert_shared(report_of(files["gpt2.keras"], load=True), EMBEDDING)


def test_assert_params_per_use_fails_saying_why(files: dict[str, Path]) -> None:
    with pytest.raises(AssertionError, match=r"params\.per_use <= 1,000,000: unknown: .*--load"):
        assert_params(files["gpt2"], max_per_use=10**6)
    assert_params(files["gpt2"], unique=read_report(files["gpt2"]).params.unique)


def test_ties_stay_known_when_calls_are_not() -> None:
    """A tied group is distinct layers holding one variable: no call needed to see it."""
    report = _stating_no_calls(zoo.tied_embeddings())
    assert report.model.calls_note is not None
    assert [g.kind.value for g in report.groups] == ["tied"]
    spec = Spec.from_dict(
        {
            "group": [{"kind": "tied", "layers": ["embedding", "logits"], "calls": 2}],
            "findings": {"forbid": []},
        }
    )
    assert [r.failure for r in check(report, spec)] == [None]
    assert_shared(report, "embedding", "logits")
    missing = Spec.from_dict(
        {"group": [{"kind": "tied", "layers": ["embedding", "mix"]}], "findings": {"forbid": []}}
    )
    (result,) = check(report, missing)
    assert result.failure == (
        "expected a tied group of [embedding, mix]; found tied group [embedding, logits]"
    )
    # the ties are listed, and so is what cannot be seen
    for fmt in ("table", "markdown", "html"):
        text = weighttie.render(report, fmt)
        assert "Only ties are listed: calls are unknown (see the notes)" in text, fmt
    # the snapshot keeps the tie and claims no exact groups; the report satisfies it
    text = snapshot(report)
    assert 'kind = "tied"' in text and "calls = 2" in text
    assert "exact_groups = true" not in text
    assert_matches_spec(report, Spec.from_dict(tomllib.loads(text)))


def test_assert_tied_works_when_calls_are_unknown() -> None:
    a, b = layers.LSTM(3, name="enc_a"), layers.LSTM(3, go_backwards=True, name="enc_b")
    x = keras.Input((5, 2), name="x")
    model = keras.Model(x, layers.Concatenate()([a(x), b(x)]))
    weighttie.tie_weights(a, b, variables=["kernel"], keep="source")
    report = _stating_no_calls(model)
    assert report.model.calls_note is not None
    assert_tied(report, "enc_a", "enc_b", variables=["kernel"])
    with pytest.raises(AssertionError, match="separate variables"):
        assert_tied(report, "enc_a", "enc_b")


# -- snapshot -> check ------------------------------------------------------------------


def test_snapshot_claims_nothing_unknown_and_the_same_file_passes_its_check(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "gpt2.toml"
    assert run(capsys, "snapshot", str(files["gpt2"]), "-o", str(spec))[0] == 0
    text = spec.read_text()
    assert "exact_groups = true" not in text
    assert "# exact_groups: unknown in this static report" in text
    assert "# per_use: unknown in this static report" in text
    assert load_spec(spec).exact_groups is False
    code, out, err = run(capsys, "check", str(files["gpt2"]), "--spec", str(spec))
    assert (code, err) == (0, ""), out
    assert out.startswith("8 passed, 0 failed")
    # a spec that claims exact groups fails on the preset, saying why
    spec.write_text("exact_groups = true\n" + text)
    code, out, _ = run(capsys, "check", str(files["gpt2"]), "--spec", str(spec))
    assert code == 1
    assert "FAIL no other sharing groups: unknown: this static report" in out
    assert "(--load on a .keras file counts them through Keras)" in out


def test_snapshot_of_a_loaded_model_still_claims_exact_groups(files: dict[str, Path]) -> None:
    text = snapshot(report_of(files["gpt2.keras"], load=True))
    assert "\nexact_groups = true\n" in text and "# exact_groups" not in text


# -- diff -------------------------------------------------------------------------------


def test_diff_of_presets_says_what_it_could_not_compare(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "diff", str(files["gpt2"]), str(files["opt"]))
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert "No differences in layers, sharing groups, ties, findings, counts or cost." not in out
    assert lines[0] == "No differences in what both reports know." or lines[0][0] in "~-+"
    assert (
        "? not compared: params.per_use, params.duplicated, shared-layer and shared-model "
        "groups, group calls and duplicated counts"
    ) in lines
    assert f"? A cannot tell how often its layers run: {NOTE}" in out
    assert "? B cannot tell how often its layers run: OPTCausalLM's config" in out


def test_diff_of_a_preset_with_itself_is_not_same(files: dict[str, Path]) -> None:
    report = read_report(files["gpt2"])
    result = diff(report, report)
    assert not result.differs and not result.same
    doc = result.to_dict()
    assert doc["same"] is False
    assert doc["not_compared"] == [
        "params.per_use",
        "params.duplicated",
        "shared-layer and shared-model groups",
        "group calls and duplicated counts",
    ]
    assert doc["calls_unknown"]["a"].startswith(NOTE) and doc["calls_unknown"]["b"] is not None


def test_diff_does_not_call_a_group_removed_when_the_other_side_cannot_see_it(
    files: dict[str, Path],
) -> None:
    loaded = report_of(files["gpt2.keras"], load=True)
    static = read_report(files["gpt2"])
    result = diff(loaded, static)
    assert result.removed == () and result.added == ()  # the shared embedding: not compared
    assert result.calls_unknown[0] is None and result.calls_unknown[1] is not None
    assert not result.same
    assert diff(loaded, loaded).same and diff(loaded, loaded).to_dict()["not_compared"] == []
