"""A synthetic LLM-sized keras_hub preset folder, written in seconds, without Keras.

The folder is what ``GPT2Backbone(...).save_to_preset(folder, max_shard_size=...)``
writes for a 32-block decoder (config.json, metadata.json, model.weights.json and
its shards), with the tree of groups, layer names and dataset shapes Keras gives
GPT-2 (``tests/static/test_presets.py`` checks it against a real tiny preset). The weights
are declared, not written: every dataset's storage is allocated in the file (the
file has its full size, 6.9 GB at the default sizes) but only its first 64 kB are
written, random, so that no two variables look alike; the rest is a hole of the
sparse file, which costs no disk and reads as zeros.

Usage: ``python benchmarks/synthetic_llm.py FOLDER [--layers 32 --hidden 2048 ...]``
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The first bytes written of each variable: what a ``broken-tie`` sample reads.
HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Decoder:
    """GPT-2's constructor arguments (its head dimension is hidden / heads)."""

    vocabulary_size: int = 50304
    num_layers: int = 32
    num_heads: int = 16
    hidden_dim: int = 2048
    intermediate_dim: int = 8192
    max_sequence_length: int = 2048

    def config(self) -> dict[str, Any]:
        """config.json as keras_hub writes it for GPT2Backbone."""
        return {
            "module": "keras_hub.src.models.gpt2.gpt2_backbone",
            "class_name": "GPT2Backbone",
            "config": {
                "name": "gpt2_backbone",
                "trainable": True,
                "dtype": {
                    "module": "keras",
                    "class_name": "DTypePolicy",
                    "config": {"name": "float32"},
                    "registered_name": None,
                },
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": 0.1,
                "max_sequence_length": self.max_sequence_length,
            },
            "registered_name": "keras_hub>GPT2Backbone",
        }

    def saveables(self) -> list[tuple[str, str, list[tuple[int, ...]]]]:
        """(group path, layer name, variable shapes) in saving order, as Keras saves GPT-2."""
        h, n, f = self.hidden_dim, self.num_heads, self.intermediate_dim
        d = h // n
        out: list[tuple[str, str, list[tuple[int, ...]]]] = [
            ("", "gpt2_backbone", []),
            ("layers/input_layer", "token_ids", []),
            ("layers/input_layer_1", "padding_mask", []),
            ("layers/reversible_embedding", "token_embedding", [(self.vocabulary_size, h)]),
            ("layers/position_embedding", "position_embedding", [(self.max_sequence_length, h)]),
            ("layers/add", "embeddings_add", []),
            ("layers/dropout", "embeddings_dropout", []),
        ]
        for i in range(self.num_layers):
            block = "layers/transformer_decoder" + (f"_{i}" if i else "")
            attention = f"{block}/_self_attention_layer"
            suffix = f"_{i}" if i else ""
            out += [
                (block, f"transformer_layer_{i}", []),
                (attention, "self_attention", []),
                (f"{attention}/query_dense", "query", [(h, n, d), (n, d)]),
                (f"{attention}/key_dense", "key", [(h, n, d), (n, d)]),
                (f"{attention}/value_dense", "value", [(h, n, d), (n, d)]),
                (f"{attention}/_softmax", f"softmax{suffix}", []),
                (f"{attention}/_dropout_layer", f"dropout{suffix}", []),
                (f"{attention}/output_dense", "attention_output", [(n, d, h), (h,)]),
                (f"{block}/_self_attention_layer_norm", "self_attention_layer_norm", [(h,), (h,)]),
                (f"{block}/_self_attention_dropout", "self_attention_dropout", []),
                (
                    f"{block}/_feedforward_intermediate_dense",
                    "feedforward_intermediate_dense",
                    [(h, f), (f,)],
                ),
                (f"{block}/_feedforward_output_dense", "feedforward_output_dense", [(f, h), (h,)]),
                (f"{block}/_feedforward_layer_norm", "feedforward_layer_norm", [(h,), (h,)]),
                (f"{block}/_feedforward_dropout", "feedforward_dropout", []),
            ]
        out.append(("layers/layer_normalization", "layer_norm", [(h,), (h,)]))
        return out

    def params(self) -> int:
        return sum(math.prod(s) for _, _, shapes in self.saveables() for s in shapes)


def _declared(
    group: Any, name: str, shape: tuple[int, ...], rng: np.random.Generator, dense: bool = False
) -> int:
    """A float32 dataset with its storage allocated, never filled, its head written
    (``dense``: all of it written, random)."""
    import h5py
    from h5py import h5d, h5p, h5s, h5t

    plist = h5p.create(h5p.DATASET_CREATE)
    plist.set_alloc_time(h5d.ALLOC_TIME_EARLY)
    plist.set_fill_time(h5d.FILL_TIME_NEVER)
    space = h5s.create_simple(shape)
    dataset = h5py.Dataset(h5d.create(group.id, name.encode(), h5t.IEEE_F32LE, space, dcpl=plist))
    axis = next((i for i, size in enumerate(shape) if size > 1), 0)
    row = max(1, math.prod(shape) // max(1, shape[axis]))
    rows = min(shape[axis], max(1, -(-HEAD_BYTES // (4 * row))))
    head = (*(slice(0, 1) for _ in range(axis)), slice(0, rows))
    dataset[head] = rng.standard_normal(dataset[head].shape, dtype=np.float32)
    if dense:
        step = max(1, (64 << 20) // (4 * max(1, math.prod(shape[1:]))))
        for start in range(0, shape[0], step):
            block = dataset[start : start + step]
            dataset[start : start + step] = rng.standard_normal(block.shape, dtype=np.float32)
    return math.prod(shape) * 4


def write_preset(
    folder: Path, decoder: Decoder = Decoder(), shard_bytes: int = 2 << 30, dense: bool = False
) -> int:
    """Write the preset folder; return the bytes of weights it declares (``dense``: and
    writes, every byte random, as a real model's would be)."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(decoder.config(), indent=4))
    (folder / "metadata.json").write_text(
        json.dumps(
            {
                "keras_version": "3.15.1",
                "keras_hub_version": "0.32.0",
                "parameter_count": decoder.params(),
                "tasks": ["CausalLM"],
            },
            indent=4,
        )
    )
    rng = np.random.default_rng(0)
    weight_map: dict[str, str] = {}
    total = shard = size = 0
    h5 = None
    try:
        for path, layer, shapes in decoder.saveables():
            need = sum(math.prod(s) * 4 for s in shapes)
            if h5 is None or (size and size + need > shard_bytes):
                if h5 is not None:
                    h5.close()
                    shard += 1
                h5 = h5py.File(folder / f"model_{shard:05}.weights.h5", "w")
                size = 0
            group = h5.require_group(f"{path}/vars" if path else "vars")
            group.attrs["name"] = layer
            for index, shape in enumerate(shapes):
                size += _declared(group, str(index), shape, rng, dense)
            total += need
            if shapes:  # Keras lists a saveable only where it wrote a variable of it
                weight_map[f"/{path}/vars" if path else "/vars"] = f"model_{shard:05}.weights.h5"
    finally:
        if h5 is not None:
            h5.close()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.weights.json").write_text(json.dumps(index, indent=4))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--dense", action="store_true", help="write every byte (not sparse)")
    for name, default in Decoder().__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = vars(parser.parse_args())
    folder, dense = args.pop("folder"), args.pop("dense")
    total = write_preset(folder, Decoder(**args), dense=dense)
    print(f"{folder}: {total / 1e9:.2f} GB of weights declared")


if __name__ == "__main__":
    main()
