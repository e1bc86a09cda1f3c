"""tie_weights, untie, load_model and retie on real layers, models and files."""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from weighttie import GroupKind, TieError, TieShapeError, TieValueError


def snapshot(*layer_list: keras.Layer) -> list[tuple[int, np.ndarray]]:
    """Identity and value of every variable the layers hold: to prove nothing changed."""
    return [(id(v), v.numpy().copy()) for layer in layer_list for v in layer.weights]


def assert_unchanged(before: list[tuple[int, np.ndarray]], *layer_list: keras.Layer) -> None:
    after = snapshot(*layer_list)
    assert [i for i, _ in after] == [i for i, _ in before]
    for (_, a), (_, b) in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)


def built(layer: keras.Layer, shape: tuple[int | None, ...]) -> keras.Layer:
    layer.build(shape)
    return layer


def same_valid_model(seed: int = 0, *, tie: bool = True) -> keras.Model:
    """Two Conv2D, "same" and "valid", tied on kernel and bias; compiled with Adam."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 3), name="x")
    same = layers.Conv2D(4, 3, padding="same", name="same")
    valid = layers.Conv2D(4, 3, padding="valid", activation="relu", name="valid")
    a = layers.GlobalAveragePooling2D(name="pool_same")(same(x))
    b = layers.GlobalAveragePooling2D(name="pool_valid")(valid(x))
    model = keras.Model(x, layers.Dense(2, name="head")(layers.Concatenate(name="cat")([a, b])))
    if tie:
        weighttie.tie_weights(same, valid, keep="source")
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(32, 8, 8, 3)).astype("float32"),
        rng.normal(size=(32, 2)).astype("float32"),
    )


def fit(model: keras.Model, epochs: int) -> None:
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)


# -- tying ---------------------------------------------------------------------


def test_tie_built_conv_layers_with_different_padding() -> None:
    model = same_valid_model()
    same, valid = model.get_layer("same"), model.get_layer("valid")
    assert valid.kernel is same.kernel
    assert valid.bias is same.bias
    assert len(model.trainable_variables) == 4  # kernel, bias, head kernel, head bias
    assert model.count_params() == same.count_params() + model.get_layer("head").count_params()
    # both layers really compute with the one kernel
    x = np.ones((1, 8, 8, 3), "float32")
    same.kernel.assign(np.zeros(same.kernel.shape, "float32"))
    assert float(np.abs(keras.ops.convert_to_numpy(valid(x))).max()) == 0.0


def test_analyze_shows_a_tied_group_and_a_bound_tie() -> None:
    report = weighttie.analyze(same_valid_model())
    (group,) = report.groups
    assert group.kind is GroupKind.TIED
    assert group.layers == ("same", "valid")
    assert group.variables == ("same/bias", "same/kernel")
    (tie,) = report.ties
    assert (tie.source, tie.target, tie.variables, tie.bound) == (
        "same",
        "valid",
        ("bias", "kernel"),
        True,
    )


def test_different_values_are_refused_without_keep_and_nothing_changes() -> None:
    keras.utils.set_random_seed(1)
    a, b = built(layers.Dense(3), (None, 4)), built(layers.Dense(3), (None, 4))
    before = snapshot(a, b)
    with pytest.raises(
        TieValueError, match=r"hold different values .*keep='source'.*keep='target'"
    ):
        weighttie.tie_weights(a, b)
    assert_unchanged(before, a, b)
    assert weighttie.analyze(keras.Sequential([keras.Input((4,)), a])).ties == ()


def test_keep_target_keeps_the_targets_values() -> None:
    keras.utils.set_random_seed(2)
    a, b = built(layers.Dense(3), (None, 4)), built(layers.Dense(3), (None, 4))
    target_kernel = b.kernel.numpy().copy()
    weighttie.tie_weights(a, b, keep="target")
    assert b.kernel is a.kernel
    np.testing.assert_array_equal(a.kernel.numpy(), target_kernel)


def test_equal_values_need_no_keep() -> None:
    a, b = built(layers.Dense(3), (None, 4)), built(layers.Dense(3), (None, 4))
    b.set_weights(a.get_weights())
    weighttie.tie_weights(a, b)
    assert b.kernel is a.kernel


def test_shape_mismatch_names_both_variables_and_changes_nothing() -> None:
    a, b = built(layers.Conv2D(8, 3), (None, 9, 9, 3)), built(layers.Conv2D(16, 3), (None, 9, 9, 3))
    before = snapshot(a, b)
    with pytest.raises(
        TieShapeError,
        match=rf"{b.name}/bias has shape \(16,\); {a.name}/bias has shape \(8,\)",
    ):
        weighttie.tie_weights(a, b, keep="source")
    assert_unchanged(before, a, b)


def test_dtype_mismatch_is_a_shape_error() -> None:
    a = built(layers.Dense(2, dtype="float32"), (None, 3))
    b = built(layers.Dense(2, dtype="float64"), (None, 3))
    with pytest.raises(TieShapeError, match=r"dtype float64.*dtype float32"):
        weighttie.tie_weights(a, b, keep="source")


def test_subset_ties_only_the_kernel() -> None:
    a, b = built(layers.Dense(3), (None, 4)), built(layers.Dense(3, use_bias=True), (None, 4))
    weighttie.tie_weights(a, b, variables=["kernel"], keep="source")
    assert b.kernel is a.kernel
    assert b.bias is not a.bias
    model = keras.Sequential([keras.Input((4,)), a, layers.Dense(4), b])
    (group,) = weighttie.analyze(model).groups
    assert group.kind is GroupKind.TIED and len(group.variables) == 1


def test_subset_lets_layers_with_and_without_bias_tie() -> None:
    a = built(layers.Dense(3), (None, 4))
    b = built(layers.Dense(3, use_bias=False), (None, 4))
    with pytest.raises(TieError, match=r"bias has no counterpart.*variables=\[\.\.\.\]"):
        weighttie.tie_weights(a, b, keep="source")
    weighttie.tie_weights(a, b, variables=["kernel"], keep="source")
    assert b.kernel is a.kernel


def test_unknown_variable_name_lists_the_known_ones() -> None:
    a, b = built(layers.Dense(3), (None, 4)), built(layers.Dense(3), (None, 4))
    with pytest.raises(TieError, match=r"no variable named 'kernal'.*bias, kernel"):
        weighttie.tie_weights(a, b, variables=["kernal"], keep="source")


def test_tying_a_layer_to_itself_is_an_error() -> None:
    a = layers.Dense(2)
    with pytest.raises(TieError, match="to itself"):
        weighttie.tie_weights(a, a)


def test_layers_of_different_classes_are_refused() -> None:
    with pytest.raises(TieError, match=r"one class.*Conv2D.*Conv2DTranspose"):
        weighttie.tie_weights(layers.Conv2D(2, 3), layers.Conv2DTranspose(2, 3))


def test_non_layers_are_refused() -> None:
    with pytest.raises(TieError, match="expects keras layers; received target=str"):
        weighttie.tie_weights(layers.Dense(2), "dense")


def test_bad_keep_is_refused() -> None:
    with pytest.raises(TieError, match="keep must be"):
        weighttie.tie_weights(layers.Dense(2), layers.Dense(2), keep="both")  # type: ignore[arg-type]


def test_a_cycle_is_refused() -> None:
    a, b = built(layers.Dense(2), (None, 2)), built(layers.Dense(2), (None, 2))
    weighttie.tie_weights(a, b, keep="source")
    with pytest.raises(TieError, match="cycle"):
        weighttie.tie_weights(b, a, keep="source")


def test_second_source_for_one_target_is_refused() -> None:
    a, b, c = (built(layers.Dense(2), (None, 2)) for _ in range(3))
    weighttie.tie_weights(a, c, keep="source")
    with pytest.raises(TieError, match="already tied"):
        weighttie.tie_weights(b, c, keep="source")
    weighttie.tie_weights(a, c)  # the same tie again is a no-op


@pytest.mark.parametrize("order", ["ab-then-bc", "bc-then-ab"])
def test_chains_resolve_to_one_root(order: str) -> None:
    a, b, c = (built(layers.Dense(2), (None, 2)) for _ in range(3))
    if order == "ab-then-bc":
        weighttie.tie_weights(a, b, keep="source")
        weighttie.tie_weights(b, c, keep="source")
    else:
        weighttie.tie_weights(b, c, keep="source")
        weighttie.tie_weights(a, b, keep="source")
    assert a.kernel is b.kernel is c.kernel
    model = keras.Sequential([keras.Input((2,)), a, b, c])
    (group,) = weighttie.analyze(model).groups
    assert group.layers == tuple(sorted((a.name, b.name, c.name)))  # by path
    assert group.calls == 3


def test_untie_gives_the_target_its_own_copy_with_current_values() -> None:
    a, b = built(layers.Dense(2), (None, 3)), built(layers.Dense(2), (None, 3))
    weighttie.tie_weights(a, b, keep="source")
    values = a.kernel.numpy().copy()
    weighttie.untie(b)
    assert b.kernel is not a.kernel
    np.testing.assert_array_equal(b.kernel.numpy(), values)
    b.kernel.assign(np.zeros((3, 2), "float32"))
    np.testing.assert_array_equal(a.kernel.numpy(), values)
    x = keras.Input((3,))
    model = keras.Model(x, [a(x), b(x)])
    assert weighttie.analyze(model).groups == ()
    assert weighttie.analyze(model).ties == ()
    with pytest.raises(TieError, match="not the target of a tie"):
        weighttie.untie(b)


def test_untie_keeps_layers_tied_to_the_target_with_it() -> None:
    a, b, c = (built(layers.Dense(2), (None, 2)) for _ in range(3))
    weighttie.tie_weights(a, b, keep="source")
    weighttie.tie_weights(b, c, keep="source")
    weighttie.untie(b)
    assert b.kernel is not a.kernel
    assert c.kernel is b.kernel


# -- unbuilt layers -------------------------------------------------------------


def test_tie_before_build_binds_when_the_model_is_built() -> None:
    same = layers.Conv2D(4, 3, padding="same")
    valid = layers.Conv2D(4, 3, padding="valid")
    weighttie.tie_weights(same, valid)
    x = keras.Input((8, 8, 3))
    keras.Model(x, [same(x), valid(x)])
    assert valid.kernel is same.kernel and valid.bias is same.bias


def test_target_built_first_keeps_its_values_when_the_source_builds() -> None:
    source, target = layers.Dense(3), built(layers.Dense(3), (None, 5))
    values = target.kernel.numpy().copy()
    weighttie.tie_weights(source, target)
    source.build((None, 5))
    assert source.kernel is target.kernel
    np.testing.assert_array_equal(source.kernel.numpy(), values)


def test_unbuilt_tie_with_wrong_shapes_fails_at_build() -> None:
    source, target = layers.Dense(3), layers.Dense(3)
    weighttie.tie_weights(source, target)
    source.build((None, 5))
    with pytest.raises(TieShapeError, match="has shape"):
        target.build((None, 6))


# -- layer classes ---------------------------------------------------------------

CLASSES: dict[str, tuple[Callable[[], keras.Layer], Callable[[], keras.Layer], tuple]] = {
    "Dense": (lambda: layers.Dense(4), lambda: layers.Dense(4, activation="relu"), (None, 3)),
    "Conv1D": (
        lambda: layers.Conv1D(4, 3),
        lambda: layers.Conv1D(4, 3, padding="same", dilation_rate=2),
        (None, 10, 2),
    ),
    "Conv2D": (
        lambda: layers.Conv2D(4, 3),
        lambda: layers.Conv2D(4, 3, strides=2, padding="same"),
        (None, 9, 9, 2),
    ),
    "Conv3D": (
        lambda: layers.Conv3D(2, 2),
        lambda: layers.Conv3D(2, 2, padding="same"),
        (None, 4, 4, 4, 1),
    ),
    "Conv2DTranspose": (
        lambda: layers.Conv2DTranspose(3, 3),
        lambda: layers.Conv2DTranspose(3, 3, strides=2),
        (None, 5, 5, 2),
    ),
    "Embedding": (lambda: layers.Embedding(20, 4), lambda: layers.Embedding(20, 4), (None, 6)),
    "LSTM": (
        lambda: layers.LSTM(3),
        lambda: layers.LSTM(3, return_sequences=True, go_backwards=True),
        (None, 5, 2),
    ),
    "GRU": (lambda: layers.GRU(3), lambda: layers.GRU(3, return_sequences=True), (None, 5, 2)),
    "BatchNormalization": (
        lambda: layers.BatchNormalization(),
        lambda: layers.BatchNormalization(momentum=0.5, epsilon=1e-2),
        (None, 4),
    ),
}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_supported_class_ties_all_its_variables(name: str) -> None:
    make_source, make_target, shape = CLASSES[name]
    source, target = built(make_source(), shape), built(make_target(), shape)
    weighttie.tie_weights(source, target, keep="source")
    assert len(target.weights) == len(source.weights) > 0
    for s, t in zip(source.weights, target.weights, strict=True):
        assert s is t, f"{t.path} is not {s.path}"


def test_batch_normalization_moving_statistics_are_tied_too() -> None:
    a, b = (
        built(layers.BatchNormalization(), (None, 3)),
        built(layers.BatchNormalization(), (None, 3)),
    )
    weighttie.tie_weights(a, b, keep="source")
    b(np.ones((4, 3), "float32") * 5, training=True)  # updates the moving mean through b
    np.testing.assert_array_equal(a.moving_mean.numpy(), b.moving_mean.numpy())
    assert float(a.moving_mean.numpy()[0]) > 0


def test_layers_inside_nested_models_can_be_tied() -> None:
    def tower(name: str) -> keras.Model:
        x = keras.Input((5,), name=f"{name}_in")
        return keras.Model(x, layers.Dense(3, name=f"{name}_dense")(x), name=name)

    left, right = tower("left"), tower("right")
    a = keras.Input((5,), name="a")
    model = keras.Model(a, layers.Add()([left(a), right(a)]))
    weighttie.tie_weights(
        left.get_layer("left_dense"), right.get_layer("right_dense"), keep="source"
    )
    (group,) = weighttie.analyze(model).groups
    assert group.layers == ("left/left_dense", "right/right_dense")
    # whole nested models tie too, layer by layer
    other_left, other_right = tower("l2"), tower("r2")
    weighttie.tie_weights(other_left, other_right, keep="source")
    assert other_right.get_layer("r2_dense").kernel is other_left.get_layer("l2_dense").kernel


# -- training ---------------------------------------------------------------------


def test_optimizer_keeps_one_slot_set_for_a_tied_variable() -> None:
    model = same_valid_model()
    fit(model, 1)
    # Adam: iterations and learning rate, then momentum and velocity per variable
    assert len(model.optimizer.variables) == 2 + 2 * len(model.trainable_variables) == 10


def test_tie_works_on_a_compiled_model_before_training() -> None:
    model = same_valid_model(tie=False)
    same, valid = model.get_layer("same"), model.get_layer("valid")
    weighttie.tie_weights(same, valid, keep="source")
    fit(model, 1)
    assert valid.kernel is same.kernel
    assert len(model.optimizer.variables) == 10


# -- save and load -------------------------------------------------------------------


def assert_same_state(a: keras.Model, b: keras.Model) -> None:
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)
    assert len(a.optimizer.variables) == len(b.optimizer.variables)
    for x, y in zip(a.optimizer.variables, b.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(x.numpy()), np.asarray(y.numpy()), err_msg=x.path)


def load_quietly(load: Callable[[], keras.Model]) -> keras.Model:
    """Load, and fail on any warning about skipped optimizer state."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load()
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    assert skipped == []
    return model


