"""One test per private Keras access in the weighttie._keras package.

When a Keras upgrade moves one of these, the failure lands here, named.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import pytest

from support import zoo
from weighttie import _keras
from weighttie._keras import deferred, keras_tensors


def test_variable_base_is_the_class_of_every_variable_on_every_release() -> None:
    """Keras 3.3's base class is ``KerasVariable``, later ones' ``Variable``: the symbolic pass
    and the deferred build check variables against it (Keras 3.3 failed every trace of a custom
    layer with an ImportError before)."""
    base = _keras.variable_base()
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    rng = keras.random.SeedGenerator(1)
    assert all(isinstance(v, base) for v in [*dense.weights, rng.state])
    assert isinstance(keras.Variable(np.zeros(2)), base)
    assert not isinstance(np.zeros(2), base)


def test_own_variables_are_the_layers_own_weights_in_save_order() -> None:
    bn = keras.layers.BatchNormalization()
    bn.build((None, 3))
    assert [v.name for v in _keras.own_variables(bn)] == [
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
    ]
    lstm = keras.layers.LSTM(2)
    lstm.build((None, 4, 3))
    assert _keras.own_variables(lstm) == []  # held by the cell
    assert [v.name for v in _keras.own_variables(lstm.cell)] == [
        "kernel",
        "recurrent_kernel",
        "bias",
    ]


def test_own_variables_leave_out_seed_state() -> None:
    dropout = keras.layers.Dropout(0.5)
    assert dropout.variables  # it has a seed generator state …
    assert _keras.own_variables(dropout) == []  # … which is not a weight


def test_own_variables_of_a_plain_operation_is_empty() -> None:
    model = zoo.weightless_reuse()
    ops = [op for op in model.operations if not isinstance(op, keras.Layer)]
    assert ops and _keras.own_variables(ops[0]) == []


def test_sublayers_lists_tracked_layers_once() -> None:
    lstm = keras.layers.LSTM(2)
    assert _keras.sublayers(lstm) == [lstm.cell]
    model = zoo.subclassed()
    assert [layer.name for layer in _keras.sublayers(model)] == ["hidden", "norm", "out"]


def test_graph_of_functional_sequential_and_subclassed() -> None:
    functional = zoo.siamese_lstm()
    assert _keras.graph_of(functional) is functional
    sequential = zoo.sequential()
    assert _keras.graph_of(sequential) is sequential._functional
    assert _keras.graph_of(zoo.subclassed()) is None
    assert _keras.graph_of(keras.layers.Dense(2)) is None


def test_graph_operations_in_graph_order() -> None:
    model = zoo.siamese_lstm()
    names = [op.name for op in _keras.graph_operations(model)]
    assert names[-1] == "score"
    assert set(names) == {"left", "right", "lstm", "merge", "score"}


def test_inbound_nodes_and_node_ownership() -> None:
    model = zoo.shared_with_other_model()
    dense = model.get_layer("shared_dense")
    nodes = _keras.inbound_nodes(dense)
    assert len(nodes) == 2
    assert [_keras.is_own_node(model, dense, i) for i in range(2)] == [False, True]


def test_history_of_a_symbolic_tensor() -> None:
    model = zoo.siamese_lstm()
    lstm = model.get_layer("lstm")
    second_call = _keras.inbound_nodes(lstm)[1]
    op, node_index, tensor_index = _keras.history_of(second_call.output_tensors[0])
    assert (op, node_index, tensor_index) == (lstm, 1, 0)
    assert _keras.history_of(object()) is None


def test_snapshot_state_puts_back_variables_tracker_and_compile_state() -> None:
    x = keras.Input((3,))
    dense = keras.layers.Dense(2)
    model = keras.Model(x, dense(x))
    model.compile("adam", "mse")
    kernel, optimizer, weights = dense.kernel, model.optimizer, list(dense.weights)
    stored_ids = {key: set(ids) for key, ids in dense._tracker.stored_ids.items()}
    restore_dense, restore_model = _keras.snapshot_state(dense), _keras.snapshot_state(model)

    replacement = keras.Variable(np.zeros((3, 2), "float32"))
    _keras.replace_own_variable(dense, kernel, replacement)
    _keras.set_private(dense, "_weighttie_added", True)
    model.compile("sgd", "mae")
    assert dense.kernel is replacement and model.optimizer is not optimizer

    restore_dense()
    restore_model()
    assert dense.kernel is kernel
    assert [id(v) for v in dense.weights] == [id(v) for v in weights]
    assert dense._tracker.stored_ids == stored_ids
    assert not hasattr(dense, "_weighttie_added")
    assert model.optimizer is optimizer
    assert model.get_compile_config()["loss"] == "mse"
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    assert len(optimizer.variables) == 2 + 2 * 2  # built on kernel and bias


def test_variable_copy_is_made_in_the_layers_name_scope() -> None:
    x = keras.Input((3,))
    dense = keras.layers.Dense(2, name="probe")
    keras.Model(x, dense(x))
    copy = _keras.variable_copy(dense, dense.kernel)
    assert copy is not dense.kernel
    assert (copy.path, copy.name, copy.dtype, copy.trainable) == (
        "probe/kernel",
        "kernel",
        dense.kernel.dtype,
        True,
    )
    np.testing.assert_array_equal(copy.numpy(), dense.kernel.numpy())


def _registered(layer: keras.Layer) -> set[int]:
    """Identities of the torch parameters a layer registered."""
    return {id(p) for p in layer.parameters()}


def test_sync_torch_parameters_registers_what_each_layer_holds_now() -> None:
    """After replace_own_variable, the layer and the model containing it still register
    the replaced tensor (under torch); syncing makes both register the new one."""
    x = keras.Input((3,))
    a, b = keras.layers.Dense(2), keras.layers.Dense(2)
    model = keras.Model(x, [a(x), b(x)])
    given_up = b.kernel
    _keras.replace_own_variable(b, given_up, a.kernel)
    if keras.config.backend() != "torch":  # nothing registered, nothing to sync
        assert _keras.sync_torch_parameters([given_up, a.kernel]) == 0
        return
    assert id(given_up.value) in _registered(model) & _registered(b)  # stale
    assert _keras.sync_torch_parameters([given_up, a.kernel]) == 2  # b and the model
    assert _registered(b) == {id(a.kernel.value), id(b.bias.value)}
    assert _registered(model) == {id(v.value) for v in model.weights}
    assert len(_registered(model)) == 3
    assert _keras.sync_torch_parameters(model.weights) == 0  # nothing differs now


def test_live_layers_and_models_containing_find_the_models_holding_a_layer() -> None:
    inner_in = keras.Input((3,))
    dense = keras.layers.Dense(2)
    inner = keras.Model(inner_in, dense(inner_in), name="inner")
    x = keras.Input((3,))
    outer = keras.Model(x, inner(x), name="outer")
    unrelated = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    live = _keras.live_layers()
    assert {id(dense), id(inner), id(outer), id(unrelated)} <= {id(layer) for layer in live}
    found = _keras.models_containing([dense], live)
    assert {id(m) for m in found} == {id(inner), id(outer)}
    assert {id(m) for m in _keras.models_containing([inner], live)} == {id(inner), id(outer)}


def test_reset_step_functions_and_built_optimizer() -> None:
    x = keras.Input((3,))
    model = keras.Model(x, keras.layers.Dense(2)(x))
    model.compile("adam", "mse")
    assert _keras.built_optimizer(model) is None
    assert _keras.reset_step_functions(model) is False
    data = np.ones((4, 3), "float32")
    model.fit(data, np.ones((4, 2), "float32"), verbose=0)
    model.predict(data, verbose=0)
    assert _keras.built_optimizer(model) is model.optimizer
    assert model.train_function is not None and model.predict_function is not None
    assert _keras.reset_step_functions(model) is True
    assert (model.train_function, model.test_function, model.predict_function) == (None,) * 3
    model.fit(data, np.ones((4, 2), "float32"), verbose=0)  # Keras builds them again
    assert model.train_function is not None


def test_live_layers_view_pairs_by_name_and_sublayers() -> None:
    """_keras.LIVE_LAYERS: what tie_record.pair_variables sees of live layers."""
    from weighttie._keras import LIVE_LAYERS
    from weighttie.tie_record import pair_variables

    a, b = keras.layers.LSTM(3), keras.layers.LSTM(3)
    for layer in (a, b):
        layer.build((None, 5, 2))
    assert LIVE_LAYERS.name(a) == a.name and LIVE_LAYERS.class_name(a) == "LSTM"
    assert LIVE_LAYERS.same_class(a, b) and not LIVE_LAYERS.same_class(a, keras.layers.GRU(3))
    assert LIVE_LAYERS.sublayers(a) == [a.cell]
    assert set(LIVE_LAYERS.variables(a.cell)) == {"kernel", "recurrent_kernel", "bias"}
    pairs = pair_variables(a, b, None, LIVE_LAYERS)
    by_name_a = {v.name: v for v in a.cell.weights}
    by_name_b = {v.name: v for v in b.cell.weights}
    assert sorted(p.name for p in pairs) == ["bias", "kernel", "recurrent_kernel"]
    for p in pairs:
        assert p.source is by_name_a[p.name] and p.target is by_name_b[p.name]
        assert (p.source_layer, p.target_layer) == (a.cell, b.cell)


# -- the write helpers ---------------------------------------------------------------------


def test_replace_own_variable_swaps_every_place_a_layer_holds_it() -> None:
    a, b = keras.layers.Dense(3), keras.layers.Dense(3)
    a.build((None, 4))
    b.build((None, 4))
    old = b.kernel
    assert _keras.replace_own_variable(b, old, a.kernel) is True
    assert b.kernel is a.kernel  # what call reads (Dense.kernel over _kernel)
    assert b.weights[0] is a.kernel  # what saving and the optimizer read
    assert all(v is not old for v in b.weights)
    x = np.ones((2, 4), "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(b(x)) - keras.ops.convert_to_numpy(b.bias),
        x @ keras.ops.convert_to_numpy(a.kernel),
    )
    assert _keras.replace_own_variable(b, old, a.kernel) is False  # nothing left to replace


def test_set_private_is_not_tracked_by_keras() -> None:
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    variable = keras.Variable(np.zeros(2, "float32"))
    _keras.set_private(layer, "_weighttie_probe", variable)  # a built layer would refuse it
    assert layer._weighttie_probe is variable
    assert all(v is not variable for v in layer.weights)


def test_extend_build_config_adds_keys_once_and_plain_keras_loads_it(tmp_path) -> None:
    layer = keras.layers.Dense(2, name="d")
    _keras.extend_build_config(layer, lambda: {"weighttie": {"version": 1}})
    _keras.extend_build_config(layer, lambda: {"other": 1})  # a second call changes nothing
    x = keras.Input((3,))
    model = keras.Model(x, layer(x))
    assert model.get_layer("d").get_build_config() == {
        "input_shape": (None, 3),
        "weighttie": {"version": 1},
    }
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.get_layer("d").built


def test_after_build_runs_the_callback_with_the_layer_built() -> None:
    seen = []
    layer = keras.layers.Dense(2)
    _keras.after_build(layer, lambda built: seen.append((built is layer, built.built)))
    layer(np.ones((1, 3), "float32"))
    assert seen == [(True, True)]


def layer_state(model: keras.Model) -> list[object]:
    """Every layer's attributes (object identities, container lengths), calls and values."""
    state: list[object] = []
    for layer in model._flatten_layers(include_self=True):
        attributes = {}
        for name, value in vars(layer).items():
            size = len(value) if isinstance(value, list | dict | set) else None
            attributes[name] = (id(value), size)
        state.append((id(layer), attributes, len(layer._inbound_nodes), layer.built))
    state.append([np.asarray(v.numpy()).tobytes() for v in model.weights])
    return state


