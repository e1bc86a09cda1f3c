"""Reshaping (weighttie.layers.reshaping): shapes against Keras."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from layers.family import FamilyOracle
from layers.shape_oracle import SPATIAL, Case, Shape, data_format, image, unique
from weighttie.layers import reshaping


def _cases() -> Iterator[Case]:
    shapes: list[Shape] = [(None, 4), (None, 4, 6), (None, None, 6), (None, 2, 3, 4), (3, 2, 3, 4)]
    for shape in shapes:
        yield Case("Flatten", {}, (shape,))
    for target, shape in itertools.product(
        [(24,), (-1,), (4, -1), (2, 3, 4), (-1, 2, 2), (8, 3), (6, -1, 2), (5, -1)],
        [(None, 4, 6), (None, None, 6), (None, 24), (2, 2, 3, 4)],
    ):
        yield Case("Reshape", {"target_shape": target}, (shape,))
    for dims in [*itertools.permutations((1, 2)), *itertools.permutations((1, 2, 3))]:
        yield Case("Permute", {"dims": dims}, ((None, 2, 3, 4)[: len(dims) + 1],))
        yield Case("Permute", {"dims": dims}, ((None, None, 3, 5)[: len(dims) + 1],))
    for n, shape in itertools.product((1, 3), [(None, 5), (2, None)]):
        yield Case("RepeatVector", {"n": n}, (shape,))
    for cropping, size in itertools.product([1, (0, 2), (3, 4)], [8, None, 5]):
        yield Case("Cropping1D", {"cropping": cropping}, ((None, size, 3),))
    for padding, size in itertools.product([0, 1, (0, 2), (3, 4)], [8, None]):
        yield Case("ZeroPadding1D", {"padding": padding}, ((None, size, 3),))
    for size, shape in itertools.product([1, 3], [(None, 5, 2), (None, None, 2)]):
        yield Case("UpSampling1D", {"size": size}, (shape,))
    for first, spatial in itertools.product((False, True), SPATIAL[2]):
        shape = image(spatial, first)
        fmt = {"data_format": data_format(first)}
        for cropping in [1, (1, 2), ((1, 0), (2, 1)), ((0, 0), (3, 3))]:
            yield Case("Cropping2D", {"cropping": cropping, **fmt}, (shape,))
        for padding in [1, (1, 2), ((1, 0), (2, 1))]:
            yield Case("ZeroPadding2D", {"padding": padding, **fmt}, (shape,))
        for size in [2, (1, 3)]:
            yield Case("UpSampling2D", {"size": size, **fmt}, (shape,))
    for first, spatial in itertools.product((False, True), SPATIAL[3]):
        shape = image(spatial, first)
        fmt = {"data_format": data_format(first)}
        for cropping in [1, (1, 0, 2), ((1, 0), (0, 1), (2, 1))]:
            yield Case("Cropping3D", {"cropping": cropping, **fmt}, (shape,))
        for padding in [1, (1, 0, 2), ((1, 0), (0, 1), (2, 1))]:
            yield Case("ZeroPadding3D", {"padding": padding, **fmt}, (shape,))
        for size in [2, (1, 2, 3)]:
            yield Case("UpSampling3D", {"size": size, **fmt}, (shape,))


#: ``keras.src.ops.numpy.Reshape`` (``newshape``) shares the layer's name: the caller
#: tells them apart (``is_builtin``), and the layer's rule does not understand it.
UNSURE = {"a Keras 3 op": ("Reshape", {"newshape": [-1, 24]}, [(None, 4, 6)], {})}


class TestReshaping(FamilyOracle):
    family = reshaping
    cases = unique(_cases())
    #: tf_keras up-samples to a computed size, which drops static sizes the rule knows.
    keras2_loses_sizes = frozenset({"UpSampling2D"})
    unsure = UNSURE
