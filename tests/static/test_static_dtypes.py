"""Variables' dtypes in a static report: Keras's names, as ``analyze`` of the live model
gives them, for every float dtype Keras saves (``bfloat16`` is two opaque bytes in the
file, with an attribute saying so), and NumPy's name where the file cannot tell."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any

import h5py
import keras
import ml_dtypes
import numpy as np
import pytest
from h5py import h5o

import weighttie
from weighttie.errors import FileFormatError
from weighttie.io.hdf5_guard import referenced_collections
from weighttie.report import Report
from weighttie.static import read_report

#: The float dtypes a Keras 3 layer can hold (a dtype policy): Keras refuses a layer
#: dtype of float8_e4m3fn or float8_e5m2 (those are quantization modes).
FLOATS = ["float16", "bfloat16", "float32", "float64"]


def _dense(dtype: str) -> keras.Model:
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(5, dtype=dtype, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, dtype=dtype, name="out")(hidden))


def _dtypes(report: Report) -> dict[str, tuple[str, int | None]]:
    return {v.path: (v.dtype, v.bytes) for v in report.variables}


def _stored(h5: h5py.File) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each dataset's NumPy type string and attributes, as the file holds them."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name] = (obj.dtype.str, dict(obj.attrs))

    h5.visititems(visit)
    return found


@pytest.mark.parametrize("dtype", FLOATS)
def test_static_dtypes_and_bytes_equal_the_live_model(dtype: str, tmp_path: Path) -> None:
    model = _dense(dtype)
    live = weighttie.analyze(model)
    assert {v.dtype for v in live.variables} == {dtype}
    path = tmp_path / f"{dtype}.keras"
    model.save(path)
    static = read_report(path)
    assert _dtypes(static) == _dtypes(live)
    assert static.cost.bytes == live.cost.bytes
    width = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).itemsize
    assert static.cost.bytes.unique == width * model.count_params()
    # a folder (model.save(dir, zipped=False)) and Keras's sharded weights: the same
    folder = tmp_path / dtype
    model.save(folder, zipped=False)
    assert _dtypes(read_report(folder)) == _dtypes(live)
    (folder / "model.weights.h5").unlink()
    largest = 4 * 5 * width  # the hidden kernel: a shard holds at least that much
    model.save_weights(folder / "model.weights.json", max_shard_size=(largest + 1) / 1024**3)
    assert len(list(folder.glob("model_*.weights.h5"))) >= 2
    assert _dtypes(read_report(folder)) == _dtypes(live)


def test_bfloat16_is_two_opaque_bytes_and_an_attribute(tmp_path: Path) -> None:
    """How Keras 3 writes bfloat16 (``H5IOStore.__setitem__``), which the reader maps back."""
    path = tmp_path / "bf.keras"
    _dense("bfloat16").save(path)
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights)) as h5:
        stored = _stored(h5)
    assert stored and all(value == ("|V2", {"dtype": "bfloat16"}) for value in stored.values())
    assert {v.dtype for v in read_report(path).variables} == {"bfloat16"}


def _opaque_file(tmp_path: Path, width: int, attribute: str | None) -> Path:
    """A float32 Dense saved unzipped, its kernel rewritten as ``width`` opaque bytes."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    folder = tmp_path / f"opaque{width}_{attribute}"
    model.save(folder, zipped=False)
    with h5py.File(folder / "model.weights.h5", "a") as h5:
        vars_group = h5["layers/dense/vars"]
        shape = vars_group["0"].shape
        del vars_group["0"]
        dataset = vars_group.create_dataset("0", shape=shape, dtype=np.dtype(f"V{width}"))
        if attribute is not None:
            dataset.attrs["dtype"] = attribute
    return folder


@pytest.mark.parametrize(
    ("width", "attribute", "expected"),
    [
        (2, "bfloat16", "bfloat16"),
        (2, None, "|V2"),  # nothing says which 2-byte type: not guessed
        (2, "float16", "|V2"),  # Keras writes the attribute for bfloat16 only
        (4, "bfloat16", "|V4"),  # the width does not fit bfloat16
        (1, "float8_e4m3fn", "|V1"),
    ],
)
def test_an_opaque_type_is_named_only_when_the_file_says_exactly(
    tmp_path: Path, width: int, attribute: str | None, expected: str
) -> None:
    folder = _opaque_file(tmp_path, width, attribute)
    kernel = next(v for v in read_report(folder).variables if v.path == "d/kernel")
    assert (kernel.dtype, kernel.bytes) == (expected, 4 * 2 * width)


