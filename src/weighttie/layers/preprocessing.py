"""Preprocessing: ``Rescaling``, ``Normalization``, the image augmentation layers
that keep shape, ``Resizing``, ``CenterCrop``, ``RandomCrop``, ``CategoryEncoding``,
``Hashing``, ``HashedCrossing``, ``Discretization``, ``StringLookup``,
``IntegerLookup``, ``TextVectorization`` (where the config decides the depth), and
``Pipeline`` and the audio and bounding-box layers (nothing known).

The state these layers hold (``Normalization``'s mean, variance and count; the
lookups' tables and idf weights; tf_keras's ``Discretization`` summary) is computed
by ``adapt``: none of it is trainable. ``Hashing(output_mode="one_hot")`` encodes
each element (Keras 3.15's symbolic shape encodes each sample); where symbolic and
eager shapes disagree with no clear answer (multi-hot or count encoding of inputs of
rank 3 or more) the shape is unknown. MACs: 0 for rescaling, normalization, the
encodings and lookups; the augmentations' and resizing's are not tabled (unknown).
"""

from __future__ import annotations

from weighttie.layers.layer_class import (
    NONE,
    RUNS_EACH_ONCE,
    UNKNOWN,
    LayerClass,
    Variables,
    weightless,
)
from weighttie.layers.shapes import (
    Config,
    ShapeCall,
    Shapes,
    bool_of,
    choice_of,
    int_of,
    is_channels_first,
    same_shape,
    single,
    value_of,
    with_rank,
)
from weighttie.layers.unsure import Unsure
from weighttie.report import Shape

__all__ = ["CLASSES"]


def _resize(config: Config, shape: Shape) -> Shape:
    """``Resizing`` / ``CenterCrop``: batched (rank 4) or single (rank 3) images."""
    with_rank(shape, 3, 4)
    height, width = int_of(value_of(config, "height"), 1), int_of(value_of(config, "width"), 1)
    start = (len(shape) - 3) + (1 if is_channels_first(config) else 0)
    dims = list(shape)
    dims[start], dims[start + 1] = height, width
    return tuple(dims)


def _random_crop(config: Config, shape: Shape) -> Shape:
    with_rank(shape, 3, 4)
    height, width = int_of(value_of(config, "height"), 1), int_of(value_of(config, "width"), 1)
    axis = -2 if is_channels_first(config) else -3
    dims = list(shape)
    dims[axis], dims[axis + 1] = height, width
    return tuple(dims)


_ENCODING_MODES = ("one_hot", "multi_hot", "count")


def _encode(shape: Shape, depth: int, mode: str) -> Shape:
    """Category encoding (``CategoryEncoding``, ``Hashing``, the lookups) of ``depth``.

    ``one_hot`` encodes each element (a trailing axis of 1 is replaced); the other
    modes encode each sample, the last axis of a rank-1 or rank-2 input. Beyond rank
    2 Keras's symbolic shape and the tensor it returns disagree: not understood.
    """
    if not shape:
        raise Unsure
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return (*shape[:-1], depth)
        return (*shape, depth)
    if len(shape) > 2:
        raise Unsure
    return (*shape[:-1], depth)


def _category_encoding(config: Config, shape: Shape) -> Shape:
    mode = choice_of(config, "output_mode", _ENCODING_MODES, "multi_hot")
    return _encode(shape, int_of(value_of(config, "num_tokens"), 1), mode)


def _hashing(config: Config, shape: Shape) -> Shape:
    mode = choice_of(config, "output_mode", ("int", *_ENCODING_MODES), "int")
    if mode == "int":
        return shape
    return _encode(shape, int_of(value_of(config, "num_bins"), 1), mode)


def _discretization(config: Config, shape: Shape) -> Shape:
    mode = choice_of(config, "output_mode", ("int", *_ENCODING_MODES), "int")
    if mode == "int":
        return shape
    boundaries = config.get("bin_boundaries")
    if isinstance(boundaries, list):
        depth = len(boundaries) + 1
    elif boundaries is None:
        depth = int_of(value_of(config, "num_bins"), 1)
    else:
        raise Unsure
    if mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return (*shape[:-1], depth)
        return (*shape, depth)
    if len(shape) >= 2:
        return (shape[0], *shape[2:], depth)
    return (depth,)


