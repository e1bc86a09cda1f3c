"""The test zoo: small real Keras models, each saying what it exercises.

Every builder seeds Keras's random generators, so the same builder gives the same
weights, and returns a built model. Models that must *not* be reported as shared
are here too (twin towers, clones, weightless layers called twice).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

__all__ = ["APPLICATIONS", "READS", "ZOO"]


def _tower(name: str = "tower") -> keras.Model:
    image = keras.Input((12, 12, 3), name=f"{name}_in")
    x = layers.Conv2D(4, 3, name=f"{name}_conv")(image)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    x = layers.Dense(8, name=f"{name}_embed")(x)
    return keras.Model(image, x, name=name)


def siamese_lstm() -> keras.Model:
    """The shared-LSTM siamese model: two sequences, one LSTM, concat, Dense.

    One shared-layer group (the LSTM, 2 calls, variables on its cell).
    """
    keras.utils.set_random_seed(1)
    lstm = layers.LSTM(8, name="lstm")
    a = keras.Input((None, 6), name="left")
    b = keras.Input((None, 6), name="right")
    merged = layers.concatenate([lstm(a), lstm(b)], name="merge")
    return keras.Model([a, b], layers.Dense(1, name="score")(merged), name="siamese_lstm")


def siamese_tower() -> keras.Model:
    """A tower model called on two inputs: one shared-model group for the tower."""
    keras.utils.set_random_seed(2)
    tower = _tower()
    a = keras.Input((12, 12, 3), name="left")
    b = keras.Input((12, 12, 3), name="right")
    merged = layers.Concatenate(name="merge")([tower(a), tower(b)])
    return keras.Model([a, b], layers.Dense(1, name="score")(merged), name="siamese_tower")


def twin_towers() -> keras.Model:
    """The same tower built twice: no sharing, duplicated 0, twice the tower's parameters."""
    keras.utils.set_random_seed(2)
    left_tower, right_tower = _tower("tower_a"), _tower("tower_b")
    a = keras.Input((12, 12, 3), name="left")
    b = keras.Input((12, 12, 3), name="right")
    merged = layers.Concatenate(name="merge")([left_tower(a), right_tower(b)])
    return keras.Model([a, b], layers.Dense(1, name="score")(merged), name="twin_towers")


def conv_two_sizes() -> keras.Model:
    """One Conv2D called on (32, 32, 3) and on (64, 64, 3): its two calls have different shapes."""
    keras.utils.set_random_seed(3)
    conv = layers.Conv2D(5, 3, name="conv")
    small = keras.Input((32, 32, 3), name="small")
    large = keras.Input((64, 64, 3), name="large")
    pooled = [
        layers.GlobalMaxPooling2D(name=f"pool_{i}")(conv(x)) for i, x in enumerate((small, large))
    ]
    return keras.Model([small, large], layers.Add(name="add")(pooled), name="conv_two_sizes")


def multi_io() -> keras.Model:
    """Two inputs, two outputs, nothing shared (the Keras functional-API guide's model)."""
    keras.utils.set_random_seed(4)
    title = keras.Input((10,), dtype="int32", name="title")
    meta = keras.Input((5,), name="meta")
    x = layers.Embedding(50, 8, name="embed")(title)
    x = layers.LSTM(6, name="lstm")(x)
    aux = layers.Dense(1, name="aux_out")(x)
    x = layers.concatenate([x, meta], name="merge")
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    main = layers.Dense(1, name="main_out")(x)
    return keras.Model([title, meta], [main, aux], name="multi_io")


def sequential() -> keras.Model:
    """Sequential with LSTM, Dropout (its seed state is not a weight) and BatchNormalization."""
    keras.utils.set_random_seed(5)
    return keras.Sequential(
        [
            keras.Input((7, 3), name="steps"),
            layers.LSTM(4, name="lstm"),
            layers.Dropout(0.2, name="dropout"),
            layers.BatchNormalization(name="bn"),
            layers.Dense(2, name="out"),
        ],
        name="sequential",
    )


@keras.saving.register_keras_serializable(package="weighttie_zoo")
class Encoder(keras.Model):
    """A subclassed model: no functional graph, so calls are unknown."""

    def __init__(self, units: int = 6, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, name="hidden")
        self.norm = layers.BatchNormalization(name="norm")
        self.out = layers.Dense(2, name="out")

    def call(self, x: object) -> object:
        return self.out(self.norm(self.hidden(x)))

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "units": self.units}


def subclassed() -> keras.Model:
    """A subclassed model: layers, variables and counts, node facts unknown (null)."""
    keras.utils.set_random_seed(6)
    model = Encoder(name="encoder")
    model(ops.zeros((1, 4)))
    return model


