"""keras_hub's layers (weighttie.layers.keras_hub): the names a graphless file's groups
give their variables, against keras_hub's own layers; which classes a layers list's
group names stand for; which variables keras_hub creates non-trainable, and the classes
of the sublayers a block keeps on the way to them, against real keras_hub models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from weighttie.layers import (
    CATALOGUE,
    graphless_classes,
    hub_variable_names,
    is_builtin,
    keras_hub,
    sublayer_class,
    trainable_flags,
)
from weighttie.layers.layer_class import Sublayers, Variables


def _hub_layers() -> dict[str, tuple[Callable[[], Any], tuple[int | None, ...]]]:
    hub = pytest.importorskip("keras_hub")
    from keras_hub.src.models.t5.t5_layer_norm import T5LayerNorm

    layers = hub.layers
    return {
        "PositionEmbedding": (lambda: layers.PositionEmbedding(sequence_length=4), (None, 4, 3)),
        "T5LayerNorm": (T5LayerNorm, (None, 3)),
        "RMSNormalization": (lambda: layers.RMSNormalization(input_dim=3), (None, 3)),
        "ReversibleEmbedding": (lambda: layers.ReversibleEmbedding(10, 4), (None, 3)),
        "ReversibleEmbedding-untied": (
            lambda: layers.ReversibleEmbedding(10, 4, tie_weights=False),
            (None, 3),
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "PositionEmbedding",
        "T5LayerNorm",
        "RMSNormalization",
        "ReversibleEmbedding",
        "ReversibleEmbedding-untied",
    ],
)
def test_names_by_count_are_keras_hubs(name: str) -> None:
    """A graphless file gives a layer's variables and its group's class, no config: the
    names by count are those keras_hub's layer gives them."""
    make, shape = _hub_layers()[name]
    layer = make()
    layer.build(shape)
    names = [v.name for v in layer.weights]
    assert hub_variable_names(type(layer).__name__, {}, len(names)) == names


def test_keras_hub_classes_are_not_keras_builtins() -> None:
    """keras_hub's blocks run their sublayers by their own code: a Keras 2 entry of such a
    name is no Keras layer."""
    for entry in keras_hub.CLASSES:
        assert CATALOGUE[entry.name].package == "keras_hub"
        assert not is_builtin({"class_name": entry.name})
        assert isinstance(entry.sublayers, Sublayers) and not entry.sublayers.runs_once


def test_layers_lists_name_known_classes() -> None:
    """Every class a graphless layers list can name is catalogued, once."""
    names = graphless_classes()
    assert len(names) == len(set(names))
    assert set(names) <= set(CATALOGUE)
    assert set(keras_hub.LISTED_KERAS_CLASSES) <= set(names)


# -- keras_hub's non-trainable variables, and the blocks on the way to them ----------------


def _own(layer: Any) -> list[Any]:
    """A layer's own variables in saving order (``Layer.save_own_variables``: those
    created trainable, then the others)."""
    return [*layer._trainable_variables, *layer._non_trainable_variables]


def _attribute_layers(layer: Any) -> dict[str, Any]:
    """The layers a layer keeps as attributes (not in lists), by attribute name; none for
    a model, which saves its layers in its ``layers`` list, under their classes' names."""
    import keras

    if isinstance(layer, keras.Model):
        return {}
    return {k: v for k, v in vars(layer).items() if isinstance(v, keras.Layer)}


