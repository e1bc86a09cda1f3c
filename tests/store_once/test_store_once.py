"""save_model: each tied variable stored once in model.weights.h5.

Real models, real files: the weights member is opened with h5py and its objects
counted by address; plain Keras loads the file in a fresh process; weighttie's
load_model resumes training bit for bit; the static report of the file matches
the live report of the model, with or without weighttie's tie record.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest
from keras import layers, ops

import weighttie
from ties.test_ties import data, fit, load_quietly, same_valid_model
from weighttie import FileFormatError, GroupKind, OutputError, Report
from weighttie.store_once import StoredOnce

BACKEND = keras.config.backend()


@keras.saving.register_keras_serializable(package="weighttie_store_once")
class Vocab(layers.Embedding):
    """An Embedding that projects onto its vocabulary when ``reverse``: the output head
    of a tied language model is a second Vocab tied to the input one."""

    def __init__(self, *args: Any, reverse: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reverse = reverse

    def call(self, inputs: Any) -> Any:
        if self.reverse:
            return ops.matmul(inputs, ops.transpose(self.embeddings))
        return super().call(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.reverse:
            return (*input_shape[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reverse": self.reverse}


def tied_lm(vocab: int = 40, dim: int = 8, seed: int = 0) -> keras.Model:
    """Tokens → Vocab → Dense → Vocab(reverse) tied to the first: one (vocab, dim) matrix."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    embed = Vocab(vocab, dim, name="embed")
    head = Vocab(vocab, dim, reverse=True, name="head")
    weighttie.tie_weights(embed, head)
    h = layers.Dense(dim, activation="tanh", name="mix")(embed(tokens))
    model = keras.Model(tokens, head(h), name="tied_lm")
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def lm_data(vocab: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(0, vocab, size=(16, 6)), rng.integers(0, vocab, size=(16, 6))


def fit_lm(model: keras.Model, epochs: int) -> None:
    x, y = lm_data()
    model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)


def weights_h5(path: Path) -> h5py.File:
    with zipfile.ZipFile(path) as archive:
        return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")


def datasets_by_address(h5: h5py.File) -> dict[int, list[str]]:
    """Every dataset path of the file (through every hard link), grouped by object address."""
    found: dict[int, list[str]] = {}

    def walk(group: h5py.Group, prefix: str) -> None:
        for name in group:
            item = group[name]
            if isinstance(item, h5py.Group):
                walk(item, f"{prefix}{name}/")
            else:
                found.setdefault(h5py.h5o.get_info(item.id).addr, []).append(prefix + name)

    walk(h5, "")
    return found


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def weights_and_slots(model: keras.Model) -> list[np.ndarray]:
    return [to_numpy(v.value) for v in [*model.weights, *model.optimizer.variables]]


