"""Ties under every Keras backend: TensorFlow, JAX and torch.

These tests run under whatever backend the process has (``KERAS_BACKEND``;
tests/conftest.py defaults to TensorFlow): ``make test-jax`` and ``make test-torch``
run them in venvs without TensorFlow. The first part holds under every backend;
then each backend's own way of training: a plain torch loop (``torch.optim``,
``loss.backward()``) over ``model.parameters()``, and a JAX step built on
``model.stateless_call`` and ``jax.grad``. Tests for one backend are skipped,
with the reason, under the others.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers

import weighttie
from ties.test_ties import data, fit, load_quietly, same_valid_model
from weighttie import GroupKind
from weighttie.cli import main
from weighttie.testing import assert_params, assert_shared, assert_tied

BACKEND = keras.config.backend()
torch_only = pytest.mark.skipif(
    BACKEND != "torch", reason=f"torch's own Module API (the backend here is {BACKEND})"
)
jax_only = pytest.mark.skipif(
    BACKEND != "jax", reason=f"JAX's stateless training (the backend here is {BACKEND})"
)


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def weights_and_slots(model: keras.Model) -> list[np.ndarray]:
    """Every weight of the model, then every optimizer variable, as NumPy arrays."""
    return [to_numpy(v.value) for v in [*model.weights, *model.optimizer.variables]]


def equal(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """Bit-exact: same count, same shapes, same bits."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# -- every backend ----------------------------------------------------------------


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_resuming_from_the_file_is_bit_exact(tmp_path: Path, tied: bool) -> None:
    """The issue's bar: Conv2D "same" and "valid" tied, one epoch of Adam, save,
    weighttie.load_model, one more epoch equals two epochs straight, bit for bit.
    Untied, the same model shows the backend itself resumes exactly."""
    straight = same_valid_model(tie=tied)
    fit(straight, 2)

    resumed = same_valid_model(tie=tied)
    fit(resumed, 1)
    saved = weights_and_slots(resumed)
    resumed.save(tmp_path / "m.keras")
    loaded = load_quietly(lambda: weighttie.load_model(tmp_path / "m.keras"))
    assert equal(weights_and_slots(loaded), saved)  # optimizer state restored, not rebuilt
    assert len(loaded.optimizer.variables) == 2 + 2 * len(loaded.trainable_variables)
    same, valid = loaded.get_layer("same"), loaded.get_layer("valid")
    assert (valid.kernel is same.kernel) is tied
    fit(loaded, 1)
    assert equal(weights_and_slots(loaded), weights_and_slots(straight))
    if tied:
        assert valid.kernel is same.kernel and valid.bias is same.bias


def test_analyze_and_node_output_see_the_tie() -> None:
    model = same_valid_model()
    report = weighttie.analyze(model)
    (group,) = report.groups
    assert (group.kind, group.layers) == (GroupKind.TIED, ("same", "valid"))
    assert report.params.unique == model.count_params() == 112 + 18
    assert report.params.duplicated == 112
    out = weighttie.node_output(model, "valid")
    assert tuple(out.shape) == (None, 6, 6, 4)
    assert weighttie.node_input(model, "valid") is model.inputs[0]


def test_the_testing_assertions_on_a_live_model_and_its_file(tmp_path: Path) -> None:
    model = same_valid_model()
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    for subject in (model, str(tmp_path / "m.keras"), weighttie.load_model(tmp_path / "m.keras")):
        assert_tied(subject, "same", "valid")
        assert_shared(subject, "same", "valid")
        assert_params(subject, unique=130, duplicated=112)


def test_cli_report_load_reads_the_file_through_this_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = same_valid_model()
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    assert main(["report", str(tmp_path / "m.keras"), "--format", "json", "--load"]) == 0
    report = weighttie.Report.from_json(capsys.readouterr().out)
    assert report.model.source == "traced"
    assert [(t.source, t.target, t.bound) for t in report.ties] == [("same", "valid", True)]
    assert report.params.unique == model.count_params()


def test_predict_after_a_tie_computes_with_the_tied_kernel() -> None:
    """A model run before the tie (TensorFlow traced its predict function then, with
    the variables of that time) predicts with the tie afterwards."""
    x, _ = data()
    model = same_valid_model(tie=False)
    untied = model.predict(x, verbose=0)
    weighttie.tie_weights(model.get_layer("same"), model.get_layer("valid"), keep="source")
    tied = model.predict(x, verbose=0)
    assert not np.array_equal(tied, untied)
    assert np.array_equal(tied, same_valid_model().predict(x, verbose=0))