def _check_against_catalogue(model: Any) -> set[str]:
    """Check every layer of a catalogued keras_hub class inside ``model`` (itself included)
    against its entry, and return the classes met.

    Its own variables: the names by count are keras_hub's and say which are trainable
    (numbers stand where the count cannot tell). Its attributes: each tabled one holds
    a layer of the class tabled, or a stand-in holding nothing; each untabled one holds
    no non-trainable variable (else the file's numbered variables would count trainable).
    """
    met = set()
    for layer in [model, *model._flatten_layers(include_self=False)]:
        entry = CATALOGUE.get(type(layer).__name__)
        if entry is None or entry.package != "keras_hub":
            continue
        met.add(entry.name)
        own = _own(layer)
        names = hub_variable_names(entry.name, {}, len(own))
        assert trainable_flags(entry.name, {}, names) == [v.trainable for v in own], layer.name
        for name, variable in zip(names, own, strict=True):
            assert name.isdigit() or name == variable.name, (layer.name, name, variable.name)
        assert isinstance(entry.sublayers, Sublayers)
        tabled = entry.sublayers.attributes
        for key, sublayer in _attribute_layers(layer).items():
            if key in tabled and type(sublayer).__name__ != tabled[key]:
                assert not sublayer.weights, f"{layer.name}.{key} is a {type(sublayer).__name__}"
            if key not in tabled:
                frozen = [v.path for v in sublayer.weights if not v.trainable]
                assert not frozen, f"{entry.name}.{key} holds non-trainable {frozen}"
    return met


def _family(variant: str) -> Callable[[], Any]:
    def build() -> Any:
        from support import hub_families

        return hub_families.backbone(variant)

    return build


def _hgnetv2_light() -> Any:
    """HGNetV2 with light blocks (``HGNetV2ConvLayerLight``) in its second stage."""
    from support import hub_families

    model = hub_families.backbone("hgnetv2")
    config = {**model.get_config(), "use_lightweight_conv_block": [False, True]}
    return type(model).from_config(config)


def _efficientnet_cba() -> Any:
    import keras
    from keras_hub.src.models.efficientnet.cba import CBABlock

    inputs = keras.Input((8, 8, 4))
    return keras.Model(inputs, CBABlock(4, 4, name="cba")(inputs))


def _gemma4_vision_options() -> Any:
    """Gemma4's vision output standardized, its clippable dense without clipping."""
    import keras
    from keras_hub.src.models.gemma4.gemma4_layers import Gemma4ClippableEinsumDense
    from keras_hub.src.models.gemma4.gemma4_vision_encoder import Gemma4VisionOutput

    inputs = keras.Input((3, 4))
    x = Gemma4VisionOutput(4, standardize=True)(inputs)
    x = Gemma4ClippableEinsumDense("btd,df->btf", (None, 4), use_clipped_linears=False)(x)
    return keras.Model(inputs, x)


def _dinov2_embeddings() -> Any:
    """DINOV2Embedding with neither option (3 variables) and with registers only (4)."""
    import keras
    from keras_hub.src.models.dinov2.dinov2_layers import DINOV2Embedding

    inputs = keras.Input((28, 28, 3))
    common = {"hidden_dim": 8, "patch_size": 14, "image_shape": (28, 28, 3)}
    plain = DINOV2Embedding(**common, use_mask_token=False)(inputs)
    registers = DINOV2Embedding(**common, use_mask_token=False, num_register_tokens=2)(inputs)
    return keras.Model(inputs, [plain, registers])


def _gemma4_assistant() -> Any:
    from support import hub_families

    return hub_families.gemma4_assistant()


