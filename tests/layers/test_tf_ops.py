"""Keras 2 op layers (weighttie.layers.tf_ops): each ``tf.*`` function tf_keras turns
into a ``TFOpLambda`` / ``SlicingOpLambda`` layer, against tf_keras's own shapes."""

from __future__ import annotations

from typing import Any

from layers.family import FamilyOracle
from layers.shape_oracle import Corpus, OpCase
from weighttie.layers import output_shapes, tf_ops

A, B, V, N = (None, 4, 6), (None, 1, 6), (None, 6), (None, None, 6)
FULL, IMAGE = (2, 4, 6), (None, 8, 8, 3)


UNARY_FUNCTIONS = [
    "abs", "nn.relu6", "nn.elu", "nn.selu", "nn.silu", "nn.softsign", "nn.log_softmax",
    "nn.leaky_relu", "math.log1p", "math.expm1", "math.floor", "math.round", "math.sin",
    "math.atanh", "math.log_sigmoid", "math.is_nan", "math.cumprod", "math.lgamma", "math.erfc",
    "math.reciprocal", "math.exp", "math.sqrt", "math.rsqrt", "math.square", "sign", "math.erf",
    "zeros_like", "ones_like", "identity", "stop_gradient", "math.softplus", "math.real",
    "math.acos", "math.acosh", "math.asin", "math.asinh", "math.atan", "math.ceil", "math.conj",
    "math.cos", "math.cosh", "math.digamma", "math.imag", "math.is_inf", "math.log", "math.sinh",
    "math.tan", "math.reduce_logsumexp",
]  # fmt: skip
BINARY_FUNCTIONS = [
    "math.floordiv", "math.floormod", "math.squared_difference", "math.divide_no_nan",
    "math.multiply_no_nan", "math.equal", "math.not_equal", "math.less", "math.less_equal",
    "math.greater_equal", "math.xdivy", "math.xlogy", "realdiv", "math.divide",
]  # fmt: skip


def _tf_function(tf: Any, dotted: str) -> Any:
    value = tf
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


