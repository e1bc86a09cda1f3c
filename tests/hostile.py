"""A generated corpus of bad model files (no binary blobs in the repository).

Each case builds one file from a valid archive and says what must happen on the
static path and through Keras (``--load``): the exit code and a piece of the
one-line message. A valid graph that only Keras refuses may be reported
statically (exit 0).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, Path], Path]  # (valid archive, directory) -> bad file
    static: tuple[int, str]  # exit code, message piece ("" for exit 0)
    load: tuple[int, str]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _with_config(edit: Callable[[dict], object]) -> Callable[[Path, Path], Path]:
    def build(valid: Path, out: Path) -> Path:
        members = _members(valid)
        config = json.loads(members["config.json"])
        result = edit(config)
        members["config.json"] = json.dumps(config if result is None else result).encode()
        return _write(out / "bad.keras", members)

    return build


def _layer(config: dict, name: str) -> dict:
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


def empty(valid: Path, out: Path) -> Path:
    (out / "empty.keras").write_bytes(b"")
    return out / "empty.keras"


def random_bytes(valid: Path, out: Path) -> Path:
    data = np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    (out / "noise.keras").write_bytes(b"\x00" + data)
    return out / "noise.keras"


def truncated(valid: Path, out: Path) -> Path:
    data = valid.read_bytes()
    (out / "cut.keras").write_bytes(data[: len(data) // 2])
    return out / "cut.keras"


def no_config(valid: Path, out: Path) -> Path:
    members = _members(valid)
    del members["config.json"]
    return _write(out / "noconfig.keras", members)


def config_not_json(valid: Path, out: Path) -> Path:
    members = _members(valid)
    members["config.json"] = b'{"class_name": "Functional", "config": {'
    return _write(out / "notjson.keras", members)


def deep_json(valid: Path, out: Path) -> Path:
    members = _members(valid)
    members["config.json"] = b"[" * 200_000 + b"]" * 200_000
    return _write(out / "deep.keras", members)


def no_weights(valid: Path, out: Path) -> Path:
    members = _members(valid)
    del members["model.weights.h5"]
    return _write(out / "noweights.keras", members)


def weights_truncated(valid: Path, out: Path) -> Path:
    members = _members(valid)
    members["model.weights.h5"] = members["model.weights.h5"][:3000]
    return _write(out / "cutweights.keras", members)


def weights_wrong_shape(valid: Path, out: Path) -> Path:
    members = _members(valid)
    tmp = out / "w.h5"
    tmp.write_bytes(members["model.weights.h5"])
    with h5py.File(tmp, "r+") as h5:
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars"].create_dataset("0", data=np.zeros((3, 3), "float32"))
    members["model.weights.h5"] = tmp.read_bytes()
    tmp.unlink()
    return _write(out / "wrongshape.keras", members)


def damaged_heap(valid: Path, out: Path) -> Path:
    """The HDF5 global heap holding the layer-name strings, with a size of 1 TB."""
    members = _members(valid)
    h5 = bytearray(members["model.weights.h5"])
    heap = h5.find(b"GCOL")
    h5[heap + 8 : heap + 16] = struct.pack("<Q", 2**40)
    members["model.weights.h5"] = bytes(h5)
    return _write(out / "heap.keras", members)


def dotdot_member(valid: Path, out: Path) -> Path:
    members = _members(valid)
    members["../escaped.txt"] = b"written outside?"
    members["assets/../../escaped2.txt"] = b"written outside?"
    return _write(out / "dotdot.keras", members)


def not_keras_h5(valid: Path, out: Path) -> Path:
    path = out / "data.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.zeros((4, 4)))
    return path


def directory(valid: Path, out: Path) -> Path:
    (out / "model.keras").mkdir()
    return out / "model.keras"


def missing(valid: Path, out: Path) -> Path:
    return out / "missing.keras"


def bad_metadata(valid: Path, out: Path) -> Path:
    members = _members(valid)
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


def zip_bomb(honest: bool) -> Callable[[Path, Path], Path]:
    """config.json inflates to 2 GiB of spaces; the header states it, or lies (1 kB)."""

    def build(valid: Path, out: Path) -> Path:
        path = out / ("bomb.keras" if honest else "bomb-lying.keras")
        members = _members(valid)
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


CASES = [
    Case("empty file", empty, (2, "is empty"), (2, "is empty")),
    Case(
        "random bytes", random_bytes, (2, "not a Keras model file"), (2, "not a Keras model file")
    ),
    Case("truncated archive", truncated, (2, "truncated or damaged"), (2, "truncated or damaged")),
    Case(
        "zip without config.json", no_config, (2, "has no config.json"), (2, "has no config.json")
    ),
    Case("config.json not JSON", config_not_json, (2, "not valid JSON"), (2, "not valid JSON")),
    Case(
        "config.json a list",
        _with_config(lambda c: [1, 2]),
        (2, "must hold a JSON object"),
        (2, "must hold a JSON object"),
    ),
    Case(
        "layers not a list",
        _with_config(_layers_not_list),
        (2, "without a list of layers"),
        (2, "could not load"),
    ),
    Case(
        "layer not an object",
        _with_config(_layer_not_object),
        (2, "is int, expected an object"),
        (2, "could not load"),
    ),
    Case(
        "duplicate layer names",
        _with_config(_duplicate_names),
        (2, "two layers named 'score'"),
        (2, "could not load"),
    ),
    Case("unknown class", _with_config(_dense_unknown), (0, ""), (2, "NoSuchLayer")),
    Case(
        "inbound to a missing layer",
        _with_config(_missing_inbound),
        (2, "'ghost', which is not a layer"),
        (2, "could not load"),
    ),
    Case(
        "inbound to a missing call",
        _with_config(_wrong_call_index),
        (2, "call 7 of 'merge'"),
        (2, "could not load"),
    ),
    Case("cycle", _with_config(_cycle), (2, "has a cycle"), (2, "could not load")),
    Case("deeply nested JSON", deep_json, (2, "not valid JSON"), (2, "not valid JSON")),
    Case(
        "models nested 300 deep",
        _with_config(_deep_models),
        (2, "too deeply"),
        (2, "could not load"),
    ),
    Case("zip bomb", zip_bomb(honest=True), (2, "more than the"), (2, "more than the")),
    Case(
        "zip bomb, lying header",
        zip_bomb(honest=False),
        (2, "config.json is damaged"),
        (2, "config.json is damaged"),
    ),
    Case("weights missing", no_weights, (2, "has no model.weights.h5"), (2, "could not load")),
    Case(
        "weights truncated", weights_truncated, (2, "damaged or truncated"), (2, "could not load")
    ),
    Case("weights of the wrong shape", weights_wrong_shape, (0, ""), (2, "could not load")),
    # Keras reads weights by path and never the damaged layer-name strings: it loads.
    Case("weights with a damaged heap", damaged_heap, (2, "damaged"), (0, "")),
    Case("member names with ../", dotdot_member, (0, ""), (0, "")),
    Case(
        "HDF5 that is not a model",
        not_keras_h5,
        (2, "without a model_config"),
        (2, "could not load"),
    ),
    # Keras ignores metadata.json on load; so does weighttie (keras_version: null).
    Case("bad metadata.json", bad_metadata, (0, ""), (0, "")),
    Case("a directory", directory, (2, "is a directory"), (2, "is a directory")),
    Case("a missing path", missing, (2, "no such file"), (2, "no such file")),
]

__all__ = ["CASES", "Case"]