def test_trace_model_counts_per_caller_and_leaves_the_model_as_it_was() -> None:
    for build in (zoo.siamese_tower, zoo.subclassed, zoo.tied_embeddings, zoo.sequential):
        model = build()
        before = layer_state(model)
        trace = _keras.trace_model(model)
        assert layer_state(model) == before, build.__name__
        assert trace.calls[(_keras.OUTSIDE, id(model))] == 1
    model = zoo.siamese_tower()
    trace = _keras.trace_model(model)
    tower = model.get_layer("tower")
    conv = tower.get_layer("tower_conv")
    assert trace.calls[(id(model), id(tower))] == 2
    assert trace.calls[(id(tower), id(conv))] == 2  # per pass, not per run
    assert trace.runs[id(conv)] == 2
    assert trace.reads[(id(tower), id(conv), id(conv.kernel))] == 2
    model = zoo.tied_embeddings()
    logits, embedding = model.get_layer("logits"), model.get_layer("embedding")
    trace = _keras.trace_model(model)
    assert (id(logits), id(embedding)) not in trace.calls  # held, never called
    # ... but read: the head computes with the embedding's matrix
    assert trace.reads[(id(model), id(logits), id(embedding.embeddings))] == 1


def test_trace_model_counts_a_loop_body_once_per_call_of_the_loop() -> None:
    """A cell runs once per step; per call of its RNN it is one run and one read."""
    cell = keras.layers.SimpleRNNCell(3)
    inputs = keras.Input((5, 2))
    unrolled = keras.layers.RNN(cell, unroll=True)
    looped = keras.layers.RNN(cell)
    model = keras.Model(inputs, keras.layers.add([unrolled(inputs), looped(inputs)]))
    trace = _keras.trace_model(model)
    for rnn in (unrolled, looped):
        assert trace.calls[(id(rnn), id(cell))] == 1
        assert trace.reads[(id(rnn), id(cell), id(cell.kernel))] == 1