def assert_all_equal(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# -- the file ------------------------------------------------------------------------


def test_a_tied_matrix_is_one_dataset_hard_linked_from_the_other_holder(tmp_path: Path) -> None:
    model = tied_lm(vocab=500, dim=32)
    fit_lm(model, 1)
    model.save(tmp_path / "plain.keras")
    stored = weighttie.save_model(model, tmp_path / "once.keras")

    assert isinstance(stored, StoredOnce)
    assert stored.links == (("layers/vocab/vars/0", ("layers/vocab_1/vars/0",)),)
    assert stored.copies == ()
    plain = datasets_by_address(weights_h5(tmp_path / "plain.keras"))
    once = datasets_by_address(weights_h5(tmp_path / "once.keras"))
    # every path is still there; the two holders' paths are one object
    assert sorted(p for ps in plain.values() for p in ps) == sorted(
        p for ps in once.values() for p in ps
    )
    assert len(once) == len(plain) - 1
    shared = [paths for paths in once.values() if len(paths) > 1]
    assert shared == [["layers/vocab/vars/0", "layers/vocab_1/vars/0"]]
    h5 = weights_h5(tmp_path / "once.keras")
    a, b = h5["layers/vocab/vars/0"], h5["layers/vocab_1/vars/0"]
    assert a.id == b.id and h5py.h5o.get_info(a.id).rc == 2
    np.testing.assert_array_equal(a[()], to_numpy(model.get_layer("embed").embeddings))
    # the file shrinks by about one matrix (500 × 32 float32 = 64,000 bytes)
    matrix = 500 * 32 * 4
    before, after = stored.weights_bytes
    assert before - after >= matrix
    saved = (tmp_path / "plain.keras").stat().st_size - (tmp_path / "once.keras").stat().st_size
    assert matrix <= saved < matrix + 4096


def test_the_archive_keeps_its_members_names_order_and_compression(tmp_path: Path) -> None:
    model = tied_lm()
    model.save(tmp_path / "plain.keras")
    weighttie.save_model(model, tmp_path / "once.keras")
    with (
        zipfile.ZipFile(tmp_path / "plain.keras") as plain,
        zipfile.ZipFile(tmp_path / "once.keras") as once,
    ):
        assert [(i.filename, i.compress_type) for i in plain.infolist()] == [
            (i.filename, i.compress_type) for i in once.infolist()
        ]
        assert plain.read("config.json") == once.read("config.json")
        metadata = [json.loads(z.read("metadata.json")) for z in (plain, once)]
        for m in metadata:  # the two saves may fall in different seconds
            m.pop("date_saved")
        assert metadata[0] == metadata[1]


def test_a_model_without_ties_is_written_as_keras_writes_it(tmp_path: Path) -> None:
    model = same_valid_model(tie=False)
    model.save(tmp_path / "plain.keras")
    stored = weighttie.save_model(model, tmp_path / "once.keras")
    assert stored.links == () and stored.copies == ()
    plain = datasets_by_address(weights_h5(tmp_path / "plain.keras"))
    once = datasets_by_address(weights_h5(tmp_path / "once.keras"))
    assert sorted(map(sorted, plain.values())) == sorted(map(sorted, once.values()))
    assert stored.weights_bytes[0] == stored.weights_bytes[1]


def test_a_layer_called_twice_is_saved_once_already_and_nothing_is_linked(
    tmp_path: Path,
) -> None:
    keras.utils.set_random_seed(3)
    dense = layers.Dense(4, name="shared")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], layers.Add()([dense(a), dense(b)]))
    stored = weighttie.save_model(model, tmp_path / "m.keras")
    assert stored.links == ()


def nested_and_recurrent() -> keras.Model:
    """Ties Keras writes deeper in the file: Dense layers inside two nested models, and two
    LSTMs whose variables sit in their cells (``layers/lstm/cell/vars/0`` …)."""
    keras.utils.set_random_seed(4)

    def tower(name: str) -> keras.Model:
        x = keras.Input((6, 2), name=f"{name}_in")
        return keras.Model(x, layers.Dense(2, name=f"{name}_dense")(x), name=name)

    left, right = tower("left"), tower("right")
    seq = keras.Input((6, 2), name="seq")
    forward = layers.LSTM(3, name="forward")
    backward = layers.LSTM(3, go_backwards=True, name="backward")
    weighttie.tie_weights(
        left.get_layer("left_dense"), right.get_layer("right_dense"), keep="source"
    )
    weighttie.tie_weights(forward, backward)
    a, b = left(seq), right(seq)
    merged = layers.Concatenate(name="cat")([forward(a), backward(b)])
    model = keras.Model(seq, layers.Dense(1, name="out")(merged))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    return model


def test_ties_in_nested_models_and_rnn_cells_are_linked_where_keras_wrote_them(
    tmp_path: Path,
) -> None:
    model = nested_and_recurrent()
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 6, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    stored = weighttie.save_model(model, tmp_path / "m.keras")
    h5 = weights_h5(tmp_path / "m.keras")
    shared = sorted(sorted(paths) for paths in datasets_by_address(h5).values() if len(paths) > 1)
    # every linked path names, in the file Keras wrote, a dataset of the other holder
    assert len(shared) == 2 + 3  # Dense kernel and bias; the LSTM cell's three variables
    assert all(len(paths) == 2 for paths in shared)
    assert sorted(sorted([kept, *linked]) for kept, linked in stored.links) == shared
    assert any("/cell/vars/" in paths[0] for paths in shared)
    assert any(paths[0].startswith("layers/functional") for paths in shared)
    for paths in shared:  # one object: the values of the variable both layers hold
        assert h5[paths[0]].id == h5[paths[1]].id
    # the static report from the links alone equals the live one
    bare = without_tie_record(tmp_path / "m.keras", tmp_path / "bare.keras")
    assert sharing(weighttie.read_report(bare)) == sharing(weighttie.analyze(model))
    # weighttie.load_model binds both ties again and restores the optimizer state
    loaded = load_quietly(lambda: weighttie.load_model(tmp_path / "m.keras"))
    assert loaded.get_layer("backward").cell.kernel is loaded.get_layer("forward").cell.kernel
    assert_all_equal(weights_and_slots(loaded), weights_and_slots(model))
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


