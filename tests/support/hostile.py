"""A generated corpus of bad model files (no binary blobs in the repository).

Each case builds one file from a valid model (saved as .keras and as legacy .h5)
and says what must happen on the static path and through Keras (``--load``): the
exit code and a piece of the one-line message. A valid graph that only Keras
refuses may be reported statically (exit 0). ``--load`` reads the file with the
bounded static reader first, so a file the static path refuses is refused the
same way with ``--load`` unless a case says otherwise.

Some cases put FIFOs (named pipes) where a careless reader would open them: a
reader that does blocks until a writer appears. :func:`fifo_guard` plays that
writer, so a regression fails a test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


@dataclass(frozen=True)
class Valid:
    """One valid model, saved twice: a .keras archive and a legacy .h5 file."""

    keras: Path
    h5: Path


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Valid, Path], Path]  # (valid model, directory) -> bad file
    static: tuple[int, str]  # exit code, message piece ("" for exit 0)
    load_only: tuple[int, str] | None = None  # --load's outcome where it differs

    @property
    def load(self) -> tuple[int, str]:
        return self.load_only or self.static


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _with_config(edit: Callable[[dict], object]) -> Callable[[Valid, Path], Path]:
    def build(valid: Valid, out: Path) -> Path:
        members = _members(valid.keras)
        config = json.loads(members["config.json"])
        result = edit(config)
        members["config.json"] = json.dumps(config if result is None else result).encode()
        return _write(out / "bad.keras", members)

    return build


def _layer(config: dict, name: str) -> dict:
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


def empty(valid: Valid, out: Path) -> Path:
    (out / "empty.keras").write_bytes(b"")
    return out / "empty.keras"


def random_bytes(valid: Valid, out: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    (out / "noise.keras").write_bytes(b"\x00" + data)
    return out / "noise.keras"


def truncated(valid: Valid, out: Path) -> Path:
    data = valid.keras.read_bytes()
    (out / "cut.keras").write_bytes(data[: len(data) // 2])
    return out / "cut.keras"


def no_config(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    del members["config.json"]
    return _write(out / "noconfig.keras", members)


def config_not_json(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    members["config.json"] = b'{"class_name": "Functional", "config": {'
    return _write(out / "notjson.keras", members)


def deep_json(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    members["config.json"] = b"[" * 200_000 + b"]" * 200_000
    return _write(out / "deep.keras", members)


def no_weights(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    del members["model.weights.h5"]
    return _write(out / "noweights.keras", members)


def weights_truncated(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    members["model.weights.h5"] = members["model.weights.h5"][:3000]
    return _write(out / "cutweights.keras", members)


def weights_wrong_shape(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    tmp = out / "w.h5"
    tmp.write_bytes(members["model.weights.h5"])
    with h5py.File(tmp, "r+") as h5:
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars"].create_dataset("0", data=np.zeros((3, 3), "float32"))
    members["model.weights.h5"] = tmp.read_bytes()
    tmp.unlink()
    return _write(out / "wrongshape.keras", members)


def damaged_heap(valid: Valid, out: Path) -> Path:
    """The HDF5 global heap holding the layer-name strings, with a size of 1 TB."""
    members = _members(valid.keras)
    h5 = bytearray(members["model.weights.h5"])
    heap = h5.find(b"GCOL")
    h5[heap + 8 : heap + 16] = struct.pack("<Q", 2**40)
    members["model.weights.h5"] = bytes(h5)
    return _write(out / "heap.keras", members)


def looping_heap(valid: Valid, out: Path) -> Path:
    """The global heap holding the layer names, its free-space object's size set to 0.

    HDF5 1.14 decodes a collection object by object, each size leading to the next:
    on this one it decodes the same object forever, in C (a fuzzer find).
    """
    members = _members(valid.keras)
    h5 = bytearray(members["model.weights.h5"])
    start = h5.find(b"GCOL")
    (size,) = struct.unpack("<Q", h5[start + 8 : start + 16])
    place = start + 16
    while True:  # to the free-space object (index 0), which ends the collection
        (index,) = struct.unpack("<H", h5[place : place + 2])
        (length,) = struct.unpack("<Q", h5[place + 8 : place + 16])
        if index == 0:
            break
        place += 16 + (length + 7) // 8 * 8
    assert place < start + size
    h5[place + 8 : place + 16] = struct.pack("<Q", 0)
    members["model.weights.h5"] = bytes(h5)
    return _write(out / "loop.keras", members)


def dotdot_member(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    members["../escaped.txt"] = b"written outside?"
    members["assets/../../escaped2.txt"] = b"written outside?"
    return _write(out / "dotdot.keras", members)


def not_keras_h5(valid: Valid, out: Path) -> Path:
    path = out / "data.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.zeros((4, 4)))
    return path


def directory(valid: Valid, out: Path) -> Path:
    (out / "model.keras").mkdir()
    return out / "model.keras"


def missing(valid: Valid, out: Path) -> Path:
    return out / "missing.keras"


def bad_metadata(valid: Valid, out: Path) -> Path:
    members = _members(valid.keras)
    members["metadata.json"] = b"\xff\xfe not json"
    return _write(out / "badmeta.keras", members)


def _deep_models(config: dict) -> dict:
    inner: dict = {"class_name": "Dense", "name": "d", "config": {"name": "d"}, "inbound_nodes": []}
    for depth in range(300):
        inner = {
            "class_name": "Functional",
            "name": f"m{depth}",
            "config": {"name": f"m{depth}", "layers": [inner]},
            "inbound_nodes": [],
        }
    return {"class_name": "Functional", "config": {"name": "deep", "layers": [inner]}}


def zip_bomb(honest: bool) -> Callable[[Valid, Path], Path]:
    """config.json inflates to 2 GiB of spaces; the header states it, or lies (1 kB)."""

    def build(valid: Valid, out: Path) -> Path:
        path = out / ("bomb.keras" if honest else "bomb-lying.keras")
        members = _members(valid.keras)
        size = 2 * 1024**3
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = b" " * (16 * 1024 * 1024)
        parts = [compressor.compress(block) for _ in range(size // len(block))]
        parts.append(compressor.flush())
        deflated = b"".join(parts)
        crc = 0
        for _ in range(size // len(block)):
            crc = zlib.crc32(block, crc)
        with zipfile.ZipFile(path, "w") as z:
            for name in ("metadata.json", "model.weights.h5"):
                z.writestr(name, members[name])
        _append_deflated(path, "config.json", deflated, size if honest else 1024, crc)
        return path

    return build


def _append_deflated(path: Path, name: str, deflated: bytes, size: int, crc: int) -> None:
    """Add a pre-deflated member to a zip, declaring ``size`` as its uncompressed size."""
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    data = path.read_bytes()
    # Existing entries stay as they are; the new entry and a new central directory follow.
    cd_offset = struct.unpack("<I", data[-6:-2])[0]
    body = bytearray(data[:cd_offset])
    central = bytearray(data[cd_offset:-22])
    offset = len(body)
    encoded = name.encode()
    body += struct.pack(
        "<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0
    )
    body += encoded + deflated
    central += struct.pack(
        "<4s6H3I5H2I",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(deflated),
        size,
        len(encoded),
        0,
        0,
        0,
        0,
        0,
        offset,
    )
    central += encoded
    count = len(infos) + 1
    eocd = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    path.write_bytes(bytes(body) + bytes(central) + eocd)


def _dense_unknown(config: dict) -> None:
    _layer(config, "score")["class_name"] = "NoSuchLayer"


def _missing_inbound(config: dict) -> None:
    node = _layer(config, "score")["inbound_nodes"][0]
    node["args"][0]["config"]["keras_history"] = ["ghost", 0, 0]


def _cycle(config: dict) -> None:
    merge = _layer(config, "merge")
    merge["inbound_nodes"][0]["args"][0][0]["config"]["keras_history"] = ["score", 0, 0]


def _wrong_call_index(config: dict) -> None:
    node = _layer(config, "score")["inbound_nodes"][0]
    node["args"][0]["config"]["keras_history"] = ["merge", 7, 0]


def _layers_not_list(config: dict) -> None:
    config["config"]["layers"] = "everything"


def _layer_not_object(config: dict) -> None:
    config["config"]["layers"].append(5)


def _duplicate_names(config: dict) -> None:
    config["config"]["layers"].append(dict(_layer(config, "score")))


# -- special files and weights files that reach outside themselves -----------------------

SECRET = b"root:x:0:0:host secret, never a weight\n" * 4  # 160 bytes: 40 float32 values


def fifo_model(valid: Valid, out: Path) -> Path:
    """A named pipe given as the model path: opening it would block until a writer came."""
    os.mkfifo(out / "model.keras")
    return out / "model.keras"


def edit_weights(edit: Callable[[h5py.File, Path], None]) -> Callable[[Valid, Path], Path]:
    """A .keras archive whose model.weights.h5 ``edit`` rewrote (with h5py, for real)."""

    def build(valid: Valid, out: Path) -> Path:
        members = _members(valid.keras)
        tmp = out / "w.h5"
        tmp.write_bytes(members["model.weights.h5"])
        with h5py.File(tmp, "r+") as h5:
            edit(h5, out)
        members["model.weights.h5"] = tmp.read_bytes()
        tmp.unlink()
        return _write(out / "bad.keras", members)

    return build


def edit_legacy(edit: Callable[[h5py.File, Path], None]) -> Callable[[Valid, Path], Path]:
    """A copy of the legacy .h5 file, rewritten by ``edit``."""

    def build(valid: Valid, out: Path) -> Path:
        path = out / "bad.h5"
        path.write_bytes(valid.h5.read_bytes())
        with h5py.File(path, "r+") as h5:
            edit(h5, out)
        return path

    return build


KERAS_KERNEL = "layers/dense/vars/0"  # the score layer's kernel in model.weights.h5


def legacy_kernel(h5: h5py.File) -> str:
    names: list[str] = []
    h5["model_weights"].visititems(
        lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
    )
    return "model_weights/" + sorted(n for n in names if "kernel" in n)[0]


def _replace_dataset(h5: h5py.File, key: str, **options: object) -> None:
    """Put a dataset of the same shape and dtype in ``key``'s place, stored as ``options`` say."""
    shape, dtype = h5[key].shape, h5[key].dtype
    del h5[key]
    h5.create_dataset(key, shape=shape, dtype=dtype, **options)


