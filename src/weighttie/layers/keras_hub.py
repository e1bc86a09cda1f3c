"""keras_hub's layers, as a graphless model's weights file shows them.

A keras_hub model's config holds constructor arguments, not a graph: its weights
file is the only map of its layers, each saved under its class's snake-cased name
(``transformer_decoder_1``). These are the classes that name can stand for, and
what each says about its variables. Their calls are keras_hub's own code, which
decides how often their sublayers run; nothing else about them is tabled.
keras_hub's ``ReversibleEmbedding`` and ``RMSNormalization`` share their names and
variables with Keras's (:mod:`~weighttie.layers.core`,
:mod:`~weighttie.layers.normalization`).
"""

from __future__ import annotations

from weighttie.layers.layer_class import CALL_DECIDES, UNKNOWN, LayerClass, Variables

__all__ = ["CLASSES", "FROZEN_IN_INIT", "LISTED_KERAS_CLASSES"]


def _hub(name: str, variables: Variables | None = None) -> LayerClass:
    """A keras_hub class: its call decides how its sublayers run; names by count, if tabled."""
    return LayerClass(
        name,
        shapes=UNKNOWN,
        macs=UNKNOWN,
        variables=UNKNOWN if variables is None else variables,
        sublayers=CALL_DECIDES,
        package="keras_hub",
    )


CLASSES = (
    _hub("PositionEmbedding", Variables(None, by_count={1: ("embeddings",)})),
    _hub("TokenAndPositionEmbedding"),
    _hub("RotaryEmbedding"),
    _hub("TransformerEncoder"),
    _hub("TransformerDecoder"),
    _hub("CachedMultiHeadAttention"),
    _hub("MaskedLMHead"),
    _hub("GemmaDecoderBlock"),
    _hub("T5LayerNorm", Variables(None, by_count={1: ("weight",)})),
    _hub("T5TransformerLayer"),
    _hub("T5MultiHeadAttention"),
)

#: Keras's classes a keras_hub model's layers list commonly holds, besides those whose
#: variables the catalogue names: a group of that snake-cased name is a layer of that class.
LISTED_KERAS_CLASSES = (
    "InputLayer",
    "Add",
    "Multiply",
    "Concatenate",
    "Dropout",
    "Activation",
    "Softmax",
    "Flatten",
    "Reshape",
    "Lambda",
    "MultiHeadAttention",
    "RMSNormalization",
)

#: Layers a keras_hub backbone makes non-trainable in its constructor (``trainable=False``
#: passed in ``__init__``, so in no config the file holds), by the group its weights file
#: saves each under. Whisper's encoder position embedding is fixed (sinusoidal in the
#: original model). tests/layers/test_keras_hub.py checks every family built offline
#: against Keras's own trainable split, so a family that freezes another is caught there.
FROZEN_IN_INIT: dict[str, frozenset[str]] = {
    "WhisperBackbone": frozenset({"position_embedding"}),
}
