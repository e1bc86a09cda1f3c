"""How the static reader's cost grows with layers: linear, a small cost a layer above the
floor of starting Python and importing numpy and h5py (``pytest -m budget``).

The files are written here as Keras 3.15 writes a wide model (a Dense chain per branch,
one Dense shared by every branch), without Keras: the same config entries and the same
groups and datasets in ``model.weights.h5``, at two sizes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import weighttie
from support.cpu_floor import child_cpu, floor_cpu
from weighttie.static import read_report

BRANCH = 50  # Dense layers a branch


def _tensor(source: str, index: int = 0) -> dict[str, object]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [source, index, 0]},
    }


def _dense(name: str, calls: list[dict[str, object]]) -> dict[str, object]:
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": name, "trainable": True, "dtype": policy, "units": 4},
        "build_config": {"input_shape": [None, 4]},
        "name": name,
        "inbound_nodes": [{"args": [tensor], "kwargs": {}} for tensor in calls],
    }


def wide_model(path: Path, branches: int) -> int:
    """A .keras file of ``branches`` chains of :data:`BRANCH` Dense layers on one input, each
    ending in the one shared Dense; returns the parameter count."""
    rng = np.random.default_rng(branches)
    inp = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"},
        "name": "x",
        "inbound_nodes": [],
    }
    layers: list[dict[str, object]] = [inp]
    ends = []
    weights = path.with_suffix(".h5")
    with h5py.File(weights, "w") as h5:
        h5.create_group("vars").attrs["name"] = "wide"
        h5.create_group("layers/input_layer/vars").attrs["name"] = "x"

        def dense_group(index: int, name: str) -> None:
            key = "dense" if index == 0 else f"dense_{index}"
            group = h5.create_group(f"layers/{key}/vars")
            group.attrs["name"] = name
            group.create_dataset("0", data=rng.normal(size=(4, 4)).astype("float32"))
            group.create_dataset("1", data=np.zeros(4, "float32"))

        index = 0
        for branch in range(branches):
            previous = "x"
            for i in range(BRANCH):
                name = f"b{branch}_d{i}"
                layers.append(_dense(name, [_tensor(previous)]))
                dense_group(index, name)
                index, previous = index + 1, name
            ends.append(previous)
        layers.append(_dense("shared", [_tensor(end) for end in ends]))
        dense_group(index, "shared")
        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Concatenate",
                "config": {"name": "cat", "trainable": True, "axis": -1},
                "name": "cat",
                "inbound_nodes": [
                    {"args": [[_tensor("shared", i) for i in range(branches)]], "kwargs": {}}
                ],
            }
        )
        h5.create_group("layers/concatenate/vars").attrs["name"] = "cat"
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "wide",
            "trainable": True,
            "layers": layers,
            "input_layers": [["x", 0, 0]],
            "output_layers": [["cat", 0, 0]],
        },
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.write(weights, "model.weights.h5")
    weights.unlink()
    return (branches * BRANCH + 1) * 20


def test_the_synthetic_wide_model_reads_as_the_file_keras_writes(tmp_path: Path) -> None:
    """The same model built with Keras and saved: the two files read the same."""
    import keras

    inp = keras.Input((4,), name="x")
    shared = keras.layers.Dense(4, name="shared")
    ends = []
    for branch in range(2):
        x = inp
        for i in range(BRANCH):
            x = keras.layers.Dense(4, name=f"b{branch}_d{i}")(x)
        ends.append(shared(x))
    model = keras.Model(inp, keras.layers.Concatenate(name="cat")(ends), name="wide")
    model.save(tmp_path / "keras.keras")
    params = wide_model(tmp_path / "synthetic.keras", 2)
    synthetic = read_report(tmp_path / "synthetic.keras")
    real = read_report(tmp_path / "keras.keras")
    assert params == model.count_params() == synthetic.params.unique
    assert synthetic.params == real.params
    assert synthetic.groups == real.groups
    assert [(r.path, r.class_name, r.uses, r.params) for r in synthetic.layers] == [
        (r.path, r.class_name, r.uses, r.params) for r in real.layers
    ]


def _static_cpu(path: Path, tmp_path: Path) -> float:
    src = Path(weighttie.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # imports as after an install
    code = "import sys; from weighttie.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / f"{path.stem}.json"
    argv = [sys.executable, "-c", code, "report", str(path), "--format", "json", "-o", str(out)]
    child_cpu(argv, env=env)  # bytecode written, caches warm
    return statistics.median(child_cpu(argv, env=env) for _ in range(3))


@pytest.mark.budget
def test_static_cost_a_layer_is_small_and_constant(tmp_path: Path) -> None:
    """Whole process, CPU, at 500, 2,000 and 4,000 layers. What a layer adds (the slope
    between two sizes, so that start-up and imports cancel: the floor imports h5py and
    NumPy, which the reader of a plain file does not) is under a three-hundredth of the
    floor (0.7 ms where the floor is 0.2 s), and the slope from 2,000 to 4,000 layers is
    within 1.5 times the slope from 500 to 2,000: no part grows faster than the layers.

    (Subtracting the floor from one size's cost, as this test once did, called a linear
    reader super-linear: a reader cheaper to start than the floor looks nearly free at
    500 layers.)"""
    sizes = (10, 40, 80)  # branches of BRANCH layers
    cpu = []
    for branches in sizes:
        path = tmp_path / f"wide{branches}.keras"
        wide_model(path, branches)
        cpu.append(_static_cpu(path, tmp_path))
    floor = floor_cpu()
    first = (cpu[1] - cpu[0]) / ((sizes[1] - sizes[0]) * BRANCH)
    second = (cpu[2] - cpu[1]) / ((sizes[2] - sizes[1]) * BRANCH)
    assert second < floor / 300, (second, floor)
    assert second < 1.5 * max(first, floor / 3000), (first, second)