#: Real keras_hub models, and the catalogued classes each must hold.
HOLDERS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "clip_vision": (_family("clip_vision"), {"CLIPVisionEmbedding"}),
    "siglip": (_family("siglip"), {"SigLIPVisionEmbedding", "SigLIPTextEmbedding"}),
    "dinov2": (_family("dinov2"), {"DINOV2Embedding"}),
    "dinov2_registers": (_family("dinov2_registers"), {"DINOV2Embedding"}),
    "dinov2_options": (_dinov2_embeddings, {"DINOV2Embedding"}),
    "moonshine": (_family("moonshine"), {"MoonshineRotaryEmbedding"}),
    "smollm3": (
        _family("smollm3"),
        {"SmolLM3DecoderLayer", "SmolLM3Attention", "SmolLM3RotaryEmbedding"},
    ),
    "sam": (_family("sam"), {"SAMPromptEncoder", "RandomFrequencyPositionalEmbeddings"}),
    "gemma4": (_family("gemma4"), {"Gemma4TextDecoderBlock"}),
    "gemma4_vision": (
        _family("gemma4_vision"),
        {
            "Gemma4TextDecoderBlock",
            "Gemma4VisionEncoderBlock",
            "Gemma4VisionDecoderBlock",
            "Gemma4VisionAttention",
            "Gemma4ClippableEinsumDense",
            "Gemma4VisionOutput",
        },
    ),
    "gemma4_vision_options": (
        _gemma4_vision_options,
        {"Gemma4VisionOutput", "Gemma4ClippableEinsumDense"},
    ),
    "gemma4_assistant": (_gemma4_assistant, {"Gemma4AssistantCausalLM", "Gemma4TextDecoderBlock"}),
    "efficientnet": (_family("efficientnet"), {"FusedMBConvBlock", "MBConvBlock"}),
    "efficientnet_cba": (_efficientnet_cba, {"CBABlock"}),
    "mobilenet": (
        _family("mobilenet"),
        {"ConvBnActBlock", "DepthwiseConvBlock", "InvertedResidualBlock"},
    ),
    "hgnetv2": (
        _family("hgnetv2"),
        {
            "HGNetV2Embeddings",
            "HGNetV2Encoder",
            "HGNetV2Stage",
            "HGNetV2BasicLayer",
            "HGNetV2ConvLayer",
        },
    ),
    "hgnetv2_light": (_hgnetv2_light, {"HGNetV2ConvLayerLight", "HGNetV2ConvLayer"}),
}


@pytest.mark.parametrize("name", sorted(HOLDERS))
def test_hub_entries_are_keras_hubs_own_layers(name: str) -> None:
    """Built from keras_hub itself: a class's variables named by count are those its layer
    creates, trainable as Keras says; a block's tabled attributes hold the class tabled."""
    pytest.importorskip("keras_hub")
    build, expected = HOLDERS[name]
    assert expected <= _check_against_catalogue(build())


def test_every_hub_entry_with_a_rule_is_checked_on_a_real_layer() -> None:
    """Each keras_hub entry that names variables by count or classes of attributes is met
    in one of the models above: no rule stands unchecked."""
    ruled = {
        entry.name
        for entry in keras_hub.CLASSES
        if (isinstance(entry.variables, Variables) and entry.variables.non_trainable)
        or (isinstance(entry.sublayers, Sublayers) and entry.sublayers.attributes)
    }
    checked = set().union(*(expected for _, expected in HOLDERS.values()))
    assert ruled <= checked


def test_a_stand_in_holding_nothing_is_no_evidence_of_the_tabled_class() -> None:
    """HGNetV2Stage keeps an Identity as ``downsample_layer`` where it does not downsample:
    an empty group under that name is left untold, not called an HGNetV2ConvLayer."""
    assert sublayer_class("HGNetV2Stage", {}, "downsample_layer") == ("HGNetV2ConvLayer", {})
    assert sublayer_class("HGNetV2Stage", {}, "downsample_layer", empty=True) == ("?", {})
    assert sublayer_class("MBConvBlock", {}, "bn1") == ("BatchNormalization", {})
    assert sublayer_class("MBConvBlock", {}, "conv1") == ("?", {})


def test_a_count_that_cannot_name_a_variable_keeps_its_number_and_its_trainability() -> None:
    """Four DINOV2Embedding variables hold ``mask_token`` or ``register_tokens``: which is not
    in the file, so it stays numbered; both are trainable, ``position_embeddings`` is not."""
    names = hub_variable_names("DINOV2Embedding", {}, 4)
    assert names == ["cls_token", "1", "interpolated_position_embeddings", "position_embeddings"]
    assert trainable_flags("DINOV2Embedding", {}, names) == [True, True, True, False]