def test_trace_model_sees_reads_through_every_door() -> None:
    """Operators, ops on the variable and ``convert_to_tensor`` all read ``value``."""

    class Reads(keras.layers.Layer):
        def __init__(self, source: keras.layers.Layer, how: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.source = source
            self.how = how

        def call(self, x: Any) -> Any:
            kernel = self.source.kernel
            if self.how == "operator":
                return x @ kernel
            if self.how == "op":
                return keras.ops.matmul(x, kernel)
            return keras.ops.matmul(x, keras.ops.convert_to_tensor(kernel))

    for how in ("operator", "op", "convert"):
        dense = keras.layers.Dense(3)
        inputs = keras.Input((3,))
        head = Reads(dense, how)
        model = keras.Model(inputs, head(dense(inputs)))
        trace = _keras.trace_model(model)
        assert trace.reads.get((id(model), id(head), id(dense.kernel))) == 1, how
        assert (id(model), id(head), id(dense.bias)) not in trace.reads, how


def test_trace_model_refuses_what_it_cannot_trace() -> None:
    never_built = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(_keras.TraceFailed, match="records no input shape"):
        _keras.trace_model(never_built)
    assert _keras.loops_over_sublayers(keras.layers.LSTM(2))
    assert _keras.loops_over_sublayers(keras.layers.TimeDistributed(keras.layers.Dense(2)))
    assert not _keras.loops_over_sublayers(keras.layers.Bidirectional(keras.layers.LSTM(2)))
    assert not _keras.loops_over_sublayers(keras.layers.Dense(2))


def test_recording_saves_names_the_dataset_each_variable_went_to(tmp_path) -> None:
    """``recording_saves`` relies on the H5 store's private ``_h5_entry_path``: each record's
    path is a dataset of the saved weights file holding that variable's values, and the
    wrappers are gone after the block. A Keras whose store has no entry path records
    nothing (weighttie.save_model then warns and writes the file as Keras does)."""
    import zipfile

    import h5py

    model = zoo.siamese_tower()
    layers = [model, *model._flatten_layers(include_self=False)]
    path = tmp_path / "m.keras"
    with _keras.recording_saves(layers) as records:
        model.save(path)
    assert all("save_own_variables" not in vars(layer) for layer in layers)
    if not records:
        from keras.src.saving import saving_lib

        assert not hasattr(saving_lib.H5IOStore(tmp_path / "probe.h5", mode="w"), "_h5_entry_path")
        import weighttie

        with pytest.warns(UserWarning, match="does not say where it saves each variable"):
            weighttie.save_model(model, tmp_path / "plain.keras")
        return
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", tmp_path)
    held = {id(v) for v in model.weights}
    with h5py.File(tmp_path / "model.weights.h5") as h5:
        for entry in records:
            if id(entry.value) in held:
                np.testing.assert_array_equal(
                    h5[entry.path][()], keras.ops.convert_to_numpy(entry.value)
                )
    assert {id(e.value) for e in records} >= held


def test_unknown_dimensions_are_tried_at_two_sizes_when_symbolic_tracing_fails() -> None:
    """JAX cannot compare a symbolic sequence length with a number (keras_hub's position
    embedding): the pass runs the call at two concrete sizes and requires the same counts."""

    class NeedsLength(keras.layers.Layer):
        """Fails on a symbolic sequence length, as JAX's does in PositionEmbedding."""

        def build(self, input_shape: Any) -> None:
            self.w = self.add_weight(shape=(input_shape[-1],))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def call(self, x: Any) -> Any:
            if x.shape[1] is None or not isinstance(x.shape[1], int):
                raise ValueError("inconclusive")
            return x * self.w

    inputs = keras.Input((None, 3))
    layer = NeedsLength()
    model = keras.Model(inputs, layer(inputs))
    trace = _keras.trace_calls_of([(model, layer, _keras.inbound_nodes(layer))])
    assert trace.reads == {(id(model), id(layer), id(layer.w)): 1}


# -- runs on Keras tensors (weighttie._keras.keras_tensors) ---------------------------------------


#: The runs on Keras tensors are made on the Keras releases they are checked on; on an older
#: one (the CI's oldest, Keras 3.3) every call runs through the backend.
on_keras_tensors = pytest.mark.skipif(
    not keras_tensors.supported(), reason="an older Keras runs every call through the backend"
)


#: What each call of a _SeesThePatches saw (not kept on the layer: the pass puts a layer's
#: attributes back as they were).
_SEEN: list[bool] = []


class _SeesThePatches(keras.layers.Layer):
    """Records, at each call, whether Keras's ``Operation.symbolic_call`` is replaced."""

    def call(self, x: Any) -> Any:
        _SEEN.append(_keras_symbolic_call() is not _SYMBOLIC_CALL)
        return x * 2


def _keras_symbolic_call() -> Any:
    from keras.src.ops.operation import Operation

    return vars(Operation)["symbolic_call"]


_SYMBOLIC_CALL = _keras_symbolic_call()


def test_the_pass_patches_keras_only_from_the_release_it_is_checked_on() -> None:
    """From ``SINCE`` on, the pass runs calls on Keras tensors (Keras patched while it runs);
    below, it patches nothing and every call runs through the backend, as it always did."""
    layer = _SeesThePatches()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layer(inputs))
    _SEEN.clear()
    trace = _keras.trace_model(model)
    assert _SEEN and all(seen == keras_tensors.supported() for seen in _SEEN), _SEEN
    assert _keras_symbolic_call() is _SYMBOLIC_CALL  # put back
    slow = _keras.trace_model(model, keras_tensors_first=False)
    assert (trace.calls, trace.reads) == (slow.calls, slow.reads)