def test_float8_variable_keeps_numpy_name_as_keras_writes_it_unmarked(tmp_path: Path) -> None:
    """Keras 3.15 writes a float8_e4m3fn variable as one opaque byte with nothing saying
    which 1-byte type it is (and cannot load it back); float8_e5m2 it cannot save at all.
    The static reader says ``|V1`` (one opaque byte: its width, so its bytes), not a guess."""

    class Float8(keras.layers.Layer):
        def __init__(self, dtype_name: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.dtype_name = dtype_name

        def build(self, input_shape: Any) -> None:
            kind = getattr(ml_dtypes, self.dtype_name)
            self.scale = self.add_weight(
                shape=(2, 3),
                dtype=self.dtype_name,
                initializer=lambda shape, dtype=None: np.full(shape, 0.5, kind),
                name="scale",
            )

        def call(self, x: Any) -> Any:
            return x

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "dtype_name": self.dtype_name}

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Float8("float8_e4m3fn", name="f8")(inputs))
    live = weighttie.analyze(model)
    assert [(v.dtype, v.bytes) for v in live.variables] == [("float8_e4m3fn", 6)]
    path = tmp_path / "f8.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights)) as h5:
        assert list(_stored(h5).values()) == [("|V1", {})]
    static = read_report(path)
    assert [(v.dtype, v.bytes) for v in static.variables] == [("|V1", 6)]
    assert static.cost.bytes.unique == live.cost.bytes.unique
    # the layer's call never reads its weight: live, where reads are traced, it is used 0 times
    assert live.cost.bytes.per_use == 0

    e5m2 = keras.Model(inputs, Float8("float8_e5m2", name="f8")(inputs))
    with pytest.raises(TypeError, match="float8_e5m2"):
        e5m2.save(tmp_path / "e5m2.keras")


def test_legacy_h5_bfloat16_stays_opaque(tmp_path: Path) -> None:
    """Keras 3's legacy .h5 writes bfloat16 as two opaque bytes with no attribute (and
    cannot load it back): nothing in the file says bfloat16."""
    path = tmp_path / "bf.h5"
    _dense("bfloat16").save(path)
    with h5py.File(path) as h5:
        assert {s for s, _ in _stored(h5["model_weights"]).values()} == {"|V2"}
    report = read_report(path)
    assert {v.dtype for v in report.variables} == {"|V2"}
    assert report.cost.bytes.unique == 2 * _dense("float32").count_params()


def test_a_looping_heap_behind_the_dtype_attribute_is_refused(tmp_path: Path) -> None:
    """The dtype attribute is a string in a global heap: its collection is checked before
    it is read, as the layer names' are (a looping one would make HDF5 decode forever)."""
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(64, dtype="bfloat16", name="wide")(inputs))
    folder = tmp_path / "model"
    model.save(folder, zipped=False)
    weights = folder / "model.weights.h5"
    with h5py.File(weights) as h5:
        kernel = h5["layers/dense/vars/0"]
        kernel_at = kernel.id.get_offset()
        header = h5o.get_info(kernel.id).addr
    data = bytearray(weights.read_bytes())
    with open(weights, "rb") as f:
        (original,) = referenced_collections(f, len(data), [header])
    (size,) = struct.unpack("<Q", data[original + 8 : original + 16])
    hidden = bytearray(data[original : original + size])
    place = 16
    while True:  # to the free-space object (index 0): size 0 makes HDF5 loop
        (index,) = struct.unpack("<H", hidden[place : place + 2])
        (length,) = struct.unpack("<Q", hidden[place + 8 : place + 16])
        if index == 0:
            break
        place += 16 + (length + 7) // 8 * 8
    hidden[place + 8 : place + 16] = struct.pack("<Q", 0)
    assert size <= 64 * 64 * 2
    data[kernel_at : kernel_at + size] = hidden  # the kernel's values now hold a collection
    heap_id = struct.pack("<IQ", len("bfloat16"), original)
    assert heap_id in data
    data = bytearray(data.replace(heap_id, struct.pack("<IQ", len("bfloat16"), kernel_at)))
    weights.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="HDF5 would decode forever"):
        read_report(folder)