def test_save_model_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    model = tied_lm()
    weighttie.save_model(model, tmp_path / "once.keras")
    for layer in [model, *model._flatten_layers()]:
        assert "save_own_variables" not in vars(layer)
    model.save(tmp_path / "plain.keras")  # Keras's own save writes both copies again
    assert (
        len(datasets_by_address(weights_h5(tmp_path / "plain.keras")))
        == len(datasets_by_address(weights_h5(tmp_path / "once.keras"))) + 1
    )


def test_datasets_whose_bytes_differ_are_never_linked(tmp_path: Path) -> None:
    from weighttie.store_once import _plan_links

    with h5py.File(tmp_path / "w.h5", "w") as h5:
        h5["a/vars/0"] = np.zeros((3, 2), "float32")
        h5["b/vars/0"] = np.zeros((3, 2), "float32")
        h5["c/vars/0"] = np.array([[0, 0], [0, 0], [0, -0.0]], "float32")  # equal, not same bits
        h5["d/vars/0"] = np.zeros((2, 3), "float32")
        h5["e/vars/0"] = np.zeros((3, 2), "float64")
        links, copies = _plan_links(
            h5, [["a/vars/0", "b/vars/0", "c/vars/0", "d/vars/0", "e/vars/0", "f/vars/0"]]
        )
    assert links == {"b/vars/0": "a/vars/0"}
    assert copies == [["a/vars/0", "c/vars/0", "d/vars/0", "e/vars/0", "f/vars/0"]]


def test_large_datasets_are_compared_to_the_last_bit(tmp_path: Path) -> None:
    """Compared a slice at a time (17 MB here, more than one slice): the last element counts."""
    from weighttie.store_once import _plan_links

    big = np.random.default_rng(0).normal(size=(4200, 1024)).astype("float32")
    last = big.copy()
    last[-1, -1] = np.nextafter(last[-1, -1], np.float32(np.inf))
    with h5py.File(tmp_path / "w.h5", "w") as h5:
        h5["a/vars/0"], h5["b/vars/0"], h5["c/vars/0"] = big, big, last
        links, copies = _plan_links(h5, [["a/vars/0", "b/vars/0", "c/vars/0"]])
    assert links == {"b/vars/0": "a/vars/0"}
    assert copies == [["a/vars/0", "c/vars/0"]]


def test_keras_cannot_save_a_model_to_shards_in_a_keras_file(tmp_path: Path) -> None:
    """docs/store-once.md: Keras 3.15 shards only save_weights(*.weights.json), so a
    .keras file is one weights member and every link stays inside it."""
    model = tied_lm()
    with pytest.raises(ValueError, match="max_shard_size"):
        model.save(tmp_path / "m.keras", max_shard_size=0.001)


# -- loading ---------------------------------------------------------------------------