def _both_ways(trace: Any, *args: Any) -> Any:
    """``trace(*args)`` on Keras tensors first, and through the backend only: they agree."""
    fast = trace(*args)
    slow = trace(*args, keras_tensors_first=False)
    assert (fast.calls, fast.reads) == (slow.calls, slow.reads)
    return fast


@on_keras_tensors
@pytest.mark.parametrize(
    "build",
    [
        zoo.siamese_tower,
        zoo.subclassed,
        zoo.tied_embeddings,
        zoo.sequential,
        zoo.nested_twice,
        *zoo.READS.values(),
    ],
    ids=lambda build: build.__name__,
)
def test_runs_on_keras_tensors_count_what_runs_through_the_backend_count(build: Any) -> None:
    model = build()
    before = layer_state(model)
    _both_ways(_keras.trace_model, model)
    assert layer_state(model) == before


class _Calls(keras.layers.Layer):
    """A custom layer calling one of Keras's layers (so the pass runs it), with arguments."""

    def __init__(self, inner: keras.layers.Layer, **call_kwargs: Any) -> None:
        super().__init__()
        self.inner = inner
        self.call_kwargs = call_kwargs
        self.supports_masking = True

    def call(self, x: Any, mask: Any = None) -> Any:
        kwargs = dict(self.call_kwargs)
        if mask is not None:
            kwargs["mask"] = mask
        return self.inner(x, **kwargs)


