"""analyze(model) on the zoo: counts, uses, groups and per-call facts."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import weighttie
from support import zoo
from weighttie import GroupKind, InboundRef


def _weight_size(variables: list[keras.Variable]) -> int:
    return sum(math.prod(v.shape) for v in variables)


def check_invariants(model: keras.Model, report: weighttie.Report) -> None:
    """What must hold for every model, whatever it is."""
    p = report.params
    assert p.unique == model.count_params()
    assert p.trainable_unique == _weight_size(model.trainable_weights)
    assert p.non_trainable_unique == _weight_size(model.non_trainable_weights)
    assert p.duplicated == p.per_use - p.unique >= 0
    # per-layer rows add up to the totals
    assert sum(r.params.unique for r in report.layers) == p.unique
    assert sum(r.params.per_use for r in report.layers) == p.per_use
    # every variable of the model once, each with its size and at least one holder
    assert len(report.variables) == len(model.weights)
    assert sum(v.size for v in report.variables) == p.unique
    assert sum(v.size * v.uses for v in report.variables) == p.per_use
    assert all(v.layers for v in report.variables)
    # deterministic order
    assert [r.path for r in report.layers] == sorted(r.path for r in report.layers)
    assert [v.path for v in report.variables] == sorted(v.path for v in report.variables)
    # node indices count 0, 1, 2 … per layer
    for row in report.layers:
        if row.nodes is not None:
            assert [n.index for n in row.nodes] == list(range(len(row.nodes)))


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_invariants_hold_on_every_zoo_model(name: str) -> None:
    model = zoo.ZOO[name]()
    check_invariants(model, weighttie.analyze(model))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo.APPLICATIONS))
def test_invariants_hold_on_keras_applications(name: str) -> None:
    model = zoo.APPLICATIONS[name]()
    report = weighttie.analyze(model)
    check_invariants(model, report)
    assert report.groups == ()
    assert report.params.duplicated == 0
    assert len(report.layers) == len(model.layers)


def test_siamese_lstm_has_one_shared_layer_group() -> None:
    model = zoo.siamese_lstm()
    report = weighttie.analyze(model)
    lstm = model.get_layer("lstm")
    (group,) = report.groups
    assert group.kind is GroupKind.SHARED_LAYER
    assert group.layers == ("lstm",)
    assert group.calls == 2
    assert group.params == lstm.count_params()
    assert group.duplicated == lstm.count_params()
    assert group.variables == (
        "lstm/lstm_cell/bias",
        "lstm/lstm_cell/kernel",
        "lstm/lstm_cell/recurrent_kernel",
    )
    assert report.params.duplicated == lstm.count_params()
    row = report.layer("lstm")
    assert row.uses == 2
    assert [n.inbound for n in row.nodes] == [
        (InboundRef("left", 0, 0),),
        (InboundRef("right", 0, 0),),
    ]
    assert [n.output_shapes for n in row.nodes] == [((None, 8),), ((None, 8),)]
    assert [n.input_shapes for n in row.nodes] == [((None, None, 6),), ((None, None, 6),)]
    # the cell is a sublayer: its calls are unknown, its variables run twice
    cell = report.layer("lstm/lstm_cell")
    assert cell.nodes is None
    assert cell.uses == 2
    assert {v.uses for v in report.variables if v.path.startswith("lstm/")} == {2}


def test_siamese_tower_has_one_group_for_the_model_not_per_layer() -> None:
    model = zoo.siamese_tower()
    report = weighttie.analyze(model)
    tower = model.get_layer("tower")
    (group,) = report.groups
    assert group.kind is GroupKind.SHARED_MODEL
    assert group.layers == ("tower",)
    assert group.params == tower.count_params()
    assert group.duplicated == tower.count_params()
    assert len(group.variables) == len(tower.weights)
    assert report.layer("tower/tower_conv").uses == 2
    assert report.params.per_use == model.count_params() + tower.count_params()
    # BatchNormalization's moving statistics are non-trainable but still shared
    bn = model.get_layer("tower").get_layer("tower_bn")
    assert report.params.non_trainable_unique == _weight_size(bn.non_trainable_weights)


def test_twin_towers_share_nothing() -> None:
    model = zoo.twin_towers()
    report = weighttie.analyze(model)
    assert report.groups == ()
    assert report.params.duplicated == 0
    towers = model.get_layer("tower_a").count_params() + model.get_layer("tower_b").count_params()
    assert towers == 2 * model.get_layer("tower_a").count_params()
    assert report.params.unique == towers + model.get_layer("score").count_params()


def test_cloned_tower_with_equal_values_is_not_shared() -> None:
    report = weighttie.analyze(zoo.cloned_tower())
    assert report.groups == ()
    assert report.params.duplicated == 0


def test_one_conv_on_two_input_sizes_reports_both_calls() -> None:
    model = zoo.conv_two_sizes()
    row = weighttie.analyze(model).layer("conv")
    assert [n.input_shapes for n in row.nodes] == [((None, 32, 32, 3),), ((None, 64, 64, 3),)]
    assert [n.output_shapes for n in row.nodes] == [((None, 30, 30, 5),), ((None, 62, 62, 5),)]
    assert [n.inbound for n in row.nodes] == [
        (InboundRef("small", 0, 0),),
        (InboundRef("large", 0, 0),),
    ]
    # downstream layers point at the right call of conv
    report = weighttie.analyze(model)
    assert report.layer("pool_1").nodes[0].inbound == (InboundRef("conv", 1, 0),)


def test_multi_io_shares_nothing_and_lists_every_layer() -> None:
    model = zoo.multi_io()
    report = weighttie.analyze(model)
    assert report.groups == ()
    assert report.params.duplicated == 0
    assert {r.path for r in report.layers if r.nodes is not None} == {
        layer.name for layer in model.layers
    }
    assert report.layer("merge").nodes[0].inbound == (
        InboundRef("lstm", 0, 0),
        InboundRef("meta", 0, 0),
    )


def test_sequential_counts_and_nodes() -> None:
    model = zoo.sequential()
    report = weighttie.analyze(model)
    assert report.groups == ()
    assert report.layer("out").nodes[0].output_shapes == ((None, 2),)
    assert report.layer("lstm").nodes[0].input_shapes == ((None, 7, 3),)
    assert report.layer("dropout").params.held == 0  # seed state is not a weight


def test_subclassed_model_has_counts_but_unknown_calls() -> None:
    model = zoo.subclassed()
    report = weighttie.analyze(model)
    assert {r.path for r in report.layers} == {"hidden", "norm", "out"}
    assert all(r.nodes is None for r in report.layers)
    assert all(r.uses == 1 for r in report.layers)
    assert report.groups == ()
    assert report.to_dict()["layers"][0]["nodes"] is None


def test_nested_model_inside_nested_model_both_called_twice() -> None:
    model = zoo.nested_twice()
    report = weighttie.analyze(model)
    dense = model.get_layer("outer").get_layer("inner").get_layer("dense")
    size = dense.count_params()
    assert report.layer("outer/inner/dense").uses == 4
    assert report.params.per_use == 4 * size
    assert report.params.duplicated == 3 * size
    outer, inner = report.groups
    assert (outer.kind, outer.layers, outer.calls, outer.duplicated) == (
        GroupKind.SHARED_MODEL,
        ("outer",),
        2,
        size,
    )
    assert (inner.kind, inner.layers, inner.calls, inner.duplicated) == (
        GroupKind.SHARED_MODEL,
        ("outer/inner",),
        2,
        2 * size,
    )
    assert sum(g.duplicated for g in report.groups) == report.params.duplicated
    # node indices inside the nested graph are that graph's own
    assert report.layer("outer/add").nodes[0].inbound == (
        InboundRef("outer/inner", 0, 0),
        InboundRef("outer/inner", 1, 0),
    )


def test_layer_shared_with_another_model_brings_only_this_models_call() -> None:
    model = zoo.shared_with_other_model()
    dense = model.get_layer("shared_dense")
    assert len(dense._inbound_nodes) == 2  # one call belongs to the other model
    row = weighttie.analyze(model).layer("shared_dense")
    assert len(row.nodes) == 1
    assert row.nodes[0].inbound == (InboundRef("x", 0, 0),)
    assert row.uses == 1
    assert weighttie.analyze(model).groups == ()


def test_tied_embeddings_form_a_tied_group() -> None:
    model = zoo.tied_embeddings()
    report = weighttie.analyze(model)
    (group,) = report.groups
    embedding = model.get_layer("embedding").embeddings
    assert group.kind is GroupKind.TIED
    assert group.layers == ("embedding", "logits")
    assert group.variables == ("embedding/embeddings",)
    assert group.params == math.prod(embedding.shape)
    assert group.duplicated == math.prod(embedding.shape)
    assert report.variable("embedding/embeddings").uses == 2
    # TiedOutput tracks the Embedding it borrows from: a reference, not a call
    assert report.layer("logits/embedding").uses == 0


def test_weightless_reuse_and_raw_ops_share_nothing() -> None:
    model = zoo.weightless_reuse()
    report = weighttie.analyze(model)
    assert report.groups == ()
    assert len(report.layer("relu").nodes) == 2
    op_rows = [r for r in report.layers if r.class_name == "Add"]
    assert len(op_rows) == 1
    assert op_rows[0].nodes[0].inbound == (InboundRef("relu", 0, 0), InboundRef("relu", 1, 0))


def test_unbuilt_model_is_a_clear_error() -> None:
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(weighttie.ModelNotBuiltError, match=r"not built"):
        weighttie.analyze(model)


def test_analyze_rejects_what_is_not_a_layer() -> None:
    with pytest.raises(weighttie.WeighttieError, match=r"expects a keras\.Model"):
        weighttie.analyze("model.keras")


def test_non_trainable_model_counts_no_trainable_params() -> None:
    model = zoo.siamese_lstm()
    model.trainable = False
    report = weighttie.analyze(model)
    assert report.params.trainable_unique == 0
    assert report.params.non_trainable_unique == model.count_params()


def test_node_output_returns_the_symbolic_output_of_that_call() -> None:
    model = zoo.siamese_lstm()
    right = weighttie.node_output(model, "lstm", 1)
    assert weighttie.node_input(model, "lstm", 1) is model.inputs[1]
    encoder = keras.Model(model.inputs[1], right)
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    np.testing.assert_allclose(
        encoder.predict(x, verbose=0),
        keras.ops.convert_to_numpy(model.get_layer("lstm")(x)),
        rtol=1e-6,
    )
    assert weighttie.node_output(model, "lstm", 0) is not right


def test_node_output_errors_name_the_valid_indices() -> None:
    model = zoo.siamese_lstm()
    with pytest.raises(weighttie.WeighttieError, match=r"2 call\(s\).*0 to 1.*index=2"):
        weighttie.node_output(model, "lstm", 2)
    with pytest.raises(weighttie.LayerNotFoundError, match="no layer named 'nope'"):
        weighttie.node_output(model, "nope")
    with pytest.raises(weighttie.WeighttieError, match="no recorded calls"):
        weighttie.node_output(model, "lstm/lstm_cell")


def test_report_layer_lookup_by_name_path_and_errors() -> None:
    report = weighttie.analyze(zoo.twin_towers())
    assert report.layer("tower_a/tower_a_conv").class_name == "Conv2D"
    assert report.layer("tower_a_conv").path == "tower_a/tower_a_conv"
    with pytest.raises(weighttie.LayerNotFoundError, match="no layer named 'missing'"):
        report.layer("missing")


def test_ambiguous_name_asks_for_the_path() -> None:
    # Two nested models may each hold a layer named "proj": a bare name is ambiguous.
    keras.utils.set_random_seed(0)
    towers = []
    for tower_name in ("right_tower", "left_tower"):
        x = keras.Input((3,), name=f"{tower_name}_in")
        towers.append(keras.Model(x, keras.layers.Dense(2, name="proj")(x), name=tower_name))
    a = keras.Input((3,), name="a")
    model = keras.Model(a, keras.layers.Add()([towers[0](a), towers[1](a)]))
    report = weighttie.analyze(model)
    assert report.layer("left_tower/proj").class_name == "Dense"
    with pytest.raises(
        weighttie.LayerNotFoundError,
        match="'proj' is ambiguous: it matches left_tower/proj, right_tower/proj;",
    ):
        report.layer("proj")
    with pytest.raises(weighttie.LayerNotFoundError, match="ambiguous"):
        weighttie.node_output(model, "proj")


# -- uses from real calls -------------------------------------------------


def _eager_calls(model: keras.Model, layer: keras.Layer, data: object) -> int:
    """How many times ``layer`` runs when ``model`` runs eagerly on ``data`` (the oracle)."""
    original = layer.call
    calls = 0

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    object.__setattr__(layer, "call", counting)
    try:
        model(data)
    finally:
        object.__delattr__(layer, "call")
    return calls


class CallsAgain(keras.layers.Layer):
    """Calls a layer it holds, which the graph also calls (BertMaskedLM's head, in small)."""

    def __init__(self, inner: keras.layers.Layer, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, x: object) -> object:
        return self.inner(x)


class TwiceAndUnused(keras.Model):
    """A subclassed model calling one Dense twice and holding one it never calls."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4, name="dense")
        self.spare = keras.layers.Dense(4, name="spare")
        self.broken = False

    def build(self, input_shape: object) -> None:
        self.spare.build(input_shape)
        super().build(input_shape)

    def call(self, x: object) -> object:
        if self.broken:
            raise RuntimeError("this call fails once the test breaks it")
        return self.dense(self.dense(x))


def test_a_layer_called_inside_another_layers_call_runs_there_too() -> None:
    """Issue 12: a sublayer also called in the graph was a 0-use reference (OPT, BERT MLM)."""
    keras.utils.set_random_seed(12)
    dense = keras.layers.Dense(4, name="dense")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, CallsAgain(dense, name="again")(dense(x)), name="calls_again")
    report = weighttie.analyze(model)
    runs = _eager_calls(model, dense, np.ones((2, 4), "float32"))
    assert runs == 2
    assert report.variable("again/dense/kernel").uses == runs  # named after its first holder
    assert report.layer("again/dense").uses == 1
    (group,) = report.groups
    assert (group.kind, group.layers, group.calls) == (
        GroupKind.SHARED_LAYER,
        ("again/dense", "dense"),
        2,
    )
    assert group.duplicated == report.params.duplicated == dense.count_params()
    assert report.params.unique == model.count_params()


def test_a_subclassed_model_calling_a_layer_twice_uses_it_twice() -> None:
    """Calls inside a subclassed model were unknown and counted once; an unused layer, once."""
    keras.utils.set_random_seed(12)
    model = TwiceAndUnused(name="twice")
    model(np.ones((1, 4), "float32"))
    report = weighttie.analyze(model)
    assert _eager_calls(model, model.dense, np.ones((1, 4), "float32")) == 2
    assert report.layer("dense").uses == 2
    assert report.layer("spare").uses == 0  # held, built, never called
    assert report.layer("dense").nodes is None  # the calls' shapes and wiring stay unknown
    (group,) = report.groups
    assert (group.layers, group.calls, group.duplicated) == (
        ("dense",),
        2,
        model.dense.count_params(),
    )
    assert report.params.unique == model.count_params()


def test_a_model_that_cannot_be_traced_says_unknown_with_a_warning_and_a_note() -> None:
    """No crash, no invented number: a custom model's layers run an unknown number of
    times, a warning says why, and the report's note too."""
    keras.utils.set_random_seed(12)
    model = TwiceAndUnused(name="twice")
    model(np.ones((1, 4), "float32"))
    model.broken = True
    with pytest.warns(UserWarning, match=r"could not trace a symbolic call of 'twice' \(Runtime"):
        report = weighttie.analyze(model)
    assert (report.layer("dense").uses, report.layer("spare").uses) == (None, None)
    assert report.params.per_use is None and report.params.duplicated is None
    assert report.params.unique == model.count_params()
    (note,) = report.model.notes
    assert note.startswith("the symbolic call that counts what each layer runs and reads failed")


def test_layers_run_in_a_loop_count_once_per_call_of_their_parent() -> None:
    """TimeDistributed runs its layer's ``call`` per time step (not ``__call__``), an RNN its
    cell in a loop: both stay one run per call, as before the trace."""
    keras.utils.set_random_seed(12)
    x = keras.Input((5, 3), name="x")
    steps = keras.layers.TimeDistributed(keras.layers.Dense(2, name="dense"), name="steps")
    both = keras.layers.Bidirectional(keras.layers.LSTM(2, name="lstm"), name="both")
    model = keras.Model(x, both(steps(x)), name="loops")
    report = weighttie.analyze(model)
    uses = {r.path: r.uses for r in report.layers if r.params.held}
    assert set(uses.values()) == {1}
    assert "steps/dense" in uses and "both/forward_lstm/lstm_cell" in uses
    assert report.params.per_use == report.params.unique == model.count_params()


class NeedsData(keras.layers.Layer):
    """Reads its input's values: fine on data, impossible in a symbolic pass (TF, JAX)."""

    def call(self, x: object) -> object:
        return x + float(np.asarray(x).sum()) * 0


class HoldsNeedsData(keras.layers.Layer):
    """A layer whose call calls a Dense and a NeedsData; it states its output shape, so a
    functional model can hold it without tracing its call."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")
        self.needs_data = NeedsData(name="needs_data")

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.dense.build(input_shape)

    def call(self, x: object) -> object:
        return self.needs_data(self.dense(x))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], 3)


def test_a_layer_failing_symbolically_is_named_in_the_warning() -> None:
    if keras.config.backend() == "torch":
        pytest.skip("torch's symbolic pass retries on real tensors, where this layer works")
    x = keras.Input((3,), name="x")
    model = keras.Model(x, HoldsNeedsData(name="holder")(x), name="needs_data_model")
    with pytest.warns(UserWarning) as caught:
        report = weighttie.analyze(model)
    (message,) = [str(w.message) for w in caught if "weighttie" in str(w.message)]
    assert message.startswith("weighttie could not trace a symbolic call of 'needs_data_model' (")
    if keras.config.backend() == "tensorflow":  # JAX's tracer error hides the inner call
        assert "in NeedsData.call(): Cannot convert a symbolic tf.Tensor" in message
    assert "\n" not in message and "\x1b" not in message
    # a custom layer's sublayers: its call decides how often they run, unknown here
    inside = [(r.path, r.uses) for r in report.layers if r.path.startswith("holder/")]
    assert inside == [("holder/dense", None), ("holder/needs_data", None)]
    assert report.params.unique == model.count_params() and report.params.per_use is None


class CallsCallDirectly(keras.layers.Layer):
    """Runs its Dense's ``call`` itself, past ``Layer.__call__``."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, name="dense")

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.dense.build(input_shape)

    def call(self, x: object) -> object:
        return self.dense.call(self.dense.call(x))


def test_a_sublayer_whose_call_is_run_directly_is_counted() -> None:
    keras.utils.set_random_seed(12)
    x = keras.Input((3,), name="x")
    holder = CallsCallDirectly(name="holder")
    model = keras.Model(x, holder(x), name="direct")
    assert _eager_calls(model, holder.dense, np.ones((1, 3), "float32")) == 2
    report = weighttie.analyze(model)
    assert report.layer("holder/dense").uses == 2
    assert report.params.unique == model.count_params()


# -- uses are reads, on every backend -------------------------------------------------

#: Per pattern of zoo.READS, the variables one forward pass reads twice (docs/concepts.md).
READ_TWICE = {
    "shared_simple_rnn_cell": lambda m: m.get_layer("rnn_a").cell.weights,
    "shared_gru_cell": lambda m: m.get_layer("rnn_a").cell.weights,
    "wrapped_and_direct": lambda m: m.get_layer("td").layer.weights,
    "tied_head_reads_embeddings": lambda m: [m.get_layer("tok").embeddings],
    "transposed_decoder": lambda m: [m.get_layer("enc").kernel],
    "calls_through_call": lambda m: m.get_layer("d").weights,
    "layer_in_two_nested_models": lambda m: m.get_layer("encoder").get_layer("shared").weights,
}


@pytest.mark.parametrize("name", sorted(zoo.READS))
def test_variables_read_off_the_graph_count_on_every_backend(name: str) -> None:
    """The symbolic pass sees reads under each backend's own variables and loops."""
    model = zoo.READS[name]()
    report = weighttie.analyze(model)
    twice = READ_TWICE[name](model)
    assert report.params.duplicated == sum(int(np.prod(v.shape)) for v in twice)
    assert report.params.per_use == model.count_params() + report.params.duplicated
    (group,) = report.groups
    assert group.duplicated == report.params.duplicated
    assert {v.uses for v in report.variables} <= {1, 2}
