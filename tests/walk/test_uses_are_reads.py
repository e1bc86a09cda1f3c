"""Uses are reads: sharing that no graph call shows, counted live, from files, or said unknown.

The oracle is an eager pass on real data counting TensorFlow's reads of each variable
per innermost layer call (tests/support/eager_reads.py); Keras's ``count_params`` is the oracle
for unique counts. The patterns are the zoo's ``READS`` (docs/concepts.md).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import weighttie
from support import zoo
from support.eager_reads import oracle_counts
from weighttie.static import read_report

pytest.importorskip("tensorflow")

#: The group each pattern is, by kind and layers: the decision docs/concepts.md states.
GROUPS = {
    "shared_simple_rnn_cell": ("shared-layer", ("rnn_a/cell", "rnn_b/cell")),
    "shared_gru_cell": ("shared-layer", ("rnn_a/cell", "rnn_b/cell")),
    "wrapped_and_direct": ("shared-layer", ("proj", "td/proj")),
    "tied_head_reads_embeddings": ("read-shared", ("tied_out", "tok")),
    "transposed_decoder": ("read-shared", ("dec", "enc")),
    "calls_through_call": ("shared-layer", ("co/d", "d")),
    "layer_in_two_nested_models": ("shared-layer", ("decoder/shared", "encoder/shared")),
}
#: The patterns whose file says which layer is which (the same object saved once).
STATIC_KNOWS = {
    "shared_simple_rnn_cell",
    "shared_gru_cell",
    "wrapped_and_direct",
    "layer_in_two_nested_models",
}
#: The custom layer whose call the file cannot see into, per other pattern.
CUSTOM = {
    "tied_head_reads_embeddings": "tied_out",
    "transposed_decoder": "dec",
    "calls_through_call": "co",
}


@pytest.mark.parametrize("name", sorted(zoo.READS))
def test_live_uses_are_the_reads_of_an_eager_pass(name: str) -> None:
    model = zoo.READS[name]()
    report = weighttie.analyze(model)
    uses, per_use = oracle_counts(model, report)
    assert {v.path: v.uses for v in report.variables} == uses
    assert report.params.unique == model.count_params()
    assert report.params.per_use == per_use
    assert report.params.duplicated == per_use - model.count_params() > 0
    assert sum(row.params.per_use or 0 for row in report.layers) == per_use
    assert [(g.kind.value, g.layers) for g in report.groups] == [GROUPS[name]]
    (group,) = report.groups
    assert group.duplicated == report.params.duplicated
    assert not report.findings
    # the rows that hold the variables and the rows that read them
    shared = {v.path for v in report.variables if v.uses and v.uses > 1}
    assert shared == set(group.variables)


def test_a_head_reading_the_embeddings_is_a_reader_of_them() -> None:
    report = weighttie.analyze(zoo.tied_head_reads_embeddings())
    embeddings = report.variable("tok/embeddings")
    assert embeddings.layers == ("tied_out/tok", "tok")  # held by the embedding, at two paths
    assert embeddings.read_by == ("tied_out", "tok")  # read by the embedding and the head
    assert report.layer("tied_out/tok").uses == 0  # the head holds the embedding, never runs it
    assert report.layer("tied_out").params.held == 0
    assert report.layer("tied_out").params.per_use == embeddings.size


def test_a_decoder_reading_the_kernel_reads_the_kernel_only() -> None:
    report = weighttie.analyze(zoo.transposed_decoder())
    assert (report.variable("enc/kernel").uses, report.variable("enc/bias").uses) == (2, 1)
    (group,) = report.groups
    assert group.variables == ("enc/kernel",)


@pytest.mark.parametrize("name", sorted(zoo.READS))
def test_static_is_right_or_says_unknown(name: str, tmp_path: Path) -> None:
    model = zoo.READS[name]()
    live = weighttie.analyze(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    static = read_report(path)
    assert static.params.unique == model.count_params()
    assert static.params.trainable_unique == live.params.trainable_unique
    if name in STATIC_KNOWS:
        assert static.params.per_use == live.params.per_use
        assert {v.path: v.uses for v in static.variables} == {
            v.path: v.uses for v in live.variables
        }
        assert [(g.kind, g.layers) for g in static.groups] == [
            (g.kind, g.layers) for g in live.groups
        ]
        (note,) = static.model.notes
        assert "one layer object sits at two places" in note and "Keras rebuilds" in note
        assert all(row.params.held or not row.variables for row in static.layers)
    else:
        assert static.params.per_use is None and static.params.duplicated is None
        (note,) = static.model.notes
        assert f"{CUSTOM[name]!r}" in note and "may run or read" in note
        for v in static.variables:  # never a confident number for what the head may read
            assert v.uses is None or v.uses == live.variable(v.path).uses


def test_the_loaded_model_agrees_where_keras_can_load_it(tmp_path: Path) -> None:
    for name in sorted(set(zoo.READS) - STATIC_KNOWS):
        model = zoo.READS[name]()
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = weighttie.report_of(path, load=True)
        live = weighttie.analyze(model)
        assert loaded.params == live.params, name
        assert [(g.kind, g.layers) for g in loaded.groups] == [
            (g.kind, g.layers) for g in live.groups
        ]


@keras.saving.register_keras_serializable(package="weighttie_tests")
class Distances(keras.layers.Layer):
    """The keras.io triplet example's DistanceLayer: two tensors out."""

    def call(self, anchor: object, positive: object, negative: object) -> object:
        ap = keras.ops.sum(keras.ops.square(anchor - positive), -1)
        an = keras.ops.sum(keras.ops.square(anchor - negative), -1)
        return ap, an


def test_a_custom_layer_returning_two_tensors_has_two_outputs_statically(tmp_path: Path) -> None:
    embed = keras.layers.Dense(4, name="embed")
    inputs = [keras.Input((3,), name=n) for n in ("anchor", "positive", "negative")]
    distances = Distances(name="distance")(*[embed(x) for x in inputs])
    model = keras.Model(inputs, distances, name="triplet")
    model.save(tmp_path / "triplet.keras")
    static = read_report(tmp_path / "triplet.keras")
    (node,) = static.layer("distance").nodes or ()
    assert (
        len(node.output_shapes)
        == 2
        == len(weighttie.analyze(model).layer("distance").nodes[0].output_shapes)
    )
    assert static.params.per_use == weighttie.analyze(model).params.per_use
    np.testing.assert_equal(static.layer("embed").uses, 3)