def _held_readers() -> list[tuple[str, Any, tuple[int, ...], dict[str, Any]]]:
    """(class, layer, input shape, call arguments): each class of READS_WHAT_IT_HOLDS."""
    from keras import layers

    cases = [
        ("Dense", layers.Dense(3), (2, 4), {}),
        ("Dense", layers.Dense(3, use_bias=False), (2, 4), {}),
        ("EinsumDense", layers.EinsumDense("ab,bc->ac", 3, bias_axes="c"), (2, 4), {}),
        ("Embedding", layers.Embedding(10, 3), (2, 5), {}),
        ("LayerNormalization", layers.LayerNormalization(), (2, 4), {}),
        ("LayerNormalization", layers.LayerNormalization(center=False), (2, 4), {}),
        ("BatchNormalization", layers.BatchNormalization(), (2, 4), {}),
        ("BatchNormalization", layers.BatchNormalization(), (2, 4), {"training": True}),
        ("GroupNormalization", layers.GroupNormalization(groups=2), (2, 3, 4), {}),
        ("Conv1D", layers.Conv1D(2, 3), (2, 6, 3), {}),
        ("Conv2D", layers.Conv2D(2, 3), (2, 6, 6, 3), {}),
        ("Conv3D", layers.Conv3D(2, 2), (2, 4, 4, 4, 2), {}),
        ("Conv1DTranspose", layers.Conv1DTranspose(2, 3), (2, 6, 3), {}),
        ("Conv2DTranspose", layers.Conv2DTranspose(2, 3), (2, 6, 6, 3), {}),
        ("Conv3DTranspose", layers.Conv3DTranspose(2, 2), (2, 4, 4, 4, 2), {}),
        ("DepthwiseConv1D", layers.DepthwiseConv1D(3), (2, 6, 3), {}),
        ("DepthwiseConv2D", layers.DepthwiseConv2D(3), (2, 6, 6, 3), {}),
        ("SeparableConv1D", layers.SeparableConv1D(2, 3), (2, 6, 3), {}),
        ("SeparableConv2D", layers.SeparableConv2D(2, 3), (2, 6, 6, 3), {}),
        ("PReLU", layers.PReLU(), (2, 4), {}),
        ("Softmax", layers.Softmax(), (2, 4), {}),
        ("Softmax", layers.Softmax(), (2, 4), {"mask": True}),
        ("Dropout", layers.Dropout(0.5), (2, 4), {}),
        ("Dropout", layers.Dropout(0.5), (2, 4), {"training": True}),
        ("ReLU", layers.ReLU(), (2, 4), {}),
        ("LeakyReLU", layers.LeakyReLU(), (2, 4), {}),
        ("ELU", layers.ELU(), (2, 4), {}),
        ("Identity", layers.Identity(), (2, 4), {}),
    ]
    if hasattr(layers, "RMSNormalization"):  # Keras 3.9
        cases.append(("RMSNormalization", layers.RMSNormalization(), (2, 4), {}))
    return cases