@pytest.mark.skipif(BACKEND == "jax", reason="JAX refuses this tie (tested below)")
def test_a_tie_after_training_stops_training_the_variable_given_up() -> None:
    """TensorFlow's traced train function would keep training the target's old kernel."""
    model = same_valid_model(tie=False)
    fit(model, 1)
    same, valid = model.get_layer("same"), model.get_layer("valid")
    given_up = valid.kernel
    frozen = to_numpy(given_up.value).copy()
    weighttie.tie_weights(same, valid, keep="source")
    fit(model, 1)
    assert np.array_equal(to_numpy(given_up.value), frozen)
    assert valid.kernel is same.kernel


@jax_only
def test_jax_refuses_a_tie_after_the_optimizer_is_built() -> None:
    """JAX's fit hands the optimizer exactly the variables it was built on; a tie changes
    them. Refused with what to do, nothing changed; after compiling again it works."""
    model = same_valid_model(tie=False)
    fit(model, 1)
    same, valid = model.get_layer("same"), model.get_layer("valid")
    with pytest.raises(
        weighttie.TieError,
        match=r"model 'functional(_\d+)?' cannot train after tying 'valid' to 'same': its "
        r"optimizer 'adam(_\d+)?' is already built, .*compile the model again first",
    ):
        weighttie.tie_weights(same, valid, keep="source")
    assert valid.kernel is not same.kernel
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    weighttie.tie_weights(same, valid, keep="source")
    fit(model, 1)
    assert valid.kernel is same.kernel


@jax_only
def test_jax_retie_without_a_compile_config_refuses_a_trained_model(tmp_path: Path) -> None:
    """A file saved uncompiled gives retie no optimizer to build afresh, so the model's
    own (built) optimizer would have to train the tied variables: refused."""
    model = same_valid_model()
    model.compiled = False  # saved without a compile_config
    model.save(tmp_path / "m.keras")
    plain = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    plain.compile(keras.optimizers.Adam(1e-2), "mse")
    plain.optimizer.build(plain.trainable_variables)  # as fit or evaluate would
    with pytest.raises(weighttie.TieError, match=r"cannot train after binding the ties of "):
        weighttie.retie(plain, tmp_path / "m.keras")
    assert plain.get_layer("valid").kernel is not plain.get_layer("same").kernel


def test_untie_after_training_is_refused_under_every_backend() -> None:
    """The copies untie makes have no slots in a built optimizer: Keras would fail at the
    next step ("Unknown variable", or JAX's count mismatch)."""
    model = same_valid_model()
    fit(model, 1)
    same, valid = model.get_layer("same"), model.get_layer("valid")
    with pytest.raises(weighttie.TieError, match=r"cannot train after untying 'valid'"):
        weighttie.untie(valid)
    assert valid.kernel is same.kernel
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    weighttie.untie(valid)
    fit(model, 1)
    assert valid.kernel is not same.kernel


