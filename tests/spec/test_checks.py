"""Findings, weighttie.testing assertions, spec files, and check / snapshot / diff on the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from support import zoo
from support.cli_run import run
from weighttie.spec import Spec, SpecError, check, load_spec, snapshot
from weighttie.static import read_report
from weighttie.testing import (
    assert_matches_spec,
    assert_no_findings,
    assert_not_shared,
    assert_params,
    assert_shared,
    assert_tied,
)

# -- findings ---------------------------------------------------------------------------


def test_twin_towers_are_a_finding_worth_one_tower() -> None:
    model = zoo.twin_towers()
    (finding,) = weighttie.analyze(model).findings
    assert finding.kind == "twin-branches"
    assert finding.layers == ("tower_a", "tower_b")
    assert finding.params == model.get_layer("tower_a").count_params()
    assert "build the branch once and call it" in finding.message


def test_one_tower_called_twice_has_no_finding() -> None:
    assert weighttie.analyze(zoo.siamese_tower()).findings == ()


def test_branches_differing_in_one_config_value_are_not_twins() -> None:
    def tower(name: str, activation: str) -> keras.Model:
        x = keras.Input((6,), name=f"{name}_in")
        return keras.Model(
            x, layers.Dense(4, activation=activation, name=f"{name}_d")(x), name=name
        )

    a = keras.Input((6,), name="a")
    model = keras.Model(a, layers.Add()([tower("t1", "relu")(a), tower("t2", "tanh")(a)]))
    assert weighttie.analyze(model).findings == ()
    same = keras.Model(a, layers.Add()([tower("t3", "relu")(a), tower("t4", "relu")(a)]))
    assert [f.kind for f in weighttie.analyze(same).findings] == ["twin-branches"]


def test_copied_weights_are_a_broken_tie_and_constants_are_not() -> None:
    model = zoo.cloned_tower()
    report = weighttie.analyze(model)
    broken = [f for f in report.findings if f.kind == "broken-tie"]
    assert {f.layers for f in broken} == {
        ("tower/tower_conv", "tower_copy/tower_conv"),
        ("tower/tower_embed", "tower_copy/tower_embed"),
    }
    conv = model.get_layer("tower").get_layer("tower_conv")
    assert next(f for f in broken if "tower_conv" in f.layers[0]).params == conv.kernel.numpy().size
    # zero biases and unit gammas are equal everywhere at initialization: not evidence
    assert not any("bias" in f.message or "gamma" in f.message for f in broken)


def test_findings_can_be_switched_off() -> None:
    assert weighttie.analyze(zoo.twin_towers(), findings=False).findings == ()


def test_static_findings_equal_live_findings(save) -> None:
    for name in ("twin_towers", "cloned_tower"):
        model = zoo.ZOO[name]()
        assert (
            read_report(save(model, f"{name}.keras")).findings == weighttie.analyze(model).findings
        )


def test_tie_lost_in_plain_keras_reload_is_found(tmp_path: Path) -> None:
    from ties.test_ties import fit, same_valid_model

    model = same_valid_model()
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    plain = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    (finding,) = weighttie.analyze(plain).findings
    assert (finding.kind, finding.layers) == ("broken-tie", ("same", "valid"))
    assert finding.params == plain.get_layer("same").count_params()
    with pytest.raises(
        AssertionError,
        match="expected same and valid tied; found same/bias and valid/bias are separate",
    ):
        assert_tied(plain, "same", "valid")
    restored = weighttie.load_model(tmp_path / "m.keras")
    assert_tied(restored, "same", "valid")
    assert_no_findings(restored)


# -- assertions ---------------------------------------------------------------------


def test_assert_shared_and_not_shared() -> None:
    model = zoo.siamese_tower()
    assert_shared(model, "tower")
    assert_not_shared(model, "score", "left", "right")
    with pytest.raises(
        AssertionError, match="expected score to share weights; found no sharing group with score"
    ):
        assert_shared(model, "score")
    with pytest.raises(
        AssertionError,
        match=r"expected no sharing among tower; found \[tower\] in shared-model group",
    ):
        assert_not_shared(model, "tower")
    with pytest.raises(AssertionError, match="no layer of model 'siamese_tower' matches 'nope'"):
        assert_shared(model, "nope")


def test_assert_shared_with_globs_and_tied_groups() -> None:
    model = zoo.tied_embeddings()
    assert_shared(model, "embedding", "logits")
    assert_shared(model, "emb*", "log*")
    twins = zoo.twin_towers()
    assert_not_shared(twins, "tower_*")
    with pytest.raises(AssertionError, match="expected tower_a, tower_b to share weights"):
        assert_shared(twins, "tower_*")


def test_assert_tied_on_lstm_cells_and_subsets() -> None:
    a, b = layers.LSTM(3, name="enc_a"), layers.LSTM(3, go_backwards=True, name="enc_b")
    x = keras.Input((5, 2), name="x")
    model = keras.Model(x, layers.Concatenate()([a(x), b(x)]))
    with pytest.raises(AssertionError, match="separate variables"):
        assert_tied(model, "enc_a", "enc_b")
    weighttie.tie_weights(a, b, variables=["kernel"], keep="source")
    assert_tied(model, "enc_a", "enc_b", variables=["kernel"])
    with pytest.raises(
        AssertionError,
        match="enc_a/lstm_cell/recurrent_kernel and enc_b/lstm_cell/recurrent_kernel",
    ):
        assert_tied(model, "enc_a", "enc_b")
    with pytest.raises(AssertionError, match="neither enc_a nor enc_b has a variable 'gamma'"):
        assert_tied(model, "enc_a", "enc_b", variables=["gamma"])


def test_assert_params_exact_and_bounds() -> None:
    model = zoo.siamese_tower()
    tower = model.get_layer("tower").count_params()
    assert_params(model, unique=model.count_params(), duplicated=tower, max_unique=10**6)
    with pytest.raises(
        AssertionError, match=rf"params.unique <= 100: found {model.count_params()}"
    ):
        assert_params(model, max_unique=100)
    with pytest.raises(AssertionError, match=r"params.duplicated == 0: found"):
        assert_params(model, duplicated=0)


def test_assert_no_findings_by_kind() -> None:
    model = zoo.twin_towers()
    assert_no_findings(model, kinds=["broken-tie"])
    with pytest.raises(AssertionError, match=r"twin-branches \[tower_a, tower_b\]"):
        assert_no_findings(model)


def test_assertions_accept_files_and_reports(save) -> None:
    path = save(zoo.siamese_tower())
    assert_shared(path, "tower")
    assert_shared(str(path), "tower")
    assert_shared(read_report(path), "tower")


# -- specs -------------------------------------------------------------------------------


def test_snapshot_round_trips_and_catches_the_twin_variant(tmp_path: Path, save, capsys) -> None:
    good = save(zoo.siamese_tower(), "good.keras")
    bad = save(zoo.twin_towers(), "bad.keras")
    code, out, err = run(capsys, "snapshot", str(good), "-o", str(tmp_path / "spec.toml"))
    assert (code, out, err) == (0, "", "")
    assert_matches_spec(zoo.siamese_tower(), tmp_path / "spec.toml")

    code, out, _ = run(capsys, "check", str(good), "--spec", str(tmp_path / "spec.toml"))
    assert code == 0
    assert out.splitlines()[-1].startswith("12 passed, 0 failed")

    code, out, _ = run(capsys, "check", str(bad), "--spec", str(tmp_path / "spec.toml"))
    assert code == 1
    failures = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert "FAIL no twin-branches findings: [tower_a, tower_b]: tower_a and tower_b" in "\n".join(
        failures
    )
    assert "FAIL shared-model group [tower]: no layer matches 'tower'" in failures
    with pytest.raises(AssertionError, match="violates its spec"):
        assert_matches_spec(zoo.twin_towers(), tmp_path / "spec.toml")


def test_check_json_and_junit(tmp_path: Path, save, capsys) -> None:
    bad = save(zoo.twin_towers(), "bad.keras")
    (tmp_path / "spec.toml").write_text(
        'schema = "weighttie.spec/1"\n[params]\nmax_unique = 100\n'
        '[[group]]\nkind = "tied"\nlayers = ["score"]\n'
    )
    code, out, _ = run(
        capsys,
        "check",
        str(bad),
        "--spec",
        str(tmp_path / "spec.toml"),
        "-f",
        "json",
        "--junit",
        str(tmp_path / "junit.xml"),
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["passed"] is False
    names = [r["name"] for r in doc["results"]]
    assert names == [
        "params.unique <= 100",
        "tied group [score]",
        "no alias findings",
        "no broken-tie findings",
        "no missing-tied-tensor findings",
        "no stored-twice findings",
        "no twin-branches findings",
    ]
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "7" and suite.get("failures") == "3"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == names
    assert cases[1].find("failure").get("message") == (
        "expected a tied group of [score]; found those layers share no weights"
    )
    assert cases[2].find("failure") is None


def test_group_calls_and_params_are_checked() -> None:
    report = weighttie.analyze(zoo.siamese_tower())
    spec = Spec.from_dict(
        {"group": [{"kind": "shared-model", "layers": ["tower"], "calls": 3, "params": 1}]}
    )
    (result, *_) = check(report, spec)
    assert result.failure == "expected 3 calls; found 2; expected 1 params; found 168"


def test_exact_groups_reports_unexpected_groups() -> None:
    report = weighttie.analyze(zoo.nested_twice())
    spec = Spec.from_dict(
        {"exact_groups": True, "group": [{"kind": "shared-model", "layers": ["outer"]}]}
    )
    results = {r.name: r for r in check(report, spec)}
    assert results["no other sharing groups"].failure == (
        "unexpected shared-model group [outer/inner] (21 params)"
    )


def test_snapshot_of_a_model_with_findings_allows_them() -> None:
    text = snapshot(weighttie.analyze(zoo.twin_towers()))
    assert 'allow = ["twin-branches"]' in text
    import tomllib

    spec = Spec.from_dict(tomllib.loads(text))
    assert all(r.passed for r in check(weighttie.analyze(zoo.twin_towers()), spec))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema = 'other/1'", "expected schema = 'weighttie.spec/1'"),
        ("colour = 1", "unknown key 'colour'"),
        ("[params]\nuniq = 3", "unknown key 'uniq'"),
        ("[params]\nunique = -1", "non-negative integer"),
        ("[[group]]\nkind = 'shared'\nlayers = ['a']", "kind must be one of"),
        ("[[group]]\nkind = 'tied'\nlayers = []", "non-empty list"),
        ("[[not_shared]]\nlayers = ['a']\nextra = 1", "only `layers`"),
        ("[findings]\nforbid = ['bad-kind']", "findings.forbid must list finding kinds"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_bad_specs_are_clear_errors(text: str, message: str, tmp_path: Path, save, capsys) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec(path)
    model = save(zoo.siamese_lstm())
    code, out, err = run(capsys, "check", str(model), "--spec", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1


def test_missing_spec_file(tmp_path: Path, save, capsys) -> None:
    code, _, err = run(
        capsys, "check", str(save(zoo.siamese_lstm())), "--spec", str(tmp_path / "x.toml")
    )
    assert code == 2
    assert "no spec file" in err and "weighttie snapshot" in err


def test_unmatched_layer_in_a_spec_is_a_violation() -> None:
    report = weighttie.analyze(zoo.siamese_lstm())
    (result, *_) = check(report, Spec.from_dict({"not_shared": [{"layers": ["ghost"]}]}))
    assert result.failure == "no layer matches 'ghost'"


# -- diff --------------------------------------------------------------------------------


def test_diff_of_a_model_with_itself_is_empty(save, capsys) -> None:
    path = save(zoo.siamese_tower())
    code, out, _ = run(capsys, "diff", str(path), str(path))
    assert (code, out) == (
        0,
        "No differences in layers, sharing groups, ties, findings, counts or cost.\n",
    )


def test_diff_names_groups_and_counts(save, capsys, tmp_path: Path) -> None:
    a = save(zoo.siamese_tower(), "a.keras")
    b = save(zoo.twin_towers(), "b.keras")
    code, out, _ = run(capsys, "diff", str(a), str(b))
    assert code == 1
    tower = zoo.siamese_tower().get_layer("tower").count_params()
    assert out.splitlines()[0] == f"- shared-model group [tower] ({tower:,} params, 2 calls)"
    assert f"~ params.duplicated: {tower:,} -> 0 (-{tower:,})" in out
    code, out, _ = run(capsys, "diff", str(a), str(b), "-f", "json")
    doc = json.loads(out)
    assert doc["same"] is False
    assert doc["groups"]["removed"][0]["layers"] == ["tower"]
    # saved JSON reports work as inputs too
    run(capsys, "report", str(a), "-f", "json", "-o", str(tmp_path / "a.json"))
    code, out, _ = run(capsys, "diff", str(tmp_path / "a.json"), str(a))
    assert code == 0


def test_diff_sees_a_group_that_changed() -> None:
    from weighttie.render import render_diff
    from weighttie.spec import diff

    def model(units: int) -> keras.Model:
        lstm = layers.LSTM(units, name="lstm")
        a, b = keras.Input((3, 2), name="a"), keras.Input((3, 2), name="b")
        return keras.Model([a, b], layers.Concatenate(name="c")([lstm(a), lstm(b)]))

    result = diff(weighttie.analyze(model(3)), weighttie.analyze(model(4)))
    ((before, after),) = result.changed
    assert (before.params, after.params) == (4 * 3 * (2 + 3 + 1), 4 * 4 * (2 + 4 + 1))
    assert "~ shared-layer group [lstm]: params 72 -> 112, calls 2 -> 2" in render_diff(result)


def test_copies_whose_first_values_are_constant_are_still_found() -> None:
    """Regression: a 64 kB sample of zeros once made a whole tensor count as constant."""
    import numpy as np

    rng = np.random.default_rng(0)
    table = np.concatenate([np.zeros((2000, 16)), rng.normal(size=(3000, 16))]).astype("float32")
    tokens = keras.Input((3,), dtype="int32", name="tokens")
    first, second = (
        layers.Embedding(5000, 16, name="first"),
        layers.Embedding(5000, 16, name="second"),
    )
    model = keras.Model(tokens, layers.Add()([first(tokens), second(tokens)]))
    first.embeddings.assign(table)
    second.embeddings.assign(table)
    (finding,) = weighttie.analyze(model).findings
    assert (finding.kind, finding.layers, finding.params) == (
        "broken-tie",
        ("first", "second"),
        table.size,
    )


# -- twins are parallel; broken ties are same-role copies in distinct layers --


def _block(name: str) -> keras.Model:
    x = keras.Input((6,), name=f"{name}_in")
    return keras.Model(x, layers.Dense(6, activation="relu", name=f"{name}_d")(x), name=name)


def test_identical_blocks_in_series_are_not_twins() -> None:
    """A stack (block_0 → block_1, a transformer's layers) is not two branches to share."""
    keras.utils.set_random_seed(12)
    x = keras.Input((6,), name="x")
    model = keras.Model(x, _block("block_1")(_block("block_0")(x)), name="stack")
    assert weighttie.analyze(model).findings == ()
    # the same blocks side by side on one input are twins
    parallel = keras.Model(x, layers.Add()([_block("left")(x), _block("right")(x)]))
    (finding,) = weighttie.analyze(parallel).findings
    assert (finding.kind, finding.layers) == ("twin-branches", ("left", "right"))


def test_twins_of_a_stack_are_found_among_parallel_branches_only() -> None:
    """Three identical blocks: two side by side, the third after them: one pair of twins."""
    keras.utils.set_random_seed(12)
    x = keras.Input((6,), name="x")
    merged = layers.Add(name="add")([_block("a")(x), _block("b")(x)])
    model = keras.Model(x, _block("c")(merged), name="fork_then_stack")
    (finding,) = weighttie.analyze(model).findings
    assert finding.layers == ("a", "b")
    assert finding.params == model.get_layer("a").count_params()


class TwoProjections(keras.layers.Layer):
    """One layer holding two Dense sublayers of one config (an attention's key and value)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.key = layers.Dense(4, name="key")
        self.value = layers.Dense(4, name="value")

    def build(self, input_shape: object) -> None:
        self.key.build(input_shape)
        self.value.build(input_shape)

    def call(self, x: object) -> object:
        return self.key(x) + self.value(x)


def test_equal_parts_of_one_layer_are_not_a_broken_tie() -> None:
    """Issue 12: Gemma's key and value kernels, equal at initialization, were a broken tie."""
    keras.utils.set_random_seed(12)
    x = keras.Input((6,), name="x")
    attention = TwoProjections(name="attention")
    model = keras.Model(x, attention(x), name="one_layer")
    attention.value.kernel.assign(attention.key.kernel)
    attention.value.bias.assign(np.arange(4, dtype="float32"))
    attention.key.bias.assign(np.arange(4, dtype="float32"))
    assert weighttie.analyze(model).findings == ()
    # the same copies in two distinct layers of the model are one
    keras.utils.set_random_seed(12)
    key, value = layers.Dense(4, name="key"), layers.Dense(4, name="value")
    model = keras.Model(x, layers.Add()([key(x), value(x)]), name="two_layers")
    value.set_weights(key.get_weights())
    (finding,) = weighttie.analyze(model).findings
    assert (finding.kind, finding.layers) == ("broken-tie", ("key", "value"))


class Scales(keras.layers.Layer):
    """Two same-shape vectors in different roles."""

    def build(self, input_shape: object) -> None:
        self.alpha = self.add_weight(shape=(4,), initializer="zeros", name="alpha")
        self.beta = self.add_weight(shape=(4,), initializer="zeros", name="beta")

    def call(self, x: object) -> object:
        return x * self.alpha + self.beta


def test_equal_values_in_different_roles_are_not_a_broken_tie() -> None:
    x = keras.Input((4,), name="x")
    first, second = Scales(name="first"), Scales(name="second")
    model = keras.Model(x, second(first(x)), name="roles")
    values = np.arange(1, 5, dtype="float32")
    first.alpha.assign(values)
    second.beta.assign(values)  # equal to first.alpha, but a different role
    assert weighttie.analyze(model).findings == ()
    second.alpha.assign(values)  # same role in a distinct layer: a copy
    (finding,) = weighttie.analyze(model).findings
    assert (finding.kind, finding.layers) == ("broken-tie", ("first", "second"))
    assert "first/alpha = second/alpha" in finding.message


def _two_lstms() -> keras.Model:
    """Two LSTMs built separately on two inputs: at initialization their biases are
    equal (zeros with a block of ones for the forget gate), their kernels are not."""
    keras.utils.set_random_seed(3)
    a, b = keras.Input((5, 4), name="a"), keras.Input((5, 4), name="b")
    left, right = layers.LSTM(6, name="left"), layers.LSTM(6, name="right")
    return keras.Model([a, b], layers.Concatenate(name="cat")([left(a), right(b)]))


def test_an_initializers_pattern_is_not_a_broken_tie(save) -> None:
    """Regression: two fresh LSTMs' unit-forget biases (equal by construction) were
    reported as a broken tie, live and static."""
    model = _two_lstms()
    left, right = model.get_layer("left"), model.get_layer("right")
    assert np.array_equal(left.cell.bias.numpy(), right.cell.bias.numpy())  # the pattern
    assert not any(f.kind == "broken-tie" for f in weighttie.analyze(model).findings)
    static = read_report(save(model, "lstms.keras"))
    assert not any(f.kind == "broken-tie" for f in static.findings)


def test_copied_recurrent_weights_are_still_a_broken_tie(save) -> None:
    model = _two_lstms()
    left, right = model.get_layer("left"), model.get_layer("right")
    right.set_weights(left.get_weights())
    live = [f for f in weighttie.analyze(model).findings if f.kind == "broken-tie"]
    assert [f.layers for f in live] == [("left/lstm_cell", "right/lstm_cell")]
    # the kernels are evidence; the equal biases (a pattern) are not counted
    assert live[0].params == left.cell.kernel.numpy().size + left.cell.recurrent_kernel.numpy().size
    static = read_report(save(model, "copied.keras")).findings
    assert [f for f in static if f.kind == "broken-tie"] == live


def test_diff_states_findings_cost_and_layers() -> None:
    """A tower rebuilt twice adds a twin-branches finding and doubles the tower's MACs:
    diff said neither (it compared groups, ties and counts only)."""
    from weighttie.render import render_diff
    from weighttie.spec import diff

    shared, twins = weighttie.analyze(zoo.siamese_tower()), weighttie.analyze(zoo.twin_towers())
    result = diff(shared, twins)
    assert [(c, f.kind.value, f.layers) for c, f in result.findings] == [
        ("+", "twin-branches", ("tower_a", "tower_b"))
    ]
    cost = {figure: (a, b) for figure, a, b in result.cost}
    assert cost["cost.bytes.unique"] == (shared.cost.bytes.unique, twins.cost.bytes.unique)
    assert ("cost.macs" in cost) == (shared.cost.macs != twins.cost.macs)
    added = {path for change, path, _ in result.layers if change == "+"}
    assert added == {r.path for r in twins.layers} - {r.path for r in shared.layers}
    text = render_diff(result)
    assert "+ twin-branches finding [tower_a, tower_b] (168 params)" in text
    assert "+ layer tower_a (Functional)" in text
    doc = result.to_dict()
    assert doc["findings"] == [
        {"change": "+", "kind": "twin-branches", "layers": ["tower_a", "tower_b"], "params": 168}
    ]
    assert diff(shared, shared).same and not diff(shared, shared).findings
