"""The HDF5 tree read from object headers (weighttie.io.hdf5_headers) against HDF5's own walk.

The static reader reads a plain weights file's tree from its bytes and falls back to
walking it through HDF5 for anything else. Here both run on the same files, and what
they collect (groups, layer names, datasets with shapes and dtypes, hard links' other
names, objects counted) and the values read through each must be the same: every
``.keras`` file of every Keras release in tests/fixtures/releases, the zoo's models,
a store-once file, a bfloat16 model and a keras_hub model written here. Files that are
not plain must make the header reader step aside (None), never answer differently,
and damaged bytes must end in None or the reader's one error, never another exception.
"""

from __future__ import annotations

import random
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from support import FIXTURES
from weighttie.errors import FileFormatError
from weighttie.io.file_window import Window
from weighttie.io.hdf5_headers import read_tree
from weighttie.io.keras_zip import KerasArchive
from weighttie.limits import DEFAULT_LIMITS
from weighttie.static import read_report
from weighttie.static.h5_tree import Collected, collect_h5
from weighttie.static.values import Values

RELEASES = FIXTURES / "releases" / "releases.tar.xz"


@contextmanager
def _weights(path: Path) -> Iterator[tuple[Any, Any]]:
    with (
        KerasArchive(str(path), limits=DEFAULT_LIMITS) as archive,
        archive.weights_deferred() as (h5, heaps),
    ):
        yield h5, heaps


def _both(path: Path) -> tuple[Collected, Collected, bool]:
    """What the header reader and HDF5's walk collect from one file, values compared too;
    and whether the header reader answered (it may step aside)."""
    with _weights(path) as (h5, heaps):
        answered = read_tree(heaps.stream, heaps.size, "w", 100_000, 300) is not None
        fast_handles: dict[str, Any] = {}
        fast = collect_h5(h5, "w", DEFAULT_LIMITS, fast_handles, heaps=heaps)
        slow_handles: dict[str, Any] = {}
        slow = collect_h5(h5, "w", DEFAULT_LIMITS, slow_handles, heaps=None)
        assert sorted(fast_handles) == sorted(slow_handles)
        fast_values, slow_values = Values(h5, fast_handles, "w"), Values(h5, slow_handles, "w")
        for key in slow_handles:
            got = b"".join(fast_values.chunks(key))
            assert got == b"".join(slow_values.chunks(key)), key
    # h5py reads a string attribute as bytes, the header reader as text; both mean one name
    for found in (fast, slow):
        found.named = [(p, v.decode() if isinstance(v, bytes) else v) for p, v in found.named]
    return fast, slow, answered


def _same(fast: Collected, slow: Collected) -> None:
    assert fast.groups == slow.groups
    assert fast.saveables == slow.saveables
    assert fast.named == slow.named
    assert fast.datasets == slow.datasets
    assert fast.objects == slow.objects
    assert fast.aliases == slow.aliases


def _release_files(root: Path) -> list[Path]:
    with tarfile.open(RELEASES) as tar:
        tar.extractall(root, filter="data")
    return sorted(root.rglob("*.keras"))


def test_every_release_file_reads_the_same_as_hdf5_walks_it(tmp_path: Path) -> None:
    files = _release_files(tmp_path)
    assert len(files) > 100  # Keras 3.0 - 3.15, every model of the corpus
    for path in files:
        fast, slow, answered = _both(path)
        assert answered, path
        _same(fast, slow)


def test_zoo_models_read_the_same(save: Callable[..., Path]) -> None:
    from support import zoo

    for name, build in zoo.ZOO.items():
        if name in zoo.UNSAVEABLE:
            continue
        fast, slow, answered = _both(save(build(), f"{name}.keras"))
        assert answered, name
        _same(fast, slow)


def test_hard_links_of_a_store_once_file_are_aliases_as_hdf5_sees_them(tmp_path: Path) -> None:
    import keras

    import weighttie

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, name="a")])
    model.add(keras.layers.Dense(8, name="b"))
    weighttie.tie_weights(model.get_layer("a"), model.get_layer("b"), keep="source")
    path = tmp_path / "tied.keras"
    weighttie.save_model(model, path)  # the tied variables stored once, hard linked
    fast, slow, answered = _both(path)
    assert answered
    assert fast.aliases and fast.aliases == slow.aliases
    _same(fast, slow)