def test_resuming_from_the_file_equals_training_straight_through(tmp_path: Path) -> None:
    straight = same_valid_model()
    fit(straight, 2)

    resumed = same_valid_model()
    fit(resumed, 1)
    resumed.save(tmp_path / "m.keras")
    loaded = load_quietly(lambda: weighttie.load_model(tmp_path / "m.keras"))
    assert loaded.get_layer("valid").kernel is loaded.get_layer("same").kernel
    assert loaded.count_params() == resumed.count_params()
    before = weighttie.analyze(resumed)
    assert weighttie.analyze(loaded).groups == before.groups
    fit(loaded, 1)
    assert_same_state(straight, loaded)


def test_plain_keras_load_plus_retie_resumes_exactly(tmp_path: Path) -> None:
    straight = same_valid_model()
    fit(straight, 2)
    resumed = same_valid_model()
    fit(resumed, 1)
    resumed.save(tmp_path / "m.keras")

    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        plain = keras.saving.load_model(tmp_path / "m.keras")
    assert plain.get_layer("valid").kernel is not plain.get_layer("same").kernel
    bound = weighttie.retie(plain, tmp_path / "m.keras")
    assert [(t.source, t.target) for t in bound] == [("same", "valid")]
    assert plain.get_layer("valid").kernel is plain.get_layer("same").kernel
    (group,) = weighttie.analyze(plain).groups
    assert group.kind is GroupKind.TIED
    fit(plain, 1)
    assert_same_state(straight, plain)