def external_file(target: Callable[[Path], Path], key: Callable[[h5py.File], str]):
    def edit(h5: h5py.File, out: Path) -> None:
        name = key(h5)
        size = int(np.prod(h5[name].shape)) * h5[name].dtype.itemsize
        _replace_dataset(h5, name, external=[(str(target(out)), 0, size)])

    return edit


def host_secret(out: Path) -> Path:
    """A host file the weights must never be read from (a stand-in for /etc/passwd)."""
    path = out / "host-secret.txt"
    path.write_bytes(SECRET * 64)
    return path


def make_fifo(out: Path) -> Path:
    path = out / "pipe"
    if not path.exists():
        os.mkfifo(path)
    return path


def external_link(h5: h5py.File, out: Path) -> None:
    del h5[KERAS_KERNEL]
    h5[KERAS_KERNEL] = h5py.ExternalLink(str(make_fifo(out)), "/weights")


def dangling_soft_link(h5: h5py.File, out: Path) -> None:
    h5["layers/dense/vars/extra"] = h5py.SoftLink("/elsewhere/kernel")


def virtual_dataset(h5: h5py.File, out: Path) -> None:
    """A kernel mapped from a dataset in another file (a FIFO), with an unlimited extent:
    HDF5 opens the source file as soon as anything asks for the kernel's shape."""
    shape, dtype = h5[KERAS_KERNEL].shape, h5[KERAS_KERNEL].dtype
    layout = h5py.VirtualLayout(shape=shape, maxshape=(None, *shape[1:]), dtype=dtype)
    source = h5py.VirtualSource(str(make_fifo(out)), "w", shape=shape, maxshape=(None, *shape[1:]))
    layout[0 : h5py.h5s.UNLIMITED] = source[0 : h5py.h5s.UNLIMITED]
    del h5[KERAS_KERNEL]
    h5.create_virtual_dataset(KERAS_KERNEL, layout)


