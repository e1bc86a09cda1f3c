"""A differential fuzzer for uses: random small models that share in every way weighttie knows.

Each seed builds a model from a recipe mixing shared layers, nested models (new and
called again, holding layers also used outside), wrappers (TimeDistributed,
Bidirectional, RNN layers with a cell of their own or a cell another RNN has),
custom layers that call another layer (through ``__call__`` or ``.call()``) or read
its kernel, and ties (:func:`weighttie.tie_weights`). Then:

* live: every variable's uses, and per_use, equal an eager pass's reads
  (tests/support/eager_reads.py); unique equals ``count_params``; every variable used more
  than once is in a sharing group;
* static (the model saved as .keras): unique equals ``count_params``; per_use and
  each variable's uses are the live numbers or unknown, never another number;
* static (the model saved as a legacy .h5, which stores a variable under every layer
  holding it): the same, except where the file cannot tell one variable from equal
  copies (a layer inside two nested models): then a note says so, unique counts the
  copies, and per_use is unknown.

``make test`` runs a few seeds; the long run is marked ``fuzz``::

    .venv/bin/python -m pytest -m fuzz tests/walk/test_uses_fuzz.py
    WEIGHTTIE_USES_SEEDS=2000 .venv/bin/python -m pytest -m fuzz tests/walk/test_uses_fuzz.py
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import keras
import pytest
from keras import layers

import weighttie
from support.eager_reads import oracle_counts
from support.zoo import CallsLayer, ReadsKernel
from weighttie.static import read_report

pytest.importorskip("tensorflow")

QUICK = 12
LONG = int(os.environ.get("WEIGHTTIE_USES_SEEDS", "300"))
STEPS, FEATURES = 3, 4


class _Recipe:
    """Builds one random model; ``log`` lists the blocks, to read a failing seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.denses: list[layers.Dense] = []
        self.cells: list[layers.Layer] = []
        self.models: list[keras.Model] = []
        self.log: list[str] = []

    def dense(self) -> layers.Dense:
        if self.denses and self.rng.random() < 0.5:
            self.log.append("dense again")
            return self.rng.choice(self.denses)
        dense = layers.Dense(FEATURES)
        if self.denses and self.rng.random() < 0.25:
            weighttie.tie_weights(self.rng.choice(self.denses), dense)
            self.log.append("dense tied")
        self.denses.append(dense)
        return dense

    @staticmethod
    def built(dense: layers.Dense) -> layers.Dense:
        """A layer another one reads or calls ``.call()`` on must exist before the call."""
        if not dense.built:
            dense.build((None, STEPS, FEATURES))
        return dense

    def block(self, x: object, inside: bool) -> object:
        kinds = ["dense", "td", "rnn", "reads", "calls"]
        if not inside:
            kinds += ["bidi", "nested", "nested"]
        kind = self.rng.choice(kinds)
        self.log.append(kind)
        if kind == "dense":
            return self.dense()(x)
        if kind == "td":
            return layers.TimeDistributed(self.dense())(x)
        if kind == "rnn":
            if self.cells and self.rng.random() < 0.5:
                cell = self.rng.choice(self.cells)
                self.log.append("cell again")
            else:
                cell = self.rng.choice([layers.SimpleRNNCell, layers.GRUCell])(FEATURES)
                self.cells.append(cell)
            return layers.RNN(cell, return_sequences=True)(x)
        if kind == "bidi":
            return layers.Bidirectional(layers.GRU(FEATURES // 2, return_sequences=True))(x)
        if kind == "reads":
            return ReadsKernel(self.built(self.dense()))(x)
        if kind == "calls":
            return CallsLayer(self.built(self.dense()), direct=self.rng.random() < 0.5)(x)
        if self.models and self.rng.random() < 0.5:
            self.log.append("model again")
            return self.rng.choice(self.models)(x)
        inner_in = keras.Input((STEPS, FEATURES))
        inner = inner_in
        for _ in range(self.rng.randint(1, 2)):
            inner = self.block(inner, inside=True)
        model = keras.Model(inner_in, inner)
        self.models.append(model)
        return model(x)

    def build(self) -> keras.Model:
        inputs = [keras.Input((STEPS, FEATURES)) for _ in range(self.rng.randint(1, 2))]
        streams = []
        for x in inputs:
            for _ in range(self.rng.randint(1, 4)):
                x = self.block(x, inside=False)
            streams.append(x)
        merged = streams[0] if len(streams) == 1 else layers.Add()(streams)
        pooled = layers.GlobalAveragePooling1D()(merged)
        return keras.Model(inputs, layers.Dense(1)(pooled))


def _check(seed: int, tmp_path: Path) -> None:
    keras.utils.set_random_seed(seed)
    recipe = _Recipe(seed)
    model = recipe.build()
    where = f"seed {seed}: {', '.join(recipe.log)}"
    live = weighttie.analyze(model)
    uses, per_use = oracle_counts(model, live)
    assert live.params.unique == model.count_params(), where
    assert {v.path: v.uses for v in live.variables} == uses, where
    assert live.params.per_use == per_use, where
    grouped = {path for group in live.groups for path in group.variables}
    assert {path for path, n in uses.items() if n > 1} <= grouped, where

    path = tmp_path / f"fuzz_{seed}.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    static = read_report(path)
    assert static.params.unique == model.count_params(), where
    assert static.params.trainable_unique == live.params.trainable_unique, where
    assert static.params.per_use in (None, per_use), where
    by_path = {v.path: v for v in live.variables}
    for v in static.variables:
        if v.uses is not None and v.path in by_path:
            assert v.uses == by_path[v.path].uses, f"{where}: {v.path}"

    legacy = tmp_path / f"fuzz_{seed}.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(legacy)
    static = read_report(legacy)
    if any("does not say whether" in note for note in static.model.notes):
        assert static.params.unique >= model.count_params(), where
        assert static.params.per_use is None, where
    else:
        assert static.params.unique == model.count_params(), where
        assert static.params.trainable_unique == live.params.trainable_unique, where
    assert static.params.per_use in (None, per_use), where
    for v in static.variables:
        if v.uses is not None and v.path in by_path:
            assert v.uses == by_path[v.path].uses, f"{where} (.h5): {v.path}"


@pytest.mark.parametrize("seed", range(QUICK))
def test_live_and_static_uses_agree_with_eager_reads(seed: int, tmp_path: Path) -> None:
    _check(seed, tmp_path)


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(QUICK, QUICK + LONG))
def test_live_and_static_uses_agree_with_eager_reads_long(seed: int, tmp_path: Path) -> None:
    _check(seed, tmp_path)