def gradients(loss: Callable[[], Any], variables: Sequence[keras.Variable]) -> list[np.ndarray]:
    """d loss / d variables, computed the way the backend computes gradients."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss()
        return [to_numpy(g) for g in tape.gradient(value, [v.value for v in variables])]
    if BACKEND == "jax":
        import jax

        def stateless(values: list[Any]) -> Any:
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return loss()

        return [to_numpy(g) for g in jax.grad(stateless)([v.value for v in variables])]
    if BACKEND == "torch":
        for v in variables:
            v.value.grad = None
        loss().backward()
        return [to_numpy(v.value.grad) for v in variables]
    pytest.skip(f"no gradient recipe for backend {BACKEND}")


def test_gradients_from_both_layers_add_up() -> None:
    def pair() -> tuple[keras.Layer, keras.Layer]:
        a, b = layers.Dense(2, use_bias=False), layers.Dense(2, use_bias=False)
        a.build((None, 3))
        b.build((None, 3))
        b.set_weights(a.get_weights())
        return a, b

    x1 = np.array([[1.0, 2.0, 3.0]], "float32")
    x2 = np.array([[-1.0, 0.5, 4.0]], "float32")

    def loss(a: keras.Layer, b: keras.Layer) -> Callable[[], Any]:
        return lambda: keras.ops.sum(a(x1) ** 2) + keras.ops.sum(b(x2) ** 2)

    a, b = pair()
    grad_a, grad_b = gradients(loss(a, b), [a.kernel, b.kernel])  # untied: one per layer
    a2, b2 = pair()
    a2.set_weights(a.get_weights())
    b2.set_weights(a.get_weights())
    weighttie.tie_weights(a2, b2)
    (grad_tied,) = gradients(loss(a2, b2), [a2.kernel])
    np.testing.assert_allclose(grad_tied, grad_a + grad_b, rtol=1e-6)
    assert not np.allclose(grad_a, grad_b)  # both uses really contribute


# -- torch: Keras layers are torch Modules ------------------------------------------


def parameter_ids(module: Any) -> list[int]:
    return [id(p) for p in module.parameters()]


def variable_ids(layer: keras.Layer) -> list[int]:
    return [id(v.value) for v in layer.weights]


@torch_only
def test_torch_parameters_hold_a_tied_variable_once() -> None:
    """The model registered its parameters when it was built, before the tie: the
    given-up kernel and bias must leave ``model.parameters()`` (the orphans)."""
    model = same_valid_model()
    same, valid = model.get_layer("same"), model.get_layer("valid")
    assert sorted(parameter_ids(model)) == sorted(variable_ids(model))
    assert len(list(model.parameters())) == len(model.weights) == 4
    assert sum(p.numel() for p in model.parameters()) == model.count_params()
    assert sorted(parameter_ids(valid)) == sorted(parameter_ids(same)) == sorted(variable_ids(same))
    assert sorted(model.state_dict()) == [
        "_torch_params.head/bias",
        "_torch_params.head/kernel",
        "_torch_params.same/bias",
        "_torch_params.same/kernel",
    ]


@torch_only
def test_torch_untie_registers_the_targets_own_copy() -> None:
    model = same_valid_model()
    same, valid = model.get_layer("same"), model.get_layer("valid")
    weighttie.untie(valid)
    assert valid.kernel is not same.kernel
    assert valid.kernel.path == "valid/kernel"
    assert sorted(parameter_ids(model)) == sorted(variable_ids(model))
    assert len(list(model.parameters())) == 6
    assert sorted(parameter_ids(valid)) == sorted(variable_ids(valid))
    assert id(valid.kernel.value) in parameter_ids(model)


@torch_only
def test_torch_tie_before_build_and_inside_nested_models() -> None:
    same, valid = layers.Conv2D(4, 3, padding="same"), layers.Conv2D(4, 3)
    weighttie.tie_weights(same, valid)
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, [same(x), valid(x)])
    assert sorted(parameter_ids(model)) == sorted(variable_ids(model))
    assert len(list(model.parameters())) == 2

    def tower(name: str) -> keras.Model:
        inputs = keras.Input((5,), name=f"{name}_in")
        return keras.Model(inputs, layers.Dense(3, name=f"{name}_dense")(inputs), name=name)

    left, right = tower("left"), tower("right")
    a = keras.Input((5,))
    outer = keras.Model(a, layers.Add()([left(a), right(a)]))
    weighttie.tie_weights(left, right, keep="source")
    for module in (outer, left, right):  # every level registered the given-up copy
        assert sorted(parameter_ids(module)) == sorted(variable_ids(module)), module.name
    assert len(list(outer.parameters())) == 2


@torch_only
def test_torch_parameters_after_load_model_and_retie(tmp_path: Path) -> None:
    model = same_valid_model()
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    loaded = weighttie.load_model(tmp_path / "m.keras")
    assert sorted(parameter_ids(loaded)) == sorted(variable_ids(loaded))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = keras.saving.load_model(tmp_path / "m.keras")
    assert len(list(plain.parameters())) == 6  # plain Keras: two copies
    weighttie.retie(plain, tmp_path / "m.keras")
    assert sorted(parameter_ids(plain)) == sorted(variable_ids(plain))
    assert len(list(plain.parameters())) == 4


@torch_only
def test_a_plain_torch_training_loop_keeps_the_tied_layers_identical() -> None:
    """torch.optim over model.parameters(), loss.backward(): the one kernel gets both
    layers' gradients and each step updates it once."""
    import torch

    model = same_valid_model()
    same, valid = model.get_layer("same"), model.get_layer("valid")
    before = to_numpy(same.kernel.value).copy()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = (torch.from_numpy(a) for a in data())
    for start in range(0, 32, 8):
        optimizer.zero_grad()
        loss = torch.mean((model(x[start : start + 8]) - y[start : start + 8]) ** 2)
        loss.backward()
        optimizer.step()
    assert valid.kernel is same.kernel and valid.bias is same.bias
    assert not np.array_equal(to_numpy(same.kernel.value), before)
    # the Keras variable and the torch parameter are one tensor
    (kernel,) = [p for p in model.parameters() if p is same.kernel.value]
    assert np.array_equal(kernel.detach().numpy(), to_numpy(valid.kernel.value))
    # both layers compute with the trained kernel
    probe = np.ones((1, 8, 8, 3), "float32")
    inner = to_numpy(same(probe))[:, 1:-1, 1:-1, :]
    np.testing.assert_allclose(to_numpy(valid(probe)), np.maximum(inner, 0), rtol=1e-5, atol=1e-6)