def test_plain_keras_reads_the_file_as_equal_valued_copies(tmp_path: Path) -> None:
    model = same_valid_model()
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    plain = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    same, valid = plain.get_layer("same"), plain.get_layer("valid")
    assert same.kernel is not valid.kernel
    np.testing.assert_array_equal(same.kernel.numpy(), valid.kernel.numpy())
    assert weighttie.analyze(plain).groups == ()


def test_three_save_load_cycles_stay_tied(tmp_path: Path) -> None:
    model = same_valid_model()
    fit(model, 1)
    for cycle in range(3):
        path = tmp_path / f"cycle{cycle}.keras"
        model.save(path)
        model = load_quietly(lambda path=path: weighttie.load_model(path))
        assert model.get_layer("valid").kernel is model.get_layer("same").kernel
        fit(model, 1)
    (tie,) = weighttie.analyze(model).ties
    assert tie.bound


def test_weights_file_into_a_model_with_the_same_ties(tmp_path: Path) -> None:
    trained = same_valid_model()
    fit(trained, 1)
    trained.save_weights(tmp_path / "m.weights.h5")
    fresh = same_valid_model(seed=5)
    fresh.load_weights(tmp_path / "m.weights.h5")
    assert fresh.get_layer("valid").kernel is fresh.get_layer("same").kernel
    for x, y in zip(trained.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_the_tie_record_is_a_build_config_key(tmp_path: Path) -> None:
    model = same_valid_model()
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        config = json.loads(z.read("config.json"))
    records = {
        entry["name"]: (entry.get("build_config") or {}).get("weighttie")
        for entry in config["config"]["layers"]
    }
    assert records["same"]["ties"] == []
    (tie,) = records["valid"]["ties"]
    assert tie == {"source": records["same"]["id"], "variables": None}
    assert records["head"] is None


def test_cli_report_shows_the_ties_a_file_declares(tmp_path: Path, capsys) -> None:
    from weighttie.cli import main

    same_valid_model().save(tmp_path / "m.keras")
    assert main(["report", str(tmp_path / "m.keras"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ties"] == [
        {"source": "same", "target": "valid", "variables": ["bias", "kernel"], "bound": True}
    ]
    assert [g["kind"] for g in doc["groups"]] == ["tied"]


def test_load_model_without_ties_is_plain_keras(tmp_path: Path) -> None:
    model = same_valid_model(tie=False)
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    loaded = load_quietly(lambda: weighttie.load_model(tmp_path / "m.keras"))
    assert_same_state(model, loaded)


def test_load_model_refuses_copies_that_disagree(tmp_path: Path) -> None:
    model = same_valid_model()
    model.save(tmp_path / "m.keras")
    # Untie, change one copy, save again: the record stays, the values now differ.
    plain = keras.saving.load_model(tmp_path / "m.keras")
    plain.get_layer("valid").kernel.assign(plain.get_layer("valid").kernel.numpy() + 1)
    edited = tmp_path / "edited.keras"
    # plain Keras drops the record on save: copy it back into the new file's config
    plain.save(edited)
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        _replace_member(edited, "config.json", z.read("config.json"))
    with pytest.raises(TieValueError, match="disagree"):
        weighttie.load_model(edited)
    with pytest.raises(TieValueError, match="disagree"):
        weighttie.retie(plain, edited)
    assert plain.get_layer("valid").kernel is not plain.get_layer("same").kernel


@pytest.mark.skipif(
    keras.config.backend() == "jax",
    reason="JAX refuses a tie after the optimizer is built (test_backends.py tests that)",
)
def test_optimizer_state_that_cannot_be_restored_is_announced(tmp_path: Path) -> None:
    """Tying after training leaves the optimizer with slots for the untied copies."""
    model = same_valid_model(tie=False)
    fit(model, 1)  # Adam builds 14 variables for the untied model
    weighttie.tie_weights(model.get_layer("same"), model.get_layer("valid"), keep="source")
    model.save(tmp_path / "m.keras")
    with pytest.warns(
        weighttie.OptimizerStateWarning, match="holds 14 optimizer variables.*has 10"
    ):
        loaded = weighttie.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("valid").kernel is loaded.get_layer("same").kernel


def test_a_tie_to_a_layer_missing_from_the_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    same_valid_model().save(path)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    for entry in config["config"]["layers"]:
        if entry["name"] == "same":
            entry["build_config"]["weighttie"]["id"] = "someone-else"
    _replace_member(path, "config.json", json.dumps(config).encode())
    with pytest.raises(
        weighttie.FileFormatError, match="'valid' declares a tie to a layer that is not in the file"
    ):
        weighttie.load_model(path)


def test_retie_on_a_model_without_the_layer_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    same_valid_model().save(path)
    other = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="same")])
    before = snapshot(other)
    with pytest.raises(weighttie.LayerNotFoundError, match="the model has no layer 'valid'"):
        weighttie.retie(other, path)
    assert_unchanged(before, other)


