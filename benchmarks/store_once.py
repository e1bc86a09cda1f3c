"""Store a tie once: file size, save time and load time, before and after.

A language model whose output head is tied to its input embedding (a
``vocabulary × dim`` float32 matrix, 50,000 × 768 by default: 153.6 MB), saved by
Keras's ``model.save`` (the matrix twice) and by ``weighttie.save_model`` (once,
the head's path a hard link), then loaded by ``keras.saving.load_model`` and by
``weighttie.load_model``. Prints a table (docs/store-once.md).

Usage: ``python benchmarks/store_once.py [--vocab 50000 --dim 768 --repeat 3 --dir DIR]``

Times are in-process medians of ``--repeat`` runs, after one warm-up save and load
(the first call of each pays for tracing and imports). The page cache is warm:
these are the costs of writing and reading the bytes, not of a cold disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from keras import layers, ops

import weighttie


@keras.saving.register_keras_serializable(package="weighttie_bench")
class Vocab(layers.Embedding):
    """An Embedding that projects onto its vocabulary when ``reverse`` (the tied head)."""

    def __init__(self, *args: Any, reverse: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reverse = reverse

    def call(self, inputs: Any) -> Any:
        if self.reverse:
            return ops.matmul(inputs, ops.transpose(self.embeddings))
        return super().call(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.reverse:
            return (*input_shape[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reverse": self.reverse}


def tied_lm(vocab: int, dim: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((16,), dtype="int32", name="tokens")
    embed = Vocab(vocab, dim, name="embed")
    head = Vocab(vocab, dim, reverse=True, name="head")
    weighttie.tie_weights(embed, head)
    h = layers.Dense(dim, activation="tanh", name="mix")(embed(tokens))
    return keras.Model(tokens, head(h), name="tied_lm")


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs after one warm-up, and the last result."""
    result = run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def weights_member(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo("model.weights.h5").file_size


def quiet_load(load: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load()

    return run


def measure(
    name: str, path: Path, save: float, x: np.ndarray, expected: np.ndarray, repeat: int
) -> tuple[Any, ...]:
    """One row: sizes, the save time, and the loads (each checked against the model)."""
    keras_load, loaded = timed(quiet_load(lambda: keras.saving.load_model(path)), repeat)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), expected)
    wt_load, tied = timed(lambda: weighttie.load_model(path), repeat)
    assert tied.get_layer("head").embeddings is tied.get_layer("embed").embeddings
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tied(x)), expected)
    static, report = timed(lambda: weighttie.read_report(path), repeat)
    groups = [(g.kind.value, g.layers) for g in report.groups]
    print(f"{name}: static report groups {groups}, params.unique {report.params.unique:,}")
    size, member = path.stat().st_size / 1e6, weights_member(path) / 1e6
    return (name, size, member, save, keras_load, wt_load, static)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    args = parser.parse_args(argv)

    model = tied_lm(args.vocab, args.dim)
    matrix_mb = args.vocab * args.dim * 4 / 1e6
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        plain, once = Path(folder) / "plain.keras", Path(folder) / "once.keras"
        save_plain, _ = timed(lambda: model.save(plain), args.repeat)
        save_once, stored = timed(lambda: weighttie.save_model(model, once), args.repeat)
        x = np.arange(16, dtype="int32")[None] % args.vocab
        expected = keras.ops.convert_to_numpy(model(x))
        rows = [
            measure("model.save", plain, save_plain, x, expected, args.repeat),
            measure("save_model", once, save_once, x, expected, args.repeat),
        ]
    print(
        f"Tied {args.vocab:,} × {args.dim} float32 embedding and head ({matrix_mb:.1f} MB "
        f"matrix), Keras {keras.__version__}, backend {keras.config.backend()}, "
        f"median of {args.repeat}"
    )
    print()
    header = (
        "Saved by",
        "File MB",
        "weights.h5 MB",
        "Save s",
        "keras load s",
        "weighttie load s",
        "static report s",
    )
    print(" | ".join(header))
    print(" | ".join("-" * len(h) for h in header))
    for name, size, member, *times in rows:
        print(f"{name} | {size:.1f} | {member:.1f} | " + " | ".join(f"{t:.2f}" for t in times))
    saved = rows[0][1] - rows[1][1]
    print()
    print(f"save_model wrote {saved:.1f} MB less ({saved / rows[0][1]:.0%}); links: {stored.links}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