def _lookup_depth(config: Config) -> int:
    if bool_of(config.get("pad_to_max_tokens", False)):
        return int_of(value_of(config, "max_tokens"), 1)
    return int_of(value_of(config, "vocabulary_size"), 1)


_LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _lookup(config: Config, shape: Shape) -> Shape:
    """``StringLookup`` / ``IntegerLookup``: the depth is the vocabulary's, when known."""
    mode = choice_of(config, "output_mode", _LOOKUP_MODES, "int")
    if mode == "int":
        return shape
    return _encode(shape, _lookup_depth(config), mode)


def _text_vectorization(config: Config, shape: Shape) -> Shape:
    mode = choice_of(config, "output_mode", _LOOKUP_MODES, "int")
    if not shape:
        raise Unsure
    if mode == "int":
        length = config.get("output_sequence_length")
        return (shape[0], None if length is None else int_of(length, 1))
    if config.get("split", "whitespace") is None:
        tokens = (*shape, 1) if len(shape) <= 1 else shape
    else:
        tokens = (*shape, None)
    return _lookup(config, tokens)


def _hashed_crossing(call: ShapeCall) -> Shapes:
    shapes = call.all_known(call.positional)
    if len(shapes) != 2 or not shapes[0] or not shapes[1] or shapes[0][-1] != shapes[1][-1]:
        raise Unsure
    first = shapes[0]
    mode = choice_of(call.config, "output_mode", ("int", "one_hot"), "int")
    if mode == "int":
        return (first,)
    depth = int_of(value_of(call.config, "num_bins"), 1)
    if first[-1] != 1:
        return ((*first, depth),)
    return ((*first[:-1], depth),)


#: Image augmentation layers: the output has the input's shape.
_AUGMENTATIONS = (
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
    "RandomBrightness", "RandomHue", "RandomSaturation", "RandomSharpness", "RandomShear",
    "RandomPosterization", "RandomInvert", "RandomColorDegeneration", "RandomColorJitter",
    "AutoContrast", "Equalization", "Solarization", "RandomErasing", "RandomGaussianBlur",
    "RandomPerspective", "RandomElasticTransform", "RandomGrayscale",
    "ContrastLimitedAdaptiveHistogramEqualization", "MixUp", "CutMix", "AugMix", "RandAugment",
)  # fmt: skip

#: State computed by ``adapt``, not trainable; its names are not tabled (numbered).
_ADAPTED_STATE = Variables(None, state=True)

CLASSES = (
    weightless("Rescaling", same_shape, 0),
    LayerClass(
        "Normalization",
        shapes=same_shape,
        macs=0,
        variables=Variables(lambda c: ["mean", "variance", "count"], state=True),
        sublayers=NONE,
    ),
    *(weightless(name, same_shape, UNKNOWN) for name in _AUGMENTATIONS),
    weightless("Resizing", single(_resize), UNKNOWN),
    weightless("CenterCrop", single(_resize), UNKNOWN),
    weightless("RandomCrop", single(_random_crop), UNKNOWN),
    weightless("CategoryEncoding", single(_category_encoding), 0),
    weightless("Hashing", single(_hashing), 0),
    weightless("HashedCrossing", _hashed_crossing, UNKNOWN),
    LayerClass("Discretization", single(_discretization), UNKNOWN, _ADAPTED_STATE, NONE),
    LayerClass("StringLookup", single(_lookup), 0, _ADAPTED_STATE, NONE),
    LayerClass("IntegerLookup", single(_lookup), 0, _ADAPTED_STATE, NONE),
    LayerClass("TextVectorization", single(_text_vectorization), UNKNOWN, _ADAPTED_STATE, NONE),
    LayerClass("Pipeline", UNKNOWN, UNKNOWN, NONE, RUNS_EACH_ONCE),
    LayerClass("MelSpectrogram", UNKNOWN, UNKNOWN, UNKNOWN, NONE),
    LayerClass("STFTSpectrogram", UNKNOWN, UNKNOWN, UNKNOWN, NONE),
    weightless("MaxNumBoundingBoxes", UNKNOWN, UNKNOWN),
)