PLAIN_LOAD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    assert "weighttie" not in sys.modules
    model = keras.saving.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    np.savez(
        sys.argv[3],
        out=keras.ops.convert_to_numpy(model(x)),
        *[keras.ops.convert_to_numpy(v.value) for v in model.weights],
    )
    assert "weighttie" not in sys.modules
    """
)


def test_plain_keras_loads_the_file_in_a_fresh_process(tmp_path: Path) -> None:
    model = same_valid_model()
    fit(model, 1)
    weighttie.save_model(model, tmp_path / "m.keras")
    x = data()[0][:5]
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_LOAD,
            str(tmp_path / "m.keras"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["out"], to_numpy(model(x)))
    # plain Keras gives each layer its own copy: same, valid (the copy), head
    expected = [to_numpy(v.value) for v in model.weights]
    same = model.get_layer("same")
    expected = [to_numpy(same.kernel.value), to_numpy(same.bias.value), *expected]
    saved = [out[f"arr_{i}"] for i in range(len(out.files) - 1)]
    assert len(saved) == len(model.weights) + 2
    assert sorted(a.tobytes() for a in saved) == sorted(a.tobytes() for a in expected)


def test_plain_keras_in_process_gives_equal_copies_and_equal_outputs(tmp_path: Path) -> None:
    model = tied_lm()
    fit_lm(model, 1)
    weighttie.save_model(model, tmp_path / "m.keras")
    plain = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    embed, head = plain.get_layer("embed"), plain.get_layer("head")
    assert embed.embeddings is not head.embeddings
    np.testing.assert_array_equal(to_numpy(embed.embeddings), to_numpy(head.embeddings))
    x = lm_data()[0]
    np.testing.assert_array_equal(to_numpy(plain(x)), to_numpy(model(x)))


@pytest.mark.parametrize("build", ["conv", "lm"])
def test_load_model_reties_and_training_resumes_bit_exactly(tmp_path: Path, build: str) -> None:
    make, train = (same_valid_model, fit) if build == "conv" else (tied_lm, fit_lm)
    straight = make()
    train(straight, 2)

    resumed = make()
    train(resumed, 1)
    saved = weights_and_slots(resumed)
    weighttie.save_model(resumed, tmp_path / "m.keras")
    loaded = load_quietly(lambda: weighttie.load_model(tmp_path / "m.keras"))
    assert_all_equal(weights_and_slots(loaded), saved)  # optimizer state restored too
    if build == "conv":
        assert loaded.get_layer("valid").kernel is loaded.get_layer("same").kernel
    else:
        assert loaded.get_layer("head").embeddings is loaded.get_layer("embed").embeddings
    assert weighttie.analyze(loaded).groups == weighttie.analyze(resumed).groups
    train(loaded, 1)
    assert_all_equal(weights_and_slots(loaded), weights_and_slots(straight))


def test_saving_the_reloaded_model_again_stays_stored_once(tmp_path: Path) -> None:
    model = tied_lm()
    for cycle in range(3):
        path = tmp_path / f"cycle{cycle}.keras"
        weighttie.save_model(model, path)
        assert [len(p) for p in datasets_by_address(weights_h5(path)).values() if len(p) > 1] == [2]
        model = load_quietly(lambda path=path: weighttie.load_model(path))
        fit_lm(model, 1)


# -- the static reader ---------------------------------------------------------------


def without_tie_record(path: Path, out: Path) -> Path:
    """A copy of a .keras file whose config.json carries no weighttie tie record."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "weighttie"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    with zipfile.ZipFile(path) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            payload = old.read(info)
            if info.filename == "config.json":
                payload = json.dumps(strip(json.loads(payload))).encode()
            new.writestr(info, payload)
    assert b'"weighttie":' not in zipfile.ZipFile(out).read("config.json")
    return out


def sharing(report: Report) -> tuple[Any, ...]:
    groups = sorted((g.kind, tuple(sorted(g.layers)), g.params) for g in report.groups)
    p = report.params
    return (tuple(groups), p.unique, p.per_use, p.duplicated)


@pytest.mark.parametrize("build", ["conv", "lm"])
@pytest.mark.parametrize("record", [True, False], ids=["with-record", "links-only"])
def test_static_report_of_the_file_equals_the_live_report(
    tmp_path: Path, build: str, record: bool
) -> None:
    model = same_valid_model() if build == "conv" else tied_lm()
    weighttie.save_model(model, tmp_path / "m.keras")
    path = tmp_path / "m.keras"
    if not record:
        path = without_tie_record(path, tmp_path / "bare.keras")
    static = weighttie.read_report(path)
    live = weighttie.analyze(model)
    assert sharing(static) == sharing(live)
    (group,) = static.groups
    assert group.kind is GroupKind.TIED
    assert static.params.unique == model.count_params()
    assert len(static.variables) == len(model.weights)


def test_a_plain_keras_file_without_the_record_shows_no_tie(tmp_path: Path) -> None:
    """The links are what the static reader sees: the same file saved by Keras, without
    weighttie's record, holds two copies and no tie."""
    model = tied_lm()
    model.save(tmp_path / "m.keras")
    bare = weighttie.read_report(without_tie_record(tmp_path / "m.keras", tmp_path / "b.keras"))
    assert bare.groups == ()
    assert bare.params.unique == model.count_params() + 40 * 8


def hostile_copy(source: Path, out: Path, change: Any) -> Path:
    """A copy of a .keras file whose weights member ``change(h5)`` edited in place."""
    with zipfile.ZipFile(source) as old:
        raw = io.BytesIO(old.read("model.weights.h5"))
        with h5py.File(raw, "r+") as h5:
            change(h5)
        with zipfile.ZipFile(out, "w") as new:
            for info in old.infolist():
                payload = raw.getvalue() if info.filename == "model.weights.h5" else old.read(info)
                new.writestr(info, payload)
    return out