def test_bfloat16_and_keras_hub_files_read_the_same(save: Callable[..., Path]) -> None:
    import keras
    import keras_hub

    inp = keras.Input((4,))
    half = keras.Model(inp, keras.layers.Dense(3, dtype="bfloat16", name="d")(inp))
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=8,
    )  # fmt: skip
    for model, name in ((half, "half.keras"), (backbone, "gpt2.keras")):
        fast, slow, answered = _both(save(model, name))
        assert answered, name
        _same(fast, slow)
    assert any(dtype == "bfloat16" for _, _, dtype in fast.datasets) or name == "gpt2.keras"


def _rewrite(
    path: Path, out: Path, edit: Callable[[h5py.File, h5py.File], None], **kw: Any
) -> Path:
    """``path`` with model.weights.h5 copied into a new HDF5 file by ``edit`` (h5py's ``kw``)."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    source, target = out / "in.h5", out / "out.h5"
    source.write_bytes(members["model.weights.h5"])
    with h5py.File(source, "r") as old, h5py.File(target, "w", **kw) as new:
        edit(old, new)
    members["model.weights.h5"] = target.read_bytes()
    result = out / "rewritten.keras"
    with zipfile.ZipFile(result, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return result


def _copy_all(old: h5py.File, new: h5py.File, **dataset_options: Any) -> None:
    for key, value in old.attrs.items():
        new.attrs[key] = value

    def copy(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group):
            group = new.require_group(name)
            for key, value in obj.attrs.items():
                group.attrs[key] = value
        else:
            options = dataset_options if obj.ndim else {}
            new.create_dataset(name, data=obj[()], **options)

    old.visititems(copy)


def test_chunked_and_compressed_values_are_read_through_hdf5(
    save: Callable[..., Path], tmp_path: Path
) -> None:
    from support import zoo

    path = _rewrite(
        save(zoo.siamese_tower()),
        tmp_path,
        lambda old, new: _copy_all(old, new, chunks=True, compression="gzip", shuffle=True),
    )
    fast, slow, answered = _both(path)
    assert answered  # the tree is read from the headers, the values through HDF5
    _same(fast, slow)
    assert read_report(path).params.unique == zoo.siamese_tower().count_params()


def test_the_newest_format_is_walked_through_hdf5(
    save: Callable[..., Path], tmp_path: Path
) -> None:
    from support import zoo

    original = save(zoo.siamese_tower())
    path = _rewrite(original, tmp_path, _copy_all, libver="latest")
    fast, slow, answered = _both(path)
    assert not answered  # link messages, version 2 headers: HDF5 walks it
    _same(fast, slow)
    assert read_report(path).params == read_report(original).params


def test_a_soft_link_makes_the_header_reader_step_aside(
    save: Callable[..., Path], tmp_path: Path
) -> None:
    from support import zoo

    def with_soft_link(old: h5py.File, new: h5py.File) -> None:
        _copy_all(old, new)
        new["layers/alias"] = h5py.SoftLink("/layers")

    path = _rewrite(save(zoo.siamese_tower()), tmp_path, with_soft_link)
    with _weights(path) as (_, heaps):
        assert read_tree(heaps.stream, heaps.size, "w", 1000, 300) is None
    fast, slow, answered = _both(path)
    assert not answered
    _same(fast, slow)


def test_past_the_objects_limit_the_hdf5_walk_refuses(save: Callable[..., Path]) -> None:
    from support import zoo

    path = save(zoo.siamese_tower())
    with _weights(path) as (_, heaps):
        assert read_tree(heaps.stream, heaps.size, "w", 1_000, 300) is not None
        assert read_tree(heaps.stream, heaps.size, "w", 5, 300) is None
        assert read_tree(heaps.stream, heaps.size, "w", 1_000, 2) is None


def _damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] = rng.choice((0, 0xFF, rng.randrange(256), out[at] ^ (1 << rng.randrange(8))))
    return bytes(out)


@pytest.mark.parametrize("seed", range(200))
def test_damaged_headers_are_never_an_unexpected_exception(
    seed: int, tower_files: dict[str, Path], tmp_path: Path
) -> None:
    """Random bytes changed in a weights file: a tree, None, or the reader's one error."""
    with zipfile.ZipFile(tower_files["siamese"]) as z:
        data = z.read("model.weights.h5")
    damaged = tmp_path / "w.h5"
    damaged.write_bytes(_damaged(data, random.Random(seed)))
    with damaged.open("rb") as file:
        window = Window(file, 0, len(data))
        try:
            tree = read_tree(window, len(data), "w", 10_000, 300)
        except FileFormatError:
            return
    if tree is not None:  # what it answers is bounded by the file
        assert tree.objects <= 10_000
        for dataset in tree.datasets:
            values = dataset.values
            assert (
                values is None
                or values.data is not None
                or (values.offset + values.nbytes <= len(data))
            )
            assert int(np.prod(dataset.shape)) >= 0
