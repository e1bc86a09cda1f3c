"""One layer object at two places, read from legacy .h5 files (Keras 2 and Keras 3's legacy format).

A legacy .h5 file stores a variable under every layer that holds it, so a layer at
two places (a cell given to two RNN layers, a Dense in TimeDistributed and called
directly, a Dense inside two nested models, a nested model at two places, a
Bidirectional's backward layer also called directly) is stored twice. Each builder
takes the Keras module (Keras 3, or tf_keras for a Keras 2 file) and builds the same
model with it; the oracles are the writing model's ``count_params()`` and live
:func:`weighttie.analyze` on the Keras 3 model (whose uses tests/walk/test_uses_are_reads.py
checks against an eager count of reads). Models that must *not* be merged: towers built
twice with the same inner names, a tower holding a copy of another's weights, two
layers of one name in two nested models.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import pytest

import weighttie
from weighttie.report import Report
from weighttie.static import read_report

k2 = pytest.importorskip("tf_keras")


def shared_cell(k: Any, cell: str = "SimpleRNNCell") -> Any:
    """One cell given to two RNN layers."""
    c = getattr(k.layers, cell)(3, name="cell")
    x = k.Input((5, 2), name="seq")
    a, b = k.layers.RNN(c, name="rnn_a")(x), k.layers.RNN(c, name="rnn_b")(x)
    return k.Model(x, k.layers.Add(name="add")([a, b]))


def wrapped_and_direct(k: Any, direct_first: bool = False) -> Any:
    """A Dense wrapped by TimeDistributed and also called directly (either built first)."""
    proj = k.layers.Dense(6, name="proj")
    x = k.Input((4, 6), name="seq")
    direct = proj(x) if direct_first else None
    wrapped = k.layers.TimeDistributed(proj, name="td")(x)
    return k.Model(x, k.layers.Add(name="add")([wrapped, direct if direct_first else proj(x)]))


def layer_in_two_models(k: Any) -> Any:
    """One Dense inside an encoder and a decoder model."""
    shared = k.layers.Dense(8, name="shared")
    a = k.Input((8,), name="enc_in")
    encoder = k.Model(a, k.layers.Dense(8, name="e2")(shared(a)), name="encoder")
    b = k.Input((8,), name="dec_in")
    decoder = k.Model(b, shared(k.layers.Dense(8, name="d2")(b)), name="decoder")
    x = k.Input((8,), name="x")
    return k.Model(x, decoder(encoder(x)))


def layer_in_a_model_and_outside(k: Any) -> Any:
    """A Dense inside a nested model and called by the outer model too."""
    d = k.layers.Dense(4, name="d")
    i = k.Input((4,), name="m_in")
    inner = k.Model(i, k.layers.Dense(4, name="m_out")(d(i)), name="m")
    x = k.Input((4,), name="x")
    return k.Model(x, k.layers.Add(name="add")([inner(x), d(x)]))


def model_at_two_places(k: Any) -> Any:
    """A nested model called directly and inside another nested model."""
    i = k.Input((5,), name="tw_in")
    hidden = k.layers.Dense(4, name="t_hidden")(i)
    tower = k.Model(i, k.layers.Dense(3, name="t_out")(hidden), name="tw")
    o = k.Input((5,), name="o_in")
    outer = k.Model(o, k.layers.Dense(3, name="o_head")(tower(o)), name="outer")
    x = k.Input((5,), name="x")
    return k.Model(x, k.layers.Concatenate(name="cat")([outer(x), tower(x)]))


def cell_in_a_model_and_outside(k: Any) -> Any:
    """A cell given to an RNN inside a nested model and to an RNN outside it."""
    c = k.layers.SimpleRNNCell(3, name="c")
    i = k.Input((5, 2), name="m_in")
    inner = k.Model(i, k.layers.RNN(c, name="r_in")(i), name="m")
    x = k.Input((5, 2), name="seq")
    return k.Model(x, k.layers.Add(name="add")([inner(x), k.layers.RNN(c, name="r_out")(x)]))


def bidirectional_given(k: Any, direct_first: bool = False) -> Any:
    """A Bidirectional given a backward GRU that is also called directly."""
    back = k.layers.GRU(3, go_backwards=True, name="back")
    x = k.Input((4, 2), name="seq")
    direct = back(x) if direct_first else None
    bi = k.layers.Bidirectional(k.layers.GRU(3, name="fwd"), backward_layer=back, name="bi")
    y = bi(x)
    return k.Model(x, k.layers.Concatenate(name="cat")([y, direct if direct_first else back(x)]))


def bidirectional_in_two_models(k: Any) -> Any:
    """One Bidirectional layer inside two nested models."""
    bi = k.layers.Bidirectional(k.layers.GRU(3, name="g"), name="bi")
    a = k.Input((4, 2), name="a_in")
    b = k.Input((4, 2), name="b_in")
    m1, m2 = k.Model(a, bi(a), name="m1"), k.Model(b, bi(b), name="m2")
    x = k.Input((4, 2), name="x")
    return k.Model(x, k.layers.Add(name="add")([m1(x), m2(x)]))


def _tower(k: Any, name: str) -> Any:
    i = k.Input((5,), name=f"{name}_in")
    hidden = k.layers.Dense(4, name="t_hidden")(i)
    return k.Model(i, k.layers.Dense(3, name="t_out")(hidden), name=name)


def twins_same_names(k: Any) -> Any:
    """Two towers built alike, with the same inner names: separate variables."""
    ta, tb = _tower(k, "ta"), _tower(k, "tb")
    a, b = k.Input((5,), name="a"), k.Input((5,), name="b")
    return k.Model([a, b], k.layers.Add(name="add")([ta(a), tb(b)]))


def copied_tower(k: Any) -> Any:
    """A tower and another holding a copy of its weights: equal values, same names."""
    ta, tb = _tower(k, "ta"), _tower(k, "tb")
    tb.set_weights(ta.get_weights())
    a, b = k.Input((5,), name="a"), k.Input((5,), name="b")
    return k.Model([a, b], k.layers.Add(name="add")([ta(a), tb(b)]))


def same_name_in_two_models(k: Any) -> Any:
    """Two Dense layers of one name, one in each of two nested models."""
    a = k.Input((8,), name="enc_in")
    encoder = k.Model(a, k.layers.Dense(8, name="shared")(a), name="encoder")
    b = k.Input((8,), name="dec_in")
    decoder = k.Model(b, k.layers.Dense(8, name="shared")(b), name="decoder")
    x = k.Input((8,), name="x")
    return k.Model(x, decoder(encoder(x)))


#: One layer object at two places: name → builder.
AGAIN: dict[str, Callable[[Any], Any]] = {
    "shared-simple-rnn-cell": shared_cell,
    "shared-gru-cell": lambda k: shared_cell(k, "GRUCell"),
    "wrapped-and-direct": wrapped_and_direct,
    "direct-then-wrapped": lambda k: wrapped_and_direct(k, direct_first=True),
    "layer-in-two-models": layer_in_two_models,
    "layer-in-a-model-and-outside": layer_in_a_model_and_outside,
    "model-at-two-places": model_at_two_places,
    "cell-in-a-model-and-outside": cell_in_a_model_and_outside,
    "bidirectional-given": bidirectional_given,
    "bidirectional-given-built-first": lambda k: bidirectional_given(k, direct_first=True),
    "bidirectional-in-two-models": bidirectional_in_two_models,
}
#: Not one layer object: name → builder.
APART: dict[str, Callable[[Any], Any]] = {
    "twins-same-names": twins_same_names,
    "copied-tower": copied_tower,
    "same-name-in-two-models": same_name_in_two_models,
}
#: Patterns a Keras 3 legacy .h5 cannot tell from copies: its weight names are those of
#: two layers of one name (no scope of another layer), and it marks no shared object.
KERAS3_CANNOT_TELL = {
    "layer-in-two-models",
    "layer-in-a-model-and-outside",
    "model-at-two-places",
    "bidirectional-in-two-models",
}
UNKNOWN = "does not say whether"


def _save(model: Any, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    return path


def _groups(report: Report) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((g.kind.value, g.layers) for g in report.groups)


def _keras2_paths(groups: list[tuple[str, tuple[str, ...]]]) -> list[Any]:
    """Keras 2 renames the backward layer a Bidirectional is given ``backward_<name>``."""
    rename = {"back": "backward_back"}
    return sorted(
        (kind, tuple(sorted("/".join(rename.get(p, p) for p in path.split("/")) for path in ps)))
        for kind, ps in groups
    )


@pytest.mark.parametrize("name", sorted(AGAIN))
def test_keras2_file_counts_one_layer_at_two_places(name: str, tmp_path: Path) -> None:
    """tf_keras: stored weight names (a cell, a wrapper, a Bidirectional's backward layer)
    or shared_object_id marks (nested models) say which copies are one variable."""
    k2.utils.set_random_seed(0)
    legacy = AGAIN[name](k2)
    static = read_report(_save(legacy, tmp_path / "m.h5"))
    live = weighttie.analyze(AGAIN[name](keras))
    assert static.params.unique == legacy.count_params() == live.params.unique
    assert static.params.per_use == live.params.per_use
    assert _groups(static) == _keras2_paths(_groups(live))
    assert not static.findings
    (note,) = static.model.notes
    assert "stores a variable under every layer that holds it" in note


@pytest.mark.parametrize("name", sorted(AGAIN))
def test_keras3_legacy_file_counts_it_or_says_unknown(name: str, tmp_path: Path) -> None:
    """Keras 3's legacy .h5: names tell cells, wrappers and a Bidirectional's backward
    layer; a layer inside two nested models they cannot: uses unknown, with a note."""
    keras.utils.set_random_seed(0)
    model = AGAIN[name](keras)
    live = weighttie.analyze(model)
    static = read_report(_save(model, tmp_path / "m.h5"))
    assert static.params.trainable_unique + static.params.non_trainable_unique == (
        static.params.unique
    )
    if name in KERAS3_CANNOT_TELL:
        (note,) = static.model.notes
        assert UNKNOWN in note
        assert static.params.per_use is None and not static.groups and not static.findings
        extra = static.params.unique - model.count_params()
        assert extra > 0 and f"unique is {extra:,} lower" in note
        return
    assert static.params == live.params
    assert _groups(static) == _groups(live)
    assert [(v.path, v.layers, v.uses) for v in static.variables] == [
        (v.path, v.layers, v.uses) for v in live.variables
    ]


@pytest.mark.parametrize("name", sorted(APART))
def test_layers_of_one_name_are_not_merged(name: str, tmp_path: Path) -> None:
    """Towers built twice, a tower holding a copy, two layers of one name: separate
    variables from a Keras 2 file (no shared_object_id mark) with the live findings;
    from a Keras 3 legacy .h5 separate too, and where the copies are equal the file
    cannot tell a copy from one layer: a note, and no finding either way."""
    k2.utils.set_random_seed(0)
    legacy = APART[name](k2)
    keras.utils.set_random_seed(0)
    model = APART[name](keras)
    if name == "copied-tower":  # the same values in both files
        model.set_weights(legacy.get_weights())
    live = weighttie.analyze(model)
    findings = sorted((f.kind.value, f.layers) for f in live.findings)
    from_keras2 = read_report(_save(legacy, tmp_path / "k2.h5"))
    assert from_keras2.params == live.params and not from_keras2.groups
    assert sorted((f.kind.value, f.layers) for f in from_keras2.findings) == findings
    assert from_keras2.model.notes == ()
    from_keras3 = read_report(_save(model, tmp_path / "k3.h5"))
    assert from_keras3.params.unique == model.count_params() and not from_keras3.groups
    if name == "copied-tower":
        (note,) = from_keras3.model.notes
        tower = model.get_layer("ta").count_params()
        assert UNKNOWN in note and f"unique is {tower:,} lower" in note
        assert from_keras3.params.per_use is None and not from_keras3.findings
    else:
        assert from_keras3.params == live.params and from_keras3.model.notes == ()
        assert sorted((f.kind.value, f.layers) for f in from_keras3.findings) == findings


def test_copies_whose_values_differ_are_separate(tmp_path: Path) -> None:
    """A file whose two copies of a shared cell's kernel were made to differ: the names
    say one variable, the values say two; counted as two, with a note."""
    k2.utils.set_random_seed(0)
    model = shared_cell(k2)
    path = _save(model, tmp_path / "m.h5")
    with h5py.File(path, "r+") as h5:
        dataset = h5["model_weights/rnn_b/rnn_a/cell/kernel:0"]
        dataset[...] = np.asarray(dataset) + 1
    static = read_report(path)
    kernel = int(np.prod(model.get_layer("rnn_a").cell.kernel.shape))
    assert static.params.unique == model.count_params() + kernel
    assert any("hold different values" in note for note in static.model.notes)
    assert [g.layers for g in static.groups] == [("rnn_a/cell", "rnn_b/cell")]


def test_copies_are_merged_with_findings_off(tmp_path: Path) -> None:
    """The copies' values are compared whether or not findings are looked for."""
    k2.utils.set_random_seed(0)
    model = layer_in_two_models(k2)
    path = _save(model, tmp_path / "m.h5")
    assert read_report(path, findings=False).params == read_report(path).params
    assert read_report(path, findings=False).params.unique == model.count_params()


def test_the_examples_of_the_copies_module_hold() -> None:
    """placed_name's examples: where a weight another layer's scope starts sits."""
    import doctest

    from weighttie.static import legacy_copies

    assert doctest.testmod(legacy_copies).failed == 0


class _K2TiedHead(k2.layers.Layer):
    """A Keras 2 head computing with an Embedding's matrix, keeping the Embedding."""

    def __init__(self, embedding, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.embedding = embedding

    def call(self, x):  # type: ignore[no-untyped-def]
        import tensorflow as tf

        return tf.matmul(x, self.embedding.embeddings, transpose_b=True)

    def get_config(self):  # type: ignore[no-untyped-def]
        return {**super().get_config(), "embedding": k2.layers.serialize(self.embedding)}


def test_a_keras2_custom_head_holding_an_embedding_counts_it_once(tmp_path: Path) -> None:
    """The head's group lists the embedding's matrix under the embedding's name: one
    variable (count_params), read by the head as its own call decides: unknown."""
    k2.utils.set_random_seed(0)
    embedding = k2.layers.Embedding(20, 4, name="tok")
    tokens = k2.Input((5,), dtype="int32", name="tokens")
    h = k2.layers.Dense(4, name="mix")(embedding(tokens))
    model = k2.Model(tokens, _K2TiedHead(embedding, name="head")(h))
    static = read_report(_save(model, tmp_path / "m.h5"))
    assert static.params.unique == model.count_params()
    assert static.params.per_use is None and not static.findings
    assert any("'head'" in note and "may run or read" in note for note in static.model.notes)
    (matrix,) = [v for v in static.variables if v.path.endswith("/embeddings")]
    assert matrix.layers == ("head/tok", "tok") and matrix.uses is None