def _replace_member(path: Path, member: str, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(tmp, "w") as new:
        for item in old.infolist():
            new.writestr(item, data if item.filename == member else old.read(item))
    tmp.replace(path)


def halved_mse(y_true, y_pred):  # type: ignore[no-untyped-def]
    """A loss Keras knows only through custom_objects (not registered)."""
    return keras.ops.mean(keras.ops.square(y_true - y_pred)) / 2


def test_retie_takes_the_custom_objects_the_plain_load_was_given(tmp_path: Path) -> None:
    straight = same_valid_model()
    straight.compile(keras.optimizers.Adam(1e-2), halved_mse)
    fit(straight, 2)
    resumed = same_valid_model()
    resumed.compile(keras.optimizers.Adam(1e-2), halved_mse)
    fit(resumed, 1)
    resumed.save(tmp_path / "m.keras")
    custom = {"halved_mse": halved_mse}
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        plain = keras.saving.load_model(tmp_path / "m.keras", custom_objects=custom)
    before = snapshot(plain.get_layer("same"), plain.get_layer("valid"))

    with pytest.raises(weighttie.FileFormatError, match="halved_mse"):
        weighttie.retie(plain, tmp_path / "m.keras")
    assert_unchanged(before, plain.get_layer("same"), plain.get_layer("valid"))
    assert plain.get_layer("valid").kernel is not plain.get_layer("same").kernel

    weighttie.retie(plain, tmp_path / "m.keras", custom_objects=custom)
    assert plain.get_layer("valid").kernel is plain.get_layer("same").kernel
    fit(plain, 1)
    assert_same_state(straight, plain)