UNKNOWN_FILTER = 32999


def plugin_filter(h5: h5py.File, out: Path) -> None:
    """A kernel stored through filter 32999, which no HDF5 has built in: reading it makes
    HDF5 search its plugin directories and load libraries from them."""
    from h5py import h5d, h5p, h5s, h5t, h5z

    values = np.asarray(h5[KERAS_KERNEL])
    del h5[KERAS_KERNEL]
    plist = h5p.create(h5p.DATASET_CREATE)
    plist.set_chunk(values.shape)
    plist.set_filter(UNKNOWN_FILTER, h5z.FLAG_OPTIONAL, ())
    group = h5[KERAS_KERNEL.rpartition("/")[0]]
    space = h5s.create_simple(values.shape)
    dataset = h5d.create(group.id, b"0", h5t.py_create(values.dtype), space, dcpl=plist)
    # Written raw with filter mask 0: the file says the filter was applied.
    dataset.write_direct_chunk((0,) * values.ndim, values.tobytes(), filter_mask=0)


# -- small files with a big cost --------------------------------------------------------

#: What the issue measured: a 3.6 MB archive describing 640,000 trivial layers, and a
#: 0.26 MB archive with one Dense called 470,000 times.
MANY_LAYERS = 640_000
MANY_CALLS = 470_000