@on_keras_tensors
def test_each_class_read_as_held_reads_what_it_holds_at_every_call() -> None:
    """The facts ``reads_what_it_holds`` relies on, checked against a run through the
    backend: each class's call reads every variable it holds, once, and no other."""
    from weighttie._keras import keras_tensors

    cases = _held_readers()
    assert {name for name, *_ in cases} >= keras_tensors.READS_WHAT_IT_HOLDS - {"RMSNormalization"}
    for name, layer, shape, call_kwargs in cases:
        integers = name == "Embedding"
        inputs = keras.Input(shape[1:], batch_size=shape[0], dtype="int32" if integers else None)
        mask = call_kwargs.pop("mask", None)
        head = _Calls(layer, **call_kwargs)
        outputs = head(inputs, mask=keras.ops.ones(shape, "bool")) if mask else head(inputs)
        model = keras.Model(inputs, outputs)
        assert keras_tensors.reads_what_it_holds(layer), name
        trace = _both_ways(_keras.trace_model, model)
        weights = {id(v) for v in model.weights}  # not Dropout's seed state
        reads = {
            v: n for (_, who, v), n in trace.reads.items() if who == id(layer) and v in weights
        }
        assert reads == {id(v): 1 for v in _keras.own_variables(layer)}, name
    quantizable = keras.layers.Dense(3)
    quantizable.build((None, 4))
    quantizable.quantize("int8")
    custom = type("MyDense", (keras.layers.Dense,), {})(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rms_scaling is deprecated (Keras 3.9)
        rms_scaled = keras.layers.LayerNormalization(rms_scaling=True)
    for not_held in (quantizable, custom, rms_scaled):
        assert not keras_tensors.reads_what_it_holds(not_held)


@keras.saving.register_keras_serializable(package="weighttie_tests")
class _ScalesOnTheBackend(keras.layers.Layer):
    """Computes with a backend function, which takes no Keras tensor."""

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1],))

    def call(self, x: Any) -> Any:
        from keras.src import backend

        return backend.numpy.multiply(x, self.w)


class _OwnSymbolicCall(keras.layers.Layer):
    """Overrides ``symbolic_call`` (a run on Keras tensors would not reach its call)."""

    def build(self, input_shape: Any) -> None:
        self.w = self.add_weight(shape=(input_shape[-1],))

    def symbolic_call(self, *args: Any, **kwargs: Any) -> Any:
        return self.compute_output_spec(*args, **kwargs)

    def call(self, x: Any) -> Any:
        return x * self.w


@on_keras_tensors
def test_a_call_the_keras_tensors_cannot_run_runs_through_the_backend() -> None:
    for layer in (_ScalesOnTheBackend(), _OwnSymbolicCall()):
        inputs = keras.Input((3,))
        dense = keras.layers.Dense(3)
        model = keras.Model(inputs, layer(dense(inputs)))
        before = layer_state(model)
        trace = _both_ways(_keras.trace_model, model)
        assert trace.reads[(id(model), id(layer), id(layer.w))] == 1
        assert layer_state(model) == before


@on_keras_tensors
def test_variables_are_keras_tensors_to_ops_and_operators_in_a_run() -> None:
    """``ops.transpose(variable)``, ``ops.cast(variable)``, ``variable * x``,
    ``ops.convert_to_tensor(variable)``: each reads the variable, once per call."""

    class Reads(keras.layers.Layer):
        def __init__(self, source: keras.layers.Layer, how: str) -> None:
            super().__init__()
            self.source, self.how = source, how

        def call(self, x: Any) -> Any:
            kernel = self.source.kernel
            if self.how == "transpose":
                return keras.ops.matmul(x, keras.ops.transpose(keras.ops.transpose(kernel)))
            if self.how == "cast":
                return keras.ops.matmul(x, keras.ops.cast(kernel, "float32"))
            if self.how == "operator":
                return keras.ops.matmul(x, kernel * 2.0)
            return keras.ops.matmul(x, keras.ops.convert_to_tensor(kernel))

    for how in ("transpose", "cast", "operator", "convert"):
        dense = keras.layers.Dense(3)
        inputs = keras.Input((3,))
        head = Reads(dense, how)
        model = keras.Model(inputs, head(dense(inputs)))
        trace = _both_ways(_keras.trace_model, model)
        assert trace.reads.get((id(model), id(head), id(dense.kernel))) == 1, how