OP_CASES = [
    *(OpCase(f, (N,), lambda tf, x, f=f: _tf_function(tf, f)(x)) for f in UNARY_FUNCTIONS),
    *(OpCase(f, (A, B), lambda tf, x, y, f=f: _tf_function(tf, f)(x, y)) for f in BINARY_FUNCTIONS),
    OpCase("math.atan2", (A, V), lambda tf, y, x: tf.math.atan2(y, x)),
    OpCase("constant * x", (A,), lambda tf, a: 2.0 * a),
    OpCase("constant - x", (N,), lambda tf, n: 2.0 - n),
    OpCase("x // y", (A, B), lambda tf, a, b: a // b),
    OpCase("bool ops", (A,), lambda tf, a: tf.math.logical_not((a > 0) & (a < 1) | (a > 2))),
    OpCase("reduce_any", (A,), lambda tf, a: tf.reduce_any(a > 0, axis=[1])),
    OpCase("reduce_all", (A,), lambda tf, a: tf.reduce_all(a > 0, axis=-1, keepdims=True)),
    OpCase("reduce_variance", (A,), lambda tf, a: tf.math.reduce_variance(a, 1, keepdims=True)),
    OpCase("reduce_euclidean_norm", (N,), lambda tf, n: tf.math.reduce_euclidean_norm(n, -1)),
    OpCase("argmin", (A,), lambda tf, a: tf.math.argmin(a, 1)),
    OpCase("matrix_transpose", (A,), lambda tf, a: tf.linalg.matrix_transpose(a)),
    OpCase("norm over all", (A,), lambda tf, a: tf.norm(a)),
    OpCase("bitwise.invert", (V,), lambda tf, v: ~tf.cast(v, "int32")),
    OpCase("dropout", (A,), lambda tf, a: tf.nn.dropout(a, 0.5)),
    OpCase("__operators__.add", (A, B), lambda tf, a, b: a + b),
    OpCase("__operators__.add", (N, FULL), lambda tf, n, f: n + f),
    OpCase("math.subtract", (A, B), lambda tf, a, b: a - b),
    OpCase("math.subtract", (A,), lambda tf, a: a - 1.0),
    OpCase("math.multiply", (A, V), lambda tf, a, v: a * v),
    OpCase("math.multiply", (A,), lambda tf, a: a * [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    OpCase("math.truediv", (A,), lambda tf, a: a / 2.0),
    OpCase("math.maximum", (A, B), lambda tf, a, b: tf.maximum(a, b)),
    OpCase("math.minimum", (N, B), lambda tf, n, b: tf.minimum(n, b)),
    OpCase("math.pow", (A,), lambda tf, a: tf.pow(a, 2.0)),
    OpCase("math.add", (A, FULL), lambda tf, a, f: tf.add(a, f)),
    OpCase("math.greater", (A,), lambda tf, a: a > 0),
    OpCase("nn.relu", (A,), lambda tf, a: tf.nn.relu(a)),
    OpCase("math.sigmoid", (N,), lambda tf, n: tf.sigmoid(n)),
    OpCase("math.tanh", (A,), lambda tf, a: tf.tanh(a)),
    OpCase("nn.softmax", (A,), lambda tf, a: tf.nn.softmax(a, axis=1)),
    OpCase("nn.gelu", (A,), lambda tf, a: tf.nn.gelu(a)),
    OpCase("cast", (A,), lambda tf, a: tf.cast(a, "float16")),
    OpCase("math.l2_normalize", (A,), lambda tf, a: tf.math.l2_normalize(a, axis=-1)),
    OpCase("clip_by_value", (A,), lambda tf, a: tf.clip_by_value(a, 0.0, 1.0)),
    OpCase("math.negative", (A,), lambda tf, a: -a),
    OpCase("math.cumsum", (A,), lambda tf, a: tf.math.cumsum(a, axis=1)),
    OpCase("nn.bias_add", (A,), lambda tf, a: tf.nn.bias_add(a, tf.ones(6))),
    OpCase("reshape", (A,), lambda tf, a: tf.reshape(a, (-1, 24))),
    OpCase("reshape", (A,), lambda tf, a: tf.reshape(a, (-1, 2, 12))),
    OpCase("reshape", (A,), lambda tf, a: tf.reshape(a, [-1])),
    OpCase("reshape", (FULL,), lambda tf, f: tf.reshape(f, (-1, 3))),
    OpCase("reshape", (FULL,), lambda tf, f: tf.reshape(f, (6, 8))),
    OpCase("reshape", (N,), lambda tf, n: tf.reshape(n, (-1, 6))),
    OpCase("concat", (A, B), lambda tf, a, b: tf.concat([a, b], 1)),
    OpCase("concat", (A,), lambda tf, a: tf.concat([a, a], -1)),
    OpCase("concat", (N, A), lambda tf, n, a: tf.concat([n, a], 1)),
    OpCase("stack", (A,), lambda tf, a: tf.stack([a, a], axis=1)),
    OpCase("stack", (V,), lambda tf, v: tf.stack([v, v, v], axis=-1)),
    OpCase("compat.v1.transpose", (A,), lambda tf, a: tf.transpose(a, perm=[0, 2, 1])),
    OpCase("compat.v1.transpose", (A,), lambda tf, a: tf.transpose(a)),
    OpCase("expand_dims", (A,), lambda tf, a: tf.expand_dims(a, -1)),
    OpCase("expand_dims", (V,), lambda tf, v: tf.expand_dims(v, 1)),
    OpCase("compat.v1.squeeze", (B,), lambda tf, b: tf.squeeze(b, axis=1)),
    OpCase("compat.v1.squeeze", (B,), lambda tf, b: tf.squeeze(b)),
    OpCase("compat.v1.squeeze", ((3, 1, 6),), lambda tf, x: tf.squeeze(x)),
    OpCase("tile", (A,), lambda tf, a: tf.tile(a, [1, 2, 3])),
    OpCase("compat.v1.shape", (A,), lambda tf, a: tf.shape(a)),
    OpCase("math.argmax", (A,), lambda tf, a: tf.math.argmax(a, axis=-1)),
    OpCase("math.argmax", (A,), lambda tf, a: tf.argmax(a, 1)),
    OpCase("one_hot", (V,), lambda tf, v: tf.one_hot(tf.cast(v, "int32"), 5)),
    OpCase("one_hot", (V,), lambda tf, v: tf.one_hot(tf.cast(v, "int32"), 5, axis=1)),
    OpCase("compat.v1.pad", (A,), lambda tf, a: tf.pad(a, [[0, 0], [1, 2], [0, 1]])),
    OpCase("math.reduce_mean", (A,), lambda tf, a: tf.reduce_mean(a, axis=[1, 2], keepdims=True)),
    OpCase("math.reduce_sum", (A,), lambda tf, a: tf.reduce_sum(a, 1)),
    OpCase("math.reduce_max", (A,), lambda tf, a: tf.reduce_max(a)),
    OpCase("math.reduce_min", (A,), lambda tf, a: tf.reduce_min(a, 1, True)),
    OpCase("math.reduce_prod", (A,), lambda tf, a: tf.reduce_prod(a, [1, 2])),
    OpCase("math.reduce_std", (N,), lambda tf, n: tf.math.reduce_std(n, axis=-1)),
    OpCase("linalg.matmul", (A,), lambda tf, a: tf.matmul(a, a, transpose_b=True)),
    OpCase("linalg.matmul", (A,), lambda tf, a: tf.matmul(a, a, transpose_a=True)),
    OpCase("linalg.matmul", (A,), lambda tf, a: tf.matmul(a, tf.ones((6, 3)))),
    OpCase("linalg.matmul", (A, (2, 6, 4)), lambda tf, a, f: a @ f),
    OpCase("image.resize", (IMAGE,), lambda tf, x: tf.image.resize(x, (4, 5))),
    OpCase("split", (A,), lambda tf, a: tf.split(a, 2, axis=-1)),
    OpCase("split", (A,), lambda tf, a: tf.split(a, [1, 3], axis=1)),
    OpCase("unstack", (A,), lambda tf, a: tf.unstack(a, axis=1)),
    OpCase("math.top_k", (A,), lambda tf, a: tf.math.top_k(a, 2)),
    OpCase("broadcast_to", (V,), lambda tf, v: tf.broadcast_to(v[:, None, :], (2, 4, 6))),
    OpCase("compat.v1.gather", (A,), lambda tf, a: tf.gather(a, [0, 2], axis=1)),
    OpCase("where", (A, B), lambda tf, a, b: tf.where(a > 0, a, b)),
    OpCase("compat.v1.norm", (A,), lambda tf, a: tf.norm(a, axis=-1)),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[:, 1:3, ::2]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[:, 0]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[..., None, :2]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[:, -1]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[:, 1:, None]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[:, ::-1]),
    OpCase("__operators__.getitem", (A,), lambda tf, a: a[..., 0:3]),
    OpCase("__operators__.getitem", (N,), lambda tf, n: n[:, 1:3]),
    OpCase("__operators__.getitem", (FULL,), lambda tf, f: f[1:, 2]),
    OpCase("__operators__.getitem", (FULL,), lambda tf, f: f[::-1, 1:5, -2:]),
    OpCase("__operators__.getitem", (FULL,), lambda tf, f: f[..., 3]),
]


UNSURE = {
    "an op without a rule": ("TFOpLambda", {"function": "nn.conv2d"}, [(None, 8, 8, 3)], {}),
    "tensor argument without its shape": (
        "TFOpLambda",
        {"function": "__operators__.add"},
        [(None, 3)],
        {"y": ["other", 0, 0]},
    ),
}


class TestTfOps(FamilyOracle):
    family = tf_ops
    op_cases = OP_CASES
    unsure = UNSURE

    def test_op_layers_made_on_the_way_match(self, keras2_corpus: Corpus) -> None:
        """Op layers a case made on the way (the ``cast`` before ``one_hot``) are checked too."""
        made = [group for group in keras2_corpus.outcomes if group.startswith("made:")]
        assert made
        for group in made:
            keras2_corpus.check(group)


def test_squeeze_of_unknown_dims_has_unknown_rank() -> None:
    got = output_shapes("TFOpLambda", {"function": "compat.v1.squeeze"}, [(None, 1, 6)], {})
    assert got == (None,)