def nested_twice() -> keras.Model:
    """A nested model inside a nested model, both called twice: the inner Dense runs four times."""
    keras.utils.set_random_seed(7)
    x = keras.Input((6,), name="inner_in")
    inner = keras.Model(x, layers.Dense(3, name="dense")(x), name="inner")
    y = keras.Input((6,), name="outer_in")
    outer = keras.Model(y, layers.Add(name="add")([inner(y), inner(y)]), name="outer")
    a = keras.Input((6,), name="a")
    b = keras.Input((6,), name="b")
    merged = layers.Concatenate(name="merge")([outer(a), outer(b)])
    return keras.Model([a, b], merged, name="nested_twice")


def shared_with_other_model() -> keras.Model:
    """A Dense also used by a second model: the other model's call must not show up."""
    keras.utils.set_random_seed(8)
    dense = layers.Dense(4, name="shared_dense")
    other_in = keras.Input((3,), name="other_in")
    keras.Model(other_in, dense(other_in), name="other")  # a foreign call on `dense`
    x = keras.Input((3,), name="x")
    return keras.Model(x, layers.Dense(1, name="head")(dense(x)), name="main")


@keras.saving.register_keras_serializable(package="weighttie_zoo")
class TiedOutput(layers.Layer):
    """Projects onto the vocabulary with an Embedding's own matrix (tied embeddings)."""

    def __init__(self, embedding: layers.Embedding, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.embedding = embedding

    def build(self, input_shape: object) -> None:
        self.embeddings = self.embedding.embeddings
        self.bias = self.add_weight(
            shape=(self.embedding.input_dim,), initializer="zeros", name="bias"
        )

    def call(self, x: object) -> object:
        return ops.matmul(x, ops.transpose(self.embeddings)) + self.bias


def tied_embeddings() -> keras.Model:
    """Tied input/output embeddings: a `tied` group of Embedding and TiedOutput, no shared layer."""
    keras.utils.set_random_seed(9)
    embedding = layers.Embedding(30, 8, name="embedding")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    h = layers.Dense(8, name="mix")(embedding(tokens))
    return keras.Model(tokens, TiedOutput(embedding, name="logits")(h), name="tied_lm")


def weightless_reuse() -> keras.Model:
    """Weightless layers called twice and raw keras.ops in the graph: nothing is shared."""
    keras.utils.set_random_seed(10)
    act = layers.Activation("relu", name="relu")
    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    summed = ops.add(act(a), act(b))
    return keras.Model([a, b], layers.Dense(2, name="out")(summed), name="weightless_reuse")


def cloned_tower() -> keras.Model:
    """A tower and its copy holding equal values: separate variables, no group."""
    keras.utils.set_random_seed(11)
    tower = _tower("tower")
    config = tower.get_config()
    config["name"] = "tower_copy"
    clone = keras.Model.from_config(config)
    clone.set_weights(tower.get_weights())
    a = keras.Input((12, 12, 3), name="left")
    b = keras.Input((12, 12, 3), name="right")
    return keras.Model([a, b], layers.Add(name="add")([tower(a), clone(b)]), name="cloned")


# -- sharing off the graph's main road: uses are reads ------------------------------------


@keras.saving.register_keras_serializable(package="weighttie_zoo")
class ReadsKernel(layers.Layer):
    """Computes with another layer's variable without calling that layer: ``x @ source.<name>ᵀ``
    (a hand-written tied output head, a decoder with the encoder's transposed kernel)."""

    def __init__(self, source: layers.Layer, variable: str = "kernel", **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.variable = variable

    def call(self, x: object) -> object:
        return ops.matmul(x, ops.transpose(getattr(self.source, self.variable)))

    def get_config(self) -> dict[str, object]:
        source = keras.saving.serialize_keras_object(self.source)
        return {**super().get_config(), "source": source, "variable": self.variable}

    @classmethod
    def from_config(cls, config: dict[str, object]) -> ReadsKernel:
        config = dict(config)
        config["source"] = keras.saving.deserialize_keras_object(config["source"])
        return cls(**config)  # type: ignore[arg-type]


@keras.saving.register_keras_serializable(package="weighttie_zoo")
class CallsLayer(layers.Layer):
    """Runs another layer inside its own call, through ``__call__`` or straight through
    ``.call()`` (which Keras's own bookkeeping never sees)."""

    def __init__(self, inner: layers.Layer, direct: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.inner = inner
        self.direct = direct

    def call(self, x: object) -> object:
        return self.inner.call(x) if self.direct else self.inner(x)

    def get_config(self) -> dict[str, object]:
        inner = keras.saving.serialize_keras_object(self.inner)
        return {**super().get_config(), "inner": inner, "direct": self.direct}

    @classmethod
    def from_config(cls, config: dict[str, object]) -> CallsLayer:
        config = dict(config)
        config["inner"] = keras.saving.deserialize_keras_object(config["inner"])
        return cls(**config)  # type: ignore[arg-type]


def shared_rnn_cell(cell: str = "SimpleRNNCell") -> keras.Model:
    """One RNN cell given to two ``RNN`` layers: one cell, used once per call of each RNN
    (a shared-layer group over the two places), though no graph calls the cell."""
    keras.utils.set_random_seed(13)
    shared = getattr(layers, cell)(3, name="cell")
    x = keras.Input((5, 2), name="seq")
    first, second = layers.RNN(shared, name="rnn_a"), layers.RNN(shared, name="rnn_b")
    return keras.Model(x, layers.Add(name="add")([first(x), second(x)]), name=f"shared_{cell}")


def wrapped_and_direct() -> keras.Model:
    """A Dense wrapped by TimeDistributed and also called directly: used twice."""
    keras.utils.set_random_seed(14)
    proj = layers.Dense(6, name="proj")
    x = keras.Input((4, 6), name="seq")
    wrapped = layers.TimeDistributed(proj, name="td")(x)
    return keras.Model(x, layers.Add(name="add")([wrapped, proj(x)]), name="wrapped_and_direct")


def tied_head_reads_embeddings() -> keras.Model:
    """A head computing ``h @ emb.embeddingsᵀ`` without calling ``emb``: the matrix is read
    twice per forward pass (a read-shared group), though only ``emb`` holds it."""
    keras.utils.set_random_seed(15)
    emb = layers.Embedding(100, 8, name="tok")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    h = layers.Dense(8, name="mix")(emb(tokens))
    head = ReadsKernel(emb, "embeddings", name="tied_out")
    return keras.Model(tokens, head(h), name="tied_head")


def transposed_decoder() -> keras.Model:
    """A decoder reading the encoder's kernel transposed: the kernel is read twice, the
    bias once."""
    keras.utils.set_random_seed(16)
    enc = layers.Dense(4, name="enc")
    x = keras.Input((6,), name="x")
    return keras.Model(x, ReadsKernel(enc, name="dec")(enc(x)), name="transposed_decoder")


def calls_through_call() -> keras.Model:
    """A layer run again through ``other.call(x)`` inside a custom layer: used twice."""
    keras.utils.set_random_seed(17)
    dense = layers.Dense(3, name="d")
    x = keras.Input((3,), name="x")
    return keras.Model(x, CallsLayer(dense, direct=True, name="co")(dense(x)), name="call_again")


def layer_in_two_nested_models() -> keras.Model:
    """One Dense inside two nested models (an encoder and a decoder): used by both. Keras
    saves its variables once and cannot load the file back."""
    keras.utils.set_random_seed(18)
    shared = layers.Dense(8, name="shared")
    a = keras.Input((8,), name="enc_in")
    encoder = keras.Model(a, layers.Dense(8, name="e2")(shared(a)), name="encoder")
    b = keras.Input((8,), name="dec_in")
    decoder = keras.Model(b, shared(layers.Dense(8, name="d2")(b)), name="decoder")
    x = keras.Input((8,), name="x")
    return keras.Model(x, decoder(encoder(x)), name="two_nested")


#: Sharing no graph call shows: name → builder (docs/concepts.md, "Uses are reads").
READS: dict[str, Callable[[], keras.Model]] = {
    "shared_simple_rnn_cell": shared_rnn_cell,
    "shared_gru_cell": lambda: shared_rnn_cell("GRUCell"),
    "wrapped_and_direct": wrapped_and_direct,
    "tied_head_reads_embeddings": tied_head_reads_embeddings,
    "transposed_decoder": transposed_decoder,
    "calls_through_call": calls_through_call,
    "layer_in_two_nested_models": layer_in_two_nested_models,
}


#: name → builder; every model here is analyzed, saved, reloaded and reported.
ZOO: dict[str, Callable[[], keras.Model]] = {
    "siamese_lstm": siamese_lstm,
    "siamese_tower": siamese_tower,
    "twin_towers": twin_towers,
    "conv_two_sizes": conv_two_sizes,
    "multi_io": multi_io,
    "sequential": sequential,
    "subclassed": subclassed,
    "nested_twice": nested_twice,
    "shared_with_other_model": shared_with_other_model,
    "tied_embeddings": tied_embeddings,
    "weightless_reuse": weightless_reuse,
    "cloned_tower": cloned_tower,
}

#: Zoo models plain Keras cannot save: a layer that keeps another layer as an attribute
#: (the tied embeddings' head) is not serializable without its own get_config.
UNSAVEABLE = frozenset({"tied_embeddings"})


def _application(name: str, shape: tuple[int, int, int]) -> Callable[[], keras.Model]:
    def build() -> keras.Model:
        keras.utils.set_random_seed(12)
        return getattr(keras.applications, name)(weights=None, input_shape=shape, classes=10)

    build.__doc__ = f"keras.applications.{name} with random weights (a real-world graph)."
    return build


#: Real-world graphs, built offline with random weights.
APPLICATIONS: dict[str, Callable[[], keras.Model]] = {
    "MobileNetV2": _application("MobileNetV2", (96, 96, 3)),
    "ResNet50": _application("ResNet50", (64, 64, 3)),
    "DenseNet121": _application("DenseNet121", (64, 64, 3)),
}