@on_keras_tensors
def test_keras_tensor_runs_put_keras_back_and_leave_other_code_alone() -> None:
    """Inside the block but outside a run (another thread, the walker), Keras runs as
    always: functional models record nodes, variables compute on values; after it,
    every patched attribute is Keras's own again."""
    import sys

    from keras.src import backend
    from keras.src.backend.common.variables import Variable
    from keras.src.layers import layer as layer_module
    from keras.src.ops.operation import Operation

    from weighttie._keras import keras_tensors

    def patched() -> list[Any]:
        keras_modules = [m for n, m in sorted(sys.modules.items()) if n.startswith("keras.src.")]
        return [
            vars(Operation).get("symbolic_call"),
            vars(keras.Layer).get("symbolic_call"),
            backend.compute_output_spec,
            vars(layer_module).get("Node"),
            vars(layer_module).get("is_backend_tensor_or_symbolic"),
            Variable.__mul__,
            [vars(m).get("any_symbolic_tensors") for m in keras_modules],
        ]

    before = patched()
    reads: list[Any] = []
    with keras_tensors.keras_tensor_runs(reads.append):
        assert not keras_tensors.running()
        inputs = keras.Input((3,))
        dense = keras.layers.Dense(2)
        outputs = dense(inputs)
        assert len(dense._inbound_nodes) == 1 and outputs._keras_history.operation is dense
        variable = keras.Variable(np.ones((2,), "float32"))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable * 2.0), [2.0, 2.0])
        spec = keras_tensors.on_keras_tensors(lambda: keras.ops.transpose(variable))
        assert isinstance(spec, keras.KerasTensor) and reads == [variable]
    assert patched() == before
    assert not keras_tensors.running()


# -- building without weight values (weighttie._keras.deferred) ---------------------------------

needs_symbolic_scope = pytest.mark.skipif(
    deferred.supported() is not None, reason="Keras before 3.5 has no symbolic scope"
)


def test_supported_names_the_keras_that_lacks_a_symbolic_scope() -> None:
    version = tuple(int(p) for p in keras.__version__.split(".")[:2])
    if version >= (3, 5):
        assert deferred.supported() is None
    else:
        assert "Keras 3.5 added it" in str(deferred.supported())


@needs_symbolic_scope
def test_no_weight_values_defers_variables_and_guards_their_values() -> None:
    """StatelessScope and guarded initializers: no value is made; reading one outside a
    symbolic call raises; the symbolic pass (every backend's compute_output_spec, torch
    on the meta device) reads placeholders."""
    with deferred.no_weight_values() as made:
        inputs = keras.Input((4,))
        dense = keras.layers.Dense(4, name="d")
        model = keras.Model(inputs, dense(dense(inputs)))
    assert dense.kernel.path in {v.path for v in made.variables}
    assert all(deferred.holds_no_value(v) for v in model.weights)
    with pytest.raises(deferred.ValuesNeeded, match="d/kernel"):
        dense.kernel.numpy()
    import weighttie

    report = weighttie.analyze(model, findings=False)
    assert report.params.unique == model.count_params()
    assert all(deferred.holds_no_value(v) for v in model.weights)


@needs_symbolic_scope
def test_a_variable_given_a_value_is_made_as_given_outside_the_scope() -> None:
    with deferred.no_weight_values() as made:
        given = keras.Variable(np.arange(3, dtype="float32"))
    assert [(v is given, size) for v, size in made.given] == [(True, 3)]
    assert not deferred.holds_no_value(given)
    assert given.numpy().tolist() == [0.0, 1.0, 2.0]


@needs_symbolic_scope
def test_variables_made_under_the_scope_stay_off_keras_init_list() -> None:
    """Keras initializes every deferred variable when a stateless scope ends; ours
    are taken off its list, so a later scope does not fill them."""
    with deferred.no_weight_values():
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
    with keras.StatelessScope():
        pass
    assert deferred.holds_no_value(layer.kernel)


@needs_symbolic_scope
def test_only_this_threads_variables_are_deferred() -> None:
    import threading

    made_elsewhere: list[Any] = []

    def build() -> None:
        layer = keras.layers.Dense(2)
        layer.build((None, 2))
        made_elsewhere.append(layer.kernel)

    with deferred.no_weight_values():
        thread = threading.Thread(target=build)
        thread.start()
        thread.join()
    (kernel,) = made_elsewhere
    assert not deferred.holds_no_value(kernel) and kernel.numpy().shape == (2, 2)


