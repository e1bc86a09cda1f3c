"""retie and load_model bind a file's ties all or nothing.

Every file here is a real .keras file saved from a real tied model, with its
config.json edited afterwards: ties that conflict with each other or with the
model, and compile configs Keras cannot read. After each failure the model must
be exactly as it was (``model_state``: variable identities and values, tie
records, build_config output, the optimizer and compile state), and it must
still accept the file's real ties afterwards.
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from ties.test_nothing_lost import model_state
from ties.test_ties import _replace_member
from weighttie import (
    FileFormatError,
    LayerNotFoundError,
    OptimizerStateWarning,
    TieError,
    TieShapeError,
    TieValueError,
    WeighttieError,
    _keras,
    load,
)


def triple(*, c_units: int = 3, c_name: str = "c", tie_c: bool = True) -> keras.Model:
    """Dense a, b and c side by side on one input; b (and c) tied to a; Adam, one epoch."""
    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    a, b = layers.Dense(3, name="a"), layers.Dense(3, name="b")
    c = layers.Dense(c_units, name=c_name)
    joined = layers.Concatenate(name="cat")([a(x), b(x), c(x)])
    model = keras.Model(x, layers.Dense(2, name="head")(joined))
    weighttie.tie_weights(a, b, keep="source")
    if tie_c:
        weighttie.tie_weights(a, c, keep="source")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    train(model)
    return model


def train(model: keras.Model) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def plain_load(path: Path) -> keras.Model:
    """Load with plain Keras: untied copies, optimizer state skipped (with a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return keras.saving.load_model(path)


def record(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The weighttie record in a top-level layer's build_config, created if missing."""
    (entry,) = [e for e in config["config"]["layers"] if e["name"] == name]
    build = entry.setdefault("build_config", {})
    return build.setdefault("weighttie", {"version": 1, "id": f"id-{name}", "ties": []})  # type: ignore[no-any-return]


def add_tie(config: dict[str, Any], source: str, target: str, variables: Any = None) -> None:
    """Declare one more tie in the file: target takes its variables from source."""
    tie = {"source": record(config, source)["id"], "variables": variables}
    record(config, target)["ties"].append(tie)


def edited(tmp_path: Path, model: keras.Model, change: Callable[[dict[str, Any]], None]) -> Path:
    """Save ``model`` as original.keras, and a copy with config.json changed as edited.keras."""
    original = tmp_path / "original.keras"
    model.save(original)
    path = tmp_path / "edited.keras"
    shutil.copy(original, path)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    change(config)
    _replace_member(path, "config.json", json.dumps(config).encode())
    return path


def _second_source(config: dict[str, Any]) -> None:
    add_tie(config, "b", "c")  # c already takes its variables from a


def _same_source_other_variables(config: dict[str, Any]) -> None:
    add_tie(config, "a", "c", ["kernel"])  # c already takes all of a's variables


def _cycle_of_two(config: dict[str, Any]) -> None:
    add_tie(config, "c", "a")  # a ← c ← a


def _cycle_of_three(config: dict[str, Any]) -> None:
    add_tie(config, "c", "a")
    record(config, "c")["ties"] = [{"source": record(config, "b")["id"], "variables": None}]


def _self(config: dict[str, Any]) -> None:
    record(config, "c")["ties"] = [{"source": record(config, "c")["id"], "variables": None}]


def _other_class(config: dict[str, Any]) -> None:
    add_tie(config, "a", "cat")


def _unknown_optimizer(config: dict[str, Any]) -> None:
    config["compile_config"]["optimizer"]["class_name"] = "NoSuchOptimizer"


def _bare_unknown_optimizer(config: dict[str, Any]) -> None:
    config["compile_config"]["optimizer"] = {"class_name": "NoSuchOptimizer"}


def _optimizer_number(config: dict[str, Any]) -> None:
    config["compile_config"]["optimizer"] = 42


def _garbage_compile_config(config: dict[str, Any]) -> None:
    config["compile_config"] = "garbage"


def _unknown_compile_argument(config: dict[str, Any]) -> None:
    config["compile_config"]["foo"] = 1


# name: (edit of config.json, error class, message pattern)
BAD_FILES: dict[str, tuple[Callable[[dict[str, Any]], None], type[Exception], str]] = {
    "second source": (
        _second_source,
        TieError,
        r"ties 'c' to both 'a' and 'b'; a layer takes its variables from one source",
    ),
    "same source, other variables": (
        _same_source_other_variables,
        TieError,
        r"ties 'c' to 'a' twice, on all variables and on kernel",
    ),
    "cycle of two": (_cycle_of_two, TieError, r"ties 'c' to 'a', which closes a cycle: c → a → c;"),
    "cycle of three": (
        _cycle_of_three,
        TieError,
        r"ties 'c' to 'b', which closes a cycle: c → a → b → c;",
    ),
    "tie to itself": (_self, TieError, r"ties layer 'c' to itself;"),
    "other class": (
        _other_class,
        TieError,
        r"ties 'cat' to 'a'.*a is Dense and cat is Concatenate",
    ),
    "unknown optimizer": (
        _unknown_optimizer,
        FileFormatError,
        r"compile_config naming optimizer 'NoSuchOptimizer', which Keras does not know; ",
    ),
    "unknown optimizer, no config": (
        _bare_unknown_optimizer,
        FileFormatError,
        r"compile_config naming optimizer 'NoSuchOptimizer', which Keras does not know; ",
    ),
    "optimizer is a number": (
        _optimizer_number,
        FileFormatError,
        r"compile_config whose optimizer Keras cannot build \(ValueError: Could not interpret",
    ),
    "compile_config is a string": (
        _garbage_compile_config,
        FileFormatError,
        r"compile_config that is a str, not a mapping of compile\(\) arguments",
    ),
    "unknown compile argument": (
        _unknown_compile_argument,
        FileFormatError,
        r"compile_config with arguments compile\(\) does not take: 'foo';",
    ),
}


def assert_ties_bind_afterwards(model: keras.Model, path: Path) -> None:
    """The failure left nothing behind that stops the file's real ties from binding."""
    weighttie.retie(model, path)
    kernels = [model.get_layer(name).kernel for name in ("a", "b", "c")]
    assert kernels[1] is kernels[0] and kernels[2] is kernels[0]
    train(model)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_retie_of_a_bad_file_changes_nothing(tmp_path: Path, name: str) -> None:
    change, error, pattern = BAD_FILES[name]
    path = edited(tmp_path, triple(), change)
    model = plain_load(tmp_path / "original.keras")
    before = model_state(model)
    with pytest.raises(error, match=pattern) as caught:
        weighttie.retie(model, path)
    assert isinstance(caught.value, WeighttieError)
    assert "\n" not in str(caught.value)
    assert model_state(model) == before
    assert_ties_bind_afterwards(model, tmp_path / "original.keras")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_load_model_of_a_bad_file_raises_a_weighttie_error(tmp_path: Path, name: str) -> None:
    change, error, pattern = BAD_FILES[name]
    path = edited(tmp_path, triple(), change)
    with pytest.raises(error, match=pattern):
        weighttie.load_model(path)


def test_load_model_without_compiling_ignores_a_bad_compile_config(tmp_path: Path) -> None:
    path = edited(tmp_path, triple(), _unknown_optimizer)
    model = weighttie.load_model(path, compile=False)
    assert model.get_layer("c").kernel is model.get_layer("a").kernel
    assert model.compiled is False


def test_retie_onto_a_model_without_a_later_layer_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    triple().save(path)
    model = plain_load(path)
    other = triple(c_name="d")  # has a and b, which the file ties, but no c
    before = model_state(other)
    with pytest.raises(LayerNotFoundError, match="the model has no layer 'c'"):
        weighttie.retie(other, path)
    assert model_state(other) == before
    assert_ties_bind_afterwards(model, path)


def test_a_later_tie_with_another_shape_changes_nothing(tmp_path: Path) -> None:
    path = edited(tmp_path, triple(c_units=5, tie_c=False), lambda c: add_tie(c, "a", "c"))
    model = plain_load(path)
    before = model_state(model)
    with pytest.raises(TieShapeError, match=r"c/bias has shape \(5,\); a/bias has shape \(3,\)"):
        weighttie.retie(model, path)
    assert model_state(model) == before


def test_a_later_tie_whose_copies_disagree_changes_nothing(tmp_path: Path) -> None:
    path = edited(tmp_path, triple(tie_c=False), lambda c: add_tie(c, "a", "c"))
    model = plain_load(path)
    before = model_state(model)
    with pytest.raises(TieValueError, match=r"the copies saved in .* disagree"):
        weighttie.retie(model, path)
    assert model_state(model) == before


def test_ties_that_reach_one_layer_twice_change_nothing(tmp_path: Path) -> None:
    """Two nested models tied whole, and a third layer tied to a layer inside one of them.

    Each tie fits on its own; bound together, the second undoes part of the first.
    """

    def tower(name: str) -> keras.Model:
        x = keras.Input((4,), name=f"{name}_in")
        return keras.Model(x, layers.Dense(3, name=f"{name}_dense")(x), name=name)

    keras.utils.set_random_seed(0)
    left, right, q = tower("left"), tower("right"), layers.Dense(3, name="q")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Concatenate(name="cat")([left(x), right(x), q(x)]))
    weighttie.tie_weights(left, right, keep="source")
    q.set_weights(left.get_layer("left_dense").get_weights())  # equal copies in the file
    model.compile(keras.optimizers.Adam(1e-2), "mse")

    def tie_inside(config: dict[str, Any]) -> None:
        (right_entry,) = [e for e in config["config"]["layers"] if e["name"] == "right"]
        (inner,) = [e for e in right_entry["config"]["layers"] if e["name"] == "right_dense"]
        inner["build_config"]["weighttie"] = {
            "version": 1,
            "id": "id-right-dense",
            "ties": [{"source": record(config, "q")["id"], "variables": None}],
        }

    path = edited(tmp_path, model, tie_inside)
    plain = plain_load(path)
    before = model_state(plain)
    pattern = r"ties 'right' to 'left', but binding it with the file's other ties leaves"
    with pytest.raises(TieError, match=pattern):
        weighttie.retie(plain, path)
    assert model_state(plain) == before
    with pytest.raises(TieError, match=pattern):
        weighttie.load_model(path)


# -- a file whose ties are consistent binds whole -----------------------------------


def test_a_chain_of_ties_in_a_file_binds_whole(tmp_path: Path) -> None:
    def chain(config: dict[str, Any]) -> None:  # a → b → c instead of a → b, a → c
        record(config, "c")["ties"] = [{"source": record(config, "b")["id"], "variables": None}]

    path = edited(tmp_path, triple(), chain)
    for model in (weighttie.load_model(path), plain_load(path)):
        weighttie.retie(model, path)
        a, b, c = (model.get_layer(name) for name in "abc")
        assert b.kernel is a.kernel and c.kernel is a.kernel and c.bias is a.bias
        train(model)


def test_a_tie_declared_twice_in_a_file_binds_once(tmp_path: Path) -> None:
    path = edited(tmp_path, triple(), lambda c: add_tie(c, "a", "c"))
    model = weighttie.load_model(path)
    assert model.get_layer("c").kernel is model.get_layer("a").kernel
    assert len(model.optimizer.variables) == 2 + 2 * len(model.trainable_variables)


# -- interrupted and failed after binding --------------------------------------------


def test_an_interrupt_between_two_binds_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.keras"
    triple().save(path)
    model = plain_load(path)
    before = model_state(model)
    bind, calls = load._bind_planned, []

    def interrupted(tie: Any) -> None:
        calls.append(tie)
        if len(calls) == 2:
            raise KeyboardInterrupt
        bind(tie)

    monkeypatch.setattr(load, "_bind_planned", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weighttie.retie(model, path)
    assert len(calls) == 2
    assert model_state(model) == before
    monkeypatch.undo()
    assert_ties_bind_afterwards(model, path)


def test_an_interrupt_inside_a_bind_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.keras"
    triple().save(path)
    model = plain_load(path)
    before = model_state(model)
    replace, calls = _keras.replace_own_variable, []

    def interrupted(layer: Any, old: Any, new: Any) -> bool:
        calls.append(layer)
        if len(calls) == 3:  # b's two variables are replaced; c's first is next
            raise KeyboardInterrupt
        return replace(layer, old, new)

    monkeypatch.setattr(_keras, "replace_own_variable", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weighttie.retie(model, path)
    assert len(calls) == 3
    assert model_state(model) == before


def test_an_interrupt_while_restoring_the_optimizer_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ties are bound and the model compiled again when the interrupt comes."""
    path = tmp_path / "m.keras"
    triple().save(path)
    model = plain_load(path)
    before = model_state(model)
    seen = []

    def interrupted(optimizer: Any, *args: Any) -> None:
        seen.append(optimizer)
        raise KeyboardInterrupt

    monkeypatch.setattr(load, "_restore_optimizer_state", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weighttie.retie(model, path)
    (optimizer,) = seen
    assert id(optimizer) != before[-3][1]  # the interrupt came after the new optimizer
    assert model_state(model) == before


@pytest.mark.skipif(
    keras.config.backend() == "jax",
    reason="JAX refuses a tie after the optimizer is built (test_backends.py tests that)",
)
def test_a_warning_raised_as_an_error_after_binding_changes_nothing(tmp_path: Path) -> None:
    """Under -W error, the warning about optimizer state comes after binding and compiling."""
    model = triple(tie_c=False)
    weighttie.tie_weights(model.get_layer("a"), model.get_layer("c"), keep="source")
    path = tmp_path / "m.keras"
    model.save(path)  # the optimizer still has slots for c's own variables
    plain = plain_load(path)
    before = model_state(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizerStateWarning)
        with pytest.raises(OptimizerStateWarning, match="not restored"):
            weighttie.retie(plain, path)
    assert model_state(plain) == before