def _compact_archive(config: dict, valid: Valid, path: Path) -> Path:
    """An archive of ``config`` (deflated, as small as it gets) with the valid weights."""
    members = _members(valid.keras)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config, separators=(",", ":")), zipfile.ZIP_DEFLATED)
        z.writestr("metadata.json", members["metadata.json"])
        z.writestr("model.weights.h5", members["model.weights.h5"])
    return path


def _input_entry() -> dict:
    return {
        "class_name": "InputLayer",
        "name": "x",
        "config": {"name": "x", "batch_shape": [None, 4]},
        "inbound_nodes": [],
    }


def many_layers(valid: Valid, out: Path, count: int = MANY_LAYERS) -> Path:
    """A functional model of ``count`` trivial (unconnected) layers."""
    entries = [_input_entry()] + [
        {"class_name": "Activation", "name": f"a{i}", "config": {"name": f"a{i}"}}
        for i in range(count)
    ]
    config = {"class_name": "Functional", "config": {"name": "m", "layers": entries}}
    return _compact_archive(config, valid, out / "many-layers.keras")


def many_calls(valid: Valid, out: Path, count: int = MANY_CALLS) -> Path:
    """One Dense layer called ``count`` times on the model's input."""
    tensor = {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["x", 0, 0]},
    }
    dense = {
        "class_name": "Dense",
        "name": "d",
        "config": {"name": "d", "units": 4},
        "inbound_nodes": [{"args": [tensor], "kwargs": {}}] * count,
    }
    config = {
        "class_name": "Functional",
        "config": {"name": "m", "layers": [_input_entry(), dense]},
    }
    return _compact_archive(config, valid, out / "many-calls.keras")


def _deflated_members(valid: Valid, path: Path, **replaced: bytes) -> Path:
    """The valid archive with some members replaced, deflated (a few kB for 60 MB)."""
    members = {**_members(valid.keras), **replaced}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            kind = zipfile.ZIP_STORED if name.endswith(".h5") else zipfile.ZIP_DEFLATED
            z.writestr(name, data, kind)
    return path


def empty_objects(valid: Valid, out: Path) -> Path:
    """config.json of five million ``{}`` beside the layers: 1.7 GB once parsed as dicts."""
    config = json.loads(_members(valid.keras)["config.json"])
    text = json.dumps(config)[:-1] + ', "junk": [' + "{}," * 5_000_000 + "{}]}"
    return _deflated_members(valid, out / "objects.keras", **{"config.json": text.encode()})


def many_numbers(valid: Valid, out: Path) -> Path:
    """A layer argument of twelve million floats: 0.8 GB once parsed."""
    config = json.loads(_members(valid.keras)["config.json"])
    _layer(config, "score")["config"]["bias_initializer"] = [0.5] * 12_000_000
    data = json.dumps(config, separators=(",", ":")).encode()
    return _deflated_members(valid, out / "numbers.keras", **{"config.json": data})


def metadata_objects(valid: Valid, out: Path) -> Path:
    """metadata.json of twenty million ``{}``: Keras ignores it, so does weighttie."""
    data = b"[" + b"{}," * 20_000_000 + b"{}]"
    return _deflated_members(valid, out / "metadata.keras", **{"metadata.json": data})


SELF_CONTAINED = "weighttie reads only self-contained weights files"