def _group_into_itself(h5: h5py.File) -> None:
    h5["layers/vocab/vars/loop"] = h5["layers/vocab"]  # vars/loop/vars/loop/… forever
    h5["layers/vocab/again"] = h5["layers"]


def _dataset_from_elsewhere(h5: h5py.File) -> None:
    h5["layers/dense/vars/2"] = h5["optimizer/vars/0"]  # the iterations counter
    h5["layers/dense/vars/3"] = h5["layers/vocab/vars/0"]


def _root_everywhere(h5: h5py.File) -> None:
    for i in range(50):
        h5[f"layers/vocab/vars/r{i}"] = h5["/"]


@pytest.mark.parametrize("change", [_group_into_itself, _dataset_from_elsewhere, _root_everywhere])
def test_hostile_hard_links_do_not_loop(tmp_path: Path, change: Any) -> None:
    model = tied_lm()
    fit_lm(model, 1)
    weighttie.save_model(model, tmp_path / "m.keras")
    path = hostile_copy(tmp_path / "m.keras", tmp_path / "bad.keras", change)
    started = time.monotonic()
    try:
        report = weighttie.read_report(path)
    except FileFormatError as exc:  # a refusal is fine; a hang or a crash is not
        assert "\n" not in str(exc)
    else:
        # the tie the links show is still one variable, counted once
        tied = [g for g in report.groups if g.kind is GroupKind.TIED]
        assert tied and {"embed", "head"} <= set(tied[0].layers)
        assert report.params.unique <= model.count_params() + 1
    assert time.monotonic() - started < 20


# -- errors: one clear error, the old file untouched ------------------------------------


@keras.saving.register_keras_serializable(package="weighttie_store_once")
class Unsaveable(layers.Layer):
    """Takes a layer in __init__ and has no get_config: Keras cannot serialize it."""

    def __init__(self, other: layers.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.other = other

    def call(self, x: Any) -> Any:
        return self.other(x)


def unsaveable_model() -> keras.Model:
    x = keras.Input((3,))
    return keras.Model(x, Unsaveable(layers.Dense(2))(x))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_an_unsaveable_model_leaves_the_old_file_untouched(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    target.write_bytes(b"the user's old file")
    with pytest.raises(OutputError, match=r"Keras cannot save model .*nothing was written"):
        weighttie.save_model(unsaveable_model(), target)
    assert target.read_bytes() == b"the user's old file"
    assert leftovers(tmp_path) == []


def test_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"directory .*missing.* does not exist"):
        weighttie.save_model(tied_lm(), tmp_path / "missing" / "m.keras")
    assert not (tmp_path / "missing").exists()


def test_a_directory_target_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "m.keras").mkdir()
    (tmp_path / "m.keras" / "inside").write_text("kept")
    with pytest.raises(OutputError, match="it is a directory"):
        weighttie.save_model(tied_lm(), tmp_path / "m.keras")
    assert (tmp_path / "m.keras" / "inside").read_text() == "kept"
    assert leftovers(tmp_path) == []


def test_a_name_without_keras_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"ending in \.keras"):
        weighttie.save_model(tied_lm(), tmp_path / "m.h5")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="overwrite=True"):
        weighttie.save_model(tied_lm(), target, overwrite=False)
    assert target.read_bytes() == b"old"


def test_a_layer_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"saves a keras\.Model; received Dense"):
        weighttie.save_model(layers.Dense(2), tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_directory_leaves_the_old_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only directories")
    target = tmp_path / "m.keras"
    target.write_bytes(b"old")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="cannot save to"):
            weighttie.save_model(tied_lm(), target)
    finally:
        tmp_path.chmod(0o700)
    assert target.read_bytes() == b"old"


def test_a_name_too_long_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"cannot save to .*name too long"):
        weighttie.save_model(tied_lm(), tmp_path / ("m" * 300 + ".keras"))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "m.keras"
    target.write_bytes(b"old")
    target.chmod(0o640)
    model = tied_lm()
    weighttie.save_model(model, target)
    assert (target.stat().st_mode & 0o777) == 0o640
    assert zipfile.ZipFile(target).namelist() == [
        "metadata.json",
        "config.json",
        "model.weights.h5",
    ]
    assert leftovers(tmp_path) == []
