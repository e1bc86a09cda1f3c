"""keras_hub's layers, as a graphless model's weights file shows them.

A keras_hub model's config holds constructor arguments, not a graph: its weights
file is the only map of its layers, each saved under its class's snake-cased name
(``transformer_decoder_1``). These are the classes that name can stand for, and
what each says about its variables. Their calls are keras_hub's own code, which
decides how often their sublayers run; nothing about their calls is tabled.
keras_hub's ``ReversibleEmbedding`` and ``RMSNormalization`` share their names and
variables with Keras's (:mod:`~weighttie.layers.core`,
:mod:`~weighttie.layers.normalization`).

Some keras_hub layers create variables non-trainable (``add_weight(...,
trainable=False)``: index tables, fixed frequencies, frozen buffers); their entries
name them by count, as Keras saves them (those created trainable first). A block
keeps its sublayers as attributes, saved under the attribute's name, which does not
say the class: where a sublayer holding non-trainable variables sits below one (a
BatchNormalization's moving statistics inside a convolution block), the block's
entry names the class of each attribute on the way. Checked against keras_hub 0.32's
own layers in tests/layers/test_keras_hub.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from weighttie.layers.layer_class import UNKNOWN, LayerClass, Sublayers, Variables

__all__ = ["CLASSES", "FROZEN_IN_INIT", "LISTED_KERAS_CLASSES"]


def _hub(
    name: str,
    variables: Variables | None = None,
    attributes: Mapping[str, str] | None = None,
) -> LayerClass:
    """A keras_hub class: its call decides how its sublayers run; names by count, if
    tabled, and the classes of the sublayers it keeps as attributes, if tabled."""
    return LayerClass(
        name,
        shapes=UNKNOWN,
        macs=UNKNOWN,
        variables=UNKNOWN if variables is None else variables,
        sublayers=Sublayers(runs_once=False, attributes=attributes or {}),
        package="keras_hub",
    )


def _frozen(*names: str) -> Variables:
    """Variables the class always creates, all non-trainable, in creation order."""
    return Variables(None, non_trainable=frozenset(names), by_count={len(names): names})


def _same(name: str, *attributes: str) -> dict[str, str]:
    """Each of ``attributes`` holds a layer of class ``name``."""
    return dict.fromkeys(attributes, name)


_BN = "BatchNormalization"
_HG_CONV = "HGNetV2ConvLayer"
_CLIPPED = "Gemma4ClippableEinsumDense"

#: DINOV2Embedding: ``cls_token``, ``mask_token`` (``use_mask_token``), ``register_tokens``
#: (``num_register_tokens``), ``interpolated_position_embeddings``, then
#: ``position_embeddings``, created non-trainable: the pretrained table it interpolates from.
#: Four variables are one option's: which one is not in the file (numbered ``1``).
_DINOV2_EMBEDDING = Variables(
    None,
    non_trainable=frozenset({"position_embeddings"}),
    by_count={
        3: ("cls_token", "interpolated_position_embeddings", "position_embeddings"),
        4: ("cls_token", "1", "interpolated_position_embeddings", "position_embeddings"),
        5: (
            "cls_token",
            "mask_token",
            "register_tokens",
            "interpolated_position_embeddings",
            "position_embeddings",
        ),
    },
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
    # Index tables of positions (integers), non-trainable.
    _hub(
        "CLIPVisionEmbedding",
        Variables(
            None,
            non_trainable=frozenset({"position_ids"}),
            by_count={2: ("class_embedding", "position_ids")},
        ),
    ),
    _hub("SigLIPVisionEmbedding", _frozen("position_ids")),
    _hub("SigLIPTextEmbedding", _frozen("position_ids")),
    _hub("DINOV2Embedding", _DINOV2_EMBEDDING),
    # Fixed frequencies and buffers loaded from a checkpoint.
    _hub("MoonshineRotaryEmbedding", _frozen("inv_freq")),
    _hub("SmolLM3RotaryEmbedding", _frozen("inv_freq")),
    _hub("SmolLM3Attention", attributes={"rotary_embedding": "SmolLM3RotaryEmbedding"}),
    _hub("SmolLM3DecoderLayer", attributes={"self_attn": "SmolLM3Attention"}),
    _hub("RandomFrequencyPositionalEmbeddings", _frozen("positional_encoding_gaussian_matrix")),
    _hub(
        "SAMPromptEncoder",
        attributes={"positional_embedding_layer": "RandomFrequencyPositionalEmbeddings"},
    ),
    _hub("Gemma4TextDecoderBlock", _frozen("layer_scalar")),
    _hub(_CLIPPED, _frozen("input_min", "input_max", "output_min", "output_max")),
    _hub(
        "Gemma4VisionAttention",
        attributes=_same(_CLIPPED, "query_dense", "key_dense", "value_dense", "output_dense"),
    ),
    _hub(
        "Gemma4VisionDecoderBlock",
        attributes={
            "attention": "Gemma4VisionAttention",
            **_same(_CLIPPED, "gating_ffw", "gating_ffw_2", "ffw_linear"),
        },
    ),
    _hub("Gemma4VisionEncoderBlock"),  # its encoder_blocks list names their class
    _hub("Gemma4VisionOutput", _frozen("std_bias", "std_scale")),  # with standardize
    _hub("Gemma4AssistantCausalLM", _frozen("token_ordering")),  # use_ordered_embeddings
    # Convolution blocks holding BatchNormalization (moving statistics non-trainable).
    _hub("FusedMBConvBlock", attributes=_same(_BN, "bn1", "bn2")),
    _hub("MBConvBlock", attributes=_same(_BN, "bn1", "bn2", "bn3")),
    _hub("CBABlock", attributes=_same(_BN, "bn1")),
    _hub("ConvBnActBlock", attributes=_same(_BN, "batch_normalization")),
    _hub(
        "DepthwiseConvBlock",
        attributes=_same(_BN, "batch_normalization1", "batch_normalization2"),
    ),
    _hub(
        "InvertedResidualBlock",
        attributes=_same(
            _BN, "batch_normalization1", "batch_normalization2", "batch_normalization3"
        ),
    ),
    _hub(_HG_CONV, attributes={"normalization": _BN}),
    _hub("HGNetV2ConvLayerLight", attributes=_same(_HG_CONV, "conv1_layer", "conv2_layer")),
    _hub(
        "HGNetV2Embeddings",
        attributes=_same(
            _HG_CONV, "stem1_layer", "stem2a_layer", "stem2b_layer", "stem3_layer", "stem4_layer"
        ),
    ),
    # layer_list: HGNetV2ConvLayer or HGNetV2ConvLayerLight, saved under the class's name
    _hub(
        "HGNetV2BasicLayer",
        attributes=_same(_HG_CONV, "aggregation_squeeze_conv", "aggregation_excitation_conv"),
    ),
    # blocks_list: HGNetV2BasicLayer; downsample_layer: Identity where it does not downsample
    _hub("HGNetV2Stage", attributes={"downsample_layer": _HG_CONV}),
    _hub("HGNetV2Encoder"),  # stages_list: HGNetV2Stage
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
#: original model). tests/test_keras_hub_static.py checks every family built offline
#: against Keras's own trainable split, so a family that freezes another is caught there.
FROZEN_IN_INIT: dict[str, frozenset[str]] = {
    "WhisperBackbone": frozenset({"position_embedding"}),
}