CASES = [
    Case("empty file", empty, (2, "is empty")),
    Case("random bytes", random_bytes, (2, "not a Keras model file")),
    Case("truncated archive", truncated, (2, "truncated or damaged")),
    Case("zip without config.json", no_config, (2, "has no config.json")),
    Case("config.json not JSON", config_not_json, (2, "not valid JSON")),
    Case("config.json a list", _with_config(lambda c: [1, 2]), (2, "must hold a JSON object")),
    Case("layers not a list", _with_config(_layers_not_list), (2, "without a list of layers")),
    Case("layer not an object", _with_config(_layer_not_object), (2, "is int, expected an object")),
    Case("duplicate layer names", _with_config(_duplicate_names), (2, "two layers named 'score'")),
    Case(
        "unknown class", _with_config(_dense_unknown), (0, ""), (0, "")
    ),  # --load: static, a warning
    Case(
        "inbound to a missing layer",
        _with_config(_missing_inbound),
        (2, "'ghost', which is not a layer"),
    ),
    Case("inbound to a missing call", _with_config(_wrong_call_index), (2, "call 7 of 'merge'")),
    Case("cycle", _with_config(_cycle), (2, "has a cycle")),
    Case("deeply nested JSON", deep_json, (2, "not valid JSON")),
    Case("models nested 300 deep", _with_config(_deep_models), (2, "the depth limit")),
    Case("zip bomb", zip_bomb(honest=True), (2, "the config_bytes limit")),
    Case("zip bomb, lying header", zip_bomb(honest=False), (2, "config.json is damaged")),
    Case("weights missing", no_weights, (2, "has no model.weights.h5")),
    Case("weights truncated", weights_truncated, (2, "damaged or truncated")),
    Case(
        "weights of the wrong shape",
        weights_wrong_shape,
        (0, ""),
        (2, "does not hold the model its config builds"),
    ),
    Case("weights with a damaged heap", damaged_heap, (2, "damaged")),
    Case("weights with a heap HDF5 loops on", looping_heap, (2, "HDF5 would decode forever")),
    Case("member names with ../", dotdot_member, (0, "")),
    Case("HDF5 that is not a model", not_keras_h5, (2, "without a model_config")),
    # Keras ignores metadata.json on load; so does weighttie (keras_version: null).
    Case("bad metadata.json", bad_metadata, (0, "")),
    Case("a directory", directory, (2, "is a directory")),
    Case("a missing path", missing, (2, "no such file")),
    Case("a FIFO as the model path", fifo_model, (2, "is a FIFO (named pipe)")),
    Case(
        "weights stored in a host file",
        edit_weights(external_file(host_secret, lambda h5: KERAS_KERNEL)),
        (2, f"stores dataset '{KERAS_KERNEL}' in an external file"),
    ),
    Case(
        "weights stored in a FIFO",
        edit_weights(external_file(make_fifo, lambda h5: KERAS_KERNEL)),
        (2, f"in an external file ('{{dir}}/pipe'); {SELF_CONTAINED}"),
    ),
    Case(
        "weights linked to another file",
        edit_weights(external_link),
        (2, f"links '{KERAS_KERNEL}' to object '/weights' of another file"),
    ),
    Case(
        "weights with a dangling soft link",
        edit_weights(dangling_soft_link),
        (2, "soft link 'layers/dense/vars/extra' to '/elsewhere/kernel'"),
    ),
    Case(
        "weights in a virtual dataset",
        edit_weights(virtual_dataset),
        (2, f"stores dataset '{KERAS_KERNEL}' as a virtual dataset mapped from '{{dir}}/pipe'"),
    ),
    Case(
        "weights through a plugin filter",
        edit_weights(plugin_filter),
        (2, f"through HDF5 filter {UNKNOWN_FILTER}"),
    ),
    Case(
        "legacy .h5 weights in a FIFO",
        edit_legacy(external_file(make_fifo, legacy_kernel)),
        (2, "in an external file ('{dir}/pipe')"),
    ),
    Case(
        "legacy .h5 weights in a host file",
        edit_legacy(external_file(host_secret, legacy_kernel)),
        (2, "in an external file ('{dir}/host-secret.txt')"),
    ),
    Case("640,000 trivial layers", many_layers, (2, "layers, the layers limit")),
    Case("one layer called 470,000 times", many_calls, (2, "calls of layers, the calls limit")),
    Case(
        "config.json of 5 million empty objects",
        empty_objects,
        (2, "JSON objects and arrays, more than the 4,194,304 weighttie parses"),
    ),
    Case("a layer argument of 12 million numbers", many_numbers, (2, "JSON values, more than")),
    Case("metadata.json of 20 million empty objects", metadata_objects, (0, "")),
]


@contextlib.contextmanager
def fifo_guard(directory: Path) -> Iterator[list[Path]]:
    """Watch the FIFOs in ``directory``; yield the list of those some reader opened.

    A reader blocked opening a FIFO is released by opening it for writing (and
    closing it at once: the reader sees an empty file), so a regression shows up as
    a FIFO in the list, not as a hang.
    """
    fifos = [p for p in directory.iterdir() if p.is_fifo()]
    opened: list[Path] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.05):
            for fifo in fifos:
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # no reader: as it should be
                        continue
                    raise
                os.close(fd)
                opened.append(fifo)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


__all__ = ["CASES", "KERAS_KERNEL", "SECRET", "Case", "Valid", "fifo_guard"]