@torch_only
def test_torch_ddp_finds_no_unused_parameters(tmp_path: Path) -> None:
    """DistributedDataParallel (one process, gloo) reduces every registered parameter's
    gradient; an orphan (registered, never used) makes the second step fail."""
    import torch
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        model = same_valid_model()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-2)
        x, y = (torch.from_numpy(a) for a in data())
        for _ in range(2):
            optimizer.zero_grad()
            torch.mean((ddp(x) - y) ** 2).backward()
            optimizer.step()
        # The wrapper (its gradient reducer) goes before its process group: released after
        # destroy_process_group, at the test's return, the reducer's teardown of gloo's
        # threads hung (seen once in make test-torch).
        del optimizer, ddp
    finally:
        dist.destroy_process_group()
    assert model.get_layer("valid").kernel is model.get_layer("same").kernel


# -- JAX: training is stateless over trainable_variables ------------------------------


@jax_only
def test_jax_fit_and_a_stateless_step_train_the_tied_kernel_alike() -> None:
    """A custom step (model.stateless_call, jax.grad, optimizer.stateless_apply) over
    trainable_variables, where the tied kernel appears once, gives what fit gives."""
    import jax

    fitted = same_valid_model()
    fit(fitted, 1)

    model = same_valid_model()
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    slots = [v.value for v in optimizer.variables]
    assert len(trainable) == 4

    def loss_of(trainable: list[Any], non_trainable: list[Any], x: Any, y: Any) -> Any:
        out, _ = model.stateless_call(trainable, non_trainable, x)
        return keras.ops.mean((out - y) ** 2)

    @jax.jit
    def step(trainable: list[Any], slots: list[Any], x: Any, y: Any) -> tuple[Any, Any]:
        grads = jax.grad(loss_of)(trainable, non_trainable, x, y)
        return optimizer.stateless_apply(slots, grads, trainable)

    x, y = data()
    for start in range(0, 32, 8):
        trainable, slots = step(trainable, slots, x[start : start + 8], y[start : start + 8])
    for variable, value in zip(model.trainable_variables, trainable, strict=True):
        variable.assign(value)

    same, valid = model.get_layer("same"), model.get_layer("valid")
    assert valid.kernel is same.kernel and valid.bias is same.bias
    for ours, theirs in zip(model.trainable_variables, fitted.trainable_variables, strict=True):
        np.testing.assert_allclose(to_numpy(ours.value), to_numpy(theirs.value), rtol=1e-5)


@jax_only
def test_jax_stateless_gradient_of_the_tied_kernel_sums_both_layers() -> None:
    """jax.grad over trainable_variables: the tied kernel's gradient is the sum of the
    gradients an untied twin (same values) gets for its two kernels."""
    import jax

    tied, untied = same_valid_model(), same_valid_model(tie=False)
    for layer in ("same", "valid", "head"):
        untied.get_layer(layer).set_weights(
            tied.get_layer("same" if layer == "valid" else layer).get_weights()
        )
    x, y = data()

    def grads(model: keras.Model) -> dict[str, np.ndarray]:
        def loss(trainable: list[Any]) -> Any:
            out, _ = model.stateless_call(
                trainable, [v.value for v in model.non_trainable_variables], x
            )
            return keras.ops.mean((out - y) ** 2)

        values = jax.grad(loss)([v.value for v in model.trainable_variables])
        return {v.path: to_numpy(g) for v, g in zip(model.trainable_variables, values, strict=True)}

    tied_grads, untied_grads = grads(tied), grads(untied)
    assert sorted(tied_grads) == ["head/bias", "head/kernel", "same/bias", "same/kernel"]
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(
            tied_grads[f"same/{name}"],
            untied_grads[f"same/{name}"] + untied_grads[f"valid/{name}"],
            rtol=1e-5,
            atol=1e-7,
        )