@needs_symbolic_scope
def test_deserialize_builds_a_saved_config_and_safe_mode_scopes_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ObjectSharingScope (a shared layer stays one object) and SafeModeScope."""
    from weighttie.io.keras_zip import KerasArchive

    def saved_config(model: keras.Model, name: str) -> dict[str, Any]:
        model.save(tmp_path / name)
        with KerasArchive(tmp_path / name) as archive:
            return archive.config()

    model = zoo.siamese_lstm()
    config = saved_config(model, "siamese.keras")
    with deferred.no_weight_values():
        again = deferred.deserialize(config, safe_mode=True)
    assert again.count_params() == model.count_params()
    assert len({id(v) for v in again.weights}) == len(model.weights)
    inputs = keras.Input((2,))
    lam_model = keras.Model(inputs, keras.layers.Lambda(lambda x: x + 1)(inputs))
    lam = saved_config(lam_model, "l.keras")
    with pytest.raises(Exception, match="safe_mode"):
        deferred.deserialize(lam, safe_mode=True)
    assert lam == saved_config(lam_model, "l.keras")  # the config given is left as it was
    with deferred.safe_mode(True), pytest.raises(Exception, match="safe_mode"):
        keras.saving.deserialize_keras_object(lam)


def test_flatten_layers_is_the_layer_and_every_layer_inside() -> None:
    model = zoo.siamese_lstm()
    flat = deferred.flatten_layers(model)
    assert flat[0] is model
    assert {layer.name for layer in flat[1:]} >= {"lstm", "score"}


def _weights_file(datasets: dict[str, Any]) -> Any:
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for name, shape in datasets.items():
            h5.create_dataset(name, data=np.zeros(shape, "float32"))
    return buffer


@needs_symbolic_scope
def test_check_shapes_runs_the_loader_walk_over_shapes_only() -> None:
    """H5IOStore's reading side, saving_lib._load_state and Variable.assign: mismatches
    found, nothing assigned, no value read."""
    import h5py

    layer = keras.layers.Dense(3, name="d")
    with deferred.no_weight_values():
        layer.build((None, 4))
    assign = {c: c.__dict__.get("assign") for c in type(layer.kernel).__mro__}
    buffer = _weights_file({"vars/0": (4, 3), "vars/1": (2,)})
    with h5py.File(buffer, "r") as h5:
        store = deferred.declared_store([h5], "w.h5")
        checked = deferred.check_shapes([(layer, store, set())])
    assert checked.mismatches == (
        "/vars/1 has shape (2,); the model built from the config holds 'd/bias' of shape (3,)",
    )
    assert deferred.holds_no_value(layer.kernel)
    assert {c: c.__dict__.get("assign") for c in type(layer.kernel).__mro__} == assign


@needs_symbolic_scope
def test_check_shapes_computes_each_kinds_attribute_skip_set_once() -> None:
    """saving_lib.get_attr_skipset(kind) (the loader walk's, per saveable) is asked of
    Keras once per kind within check_shapes, gives Keras's own set, and is put back."""
    import h5py
    from keras.src.saving import saving_lib

    original = saving_lib.get_attr_skipset
    asked: list[str] = []

    def counted(obj_type: str) -> Any:
        asked.append(obj_type)
        return original(obj_type)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))
    saving_lib.get_attr_skipset = counted
    try:
        with h5py.File(_weights_file({}), "r") as h5:
            deferred.check_shapes([(model, deferred.declared_store([h5], "w.h5"), set())])
        assert saving_lib.get_attr_skipset is counted
    finally:
        saving_lib.get_attr_skipset = original
    assert asked and len(asked) == len(set(asked))
    assert original("Layer") >= {"weights", "trainable_weights"}


@needs_symbolic_scope
def test_check_shapes_names_what_keras_refuses_with_its_reason() -> None:
    """A layer given fewer variables than it holds: Keras's own error, its reason kept."""
    import h5py

    layer = keras.layers.Dense(3, name="d")
    with deferred.no_weight_values():
        layer.build((None, 4))
    with h5py.File(_weights_file({"vars/0": (4, 3)}), "r") as h5:
        checked = deferred.check_shapes([(layer, deferred.declared_store([h5], "w.h5"), set())])
    (line,) = checked.mismatches
    assert "expected 2 variables" in line and "received 1" in line


@needs_symbolic_scope
def test_check_shapes_lists_a_load_that_computes_with_values() -> None:
    class Interpolates(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.table = self.add_weight(shape=(4,), name="table")

        def load_own_variables(self, store: Any) -> None:
            self.table.assign(np.ones(4, "float32"))  # computed, not a saved dataset

    import h5py

    layer = Interpolates(name="interp")
    with deferred.no_weight_values():
        layer.build((None, 4))
    with h5py.File(_weights_file({"vars/0": (4,)}), "r") as h5:
        checked = deferred.check_shapes([(layer, deferred.declared_store([h5], "w.h5"), set())])
    assert checked.mismatches == () and checked.need_values == ("interp",)


@needs_symbolic_scope
def test_sync_torch_parameters_leaves_out_variables_without_a_value() -> None:
    """Binding a file's ties on a model built without values (torch: no parameter to
    register; reading one would raise ValuesNeeded)."""
    with deferred.no_weight_values():
        layer = keras.layers.Dense(2)
        layer.build((None, 2))
    assert _keras.sync_torch_parameters(layer.weights, [layer]) == 0
    assert all(deferred.holds_no_value(v) for v in layer.weights)
