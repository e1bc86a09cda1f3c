"""A 7B-sized Hugging Face checkpoint folder, written in a second, without torch.

The folder is what ``LlamaForCausalLM(config).save_pretrained(folder)`` writes for
Llama 2 7B's shapes (32 blocks, hidden 4096, intermediate 11008, vocabulary 32,000;
6.74 B parameters, float16): ``config.json``, ``model.safetensors.index.json`` and two
shards (``model-00001-of-00002.safetensors`` …), tensors named, ordered and split as
transformers does. The weights are declared, not written: each shard has its full
size (13.5 GB together), but only the first 64 kB of each tensor are written, random,
so that no two tensors look alike; the rest is a hole of the sparse file, which costs
no disk and reads as zeros.

Variants (``--variant``):

* ``untied``: Llama 2 as published, ``tie_word_embeddings`` false, ``lm_head.weight``
  stored;
* ``tied``: ``tie_word_embeddings`` true and no ``lm_head.weight`` (as Llama 3.2 1B and
  Gemma store it): a ``tied`` group;
* ``stored-twice``: tied, and ``lm_head.weight`` stored too, an exact copy: the report
  compares the two 262 MB copies in full (a ``stored-twice`` finding).

Usage: ``python benchmarks/synthetic_checkpoint.py FOLDER [--variant tied]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The first bytes written of each tensor.
HEAD_BYTES = 64 * 1024
#: transformers' default shard size (``max_shard_size="5GB"`` in 4.x wrote 10 GB shards
#: for Llama 2 7B; the count does not change what is read).
SHARD_BYTES = 10 * 10**9


@dataclass(frozen=True)
class Llama:
    """Llama 2 7B's config (``meta-llama/Llama-2-7b-hf``)."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32

    def config(self, tied: bool) -> dict[str, Any]:
        return {
            "architectures": ["LlamaForCausalLM"],
            "bos_token_id": 1,
            "eos_token_id": 2,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": 4096,
            "model_type": "llama",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_attention_heads,
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "tie_word_embeddings": tied,
            "torch_dtype": "float16",
            "transformers_version": "5.24.0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }

    def tensors(self, head: bool) -> dict[str, tuple[int, ...]]:
        """Tensor names and shapes in the order transformers writes them."""
        h, m, v = self.hidden_size, self.intermediate_size, self.vocab_size
        shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h)}
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}."
            shapes.update(
                {
                    p + "self_attn.q_proj.weight": (h, h),
                    p + "self_attn.k_proj.weight": (h, h),
                    p + "self_attn.v_proj.weight": (h, h),
                    p + "self_attn.o_proj.weight": (h, h),
                    p + "mlp.gate_proj.weight": (m, h),
                    p + "mlp.up_proj.weight": (m, h),
                    p + "mlp.down_proj.weight": (h, m),
                    p + "input_layernorm.weight": (h,),
                    p + "post_attention_layernorm.weight": (h,),
                }
            )
        shapes["model.norm.weight"] = (h,)
        if head:
            shapes["lm_head.weight"] = (v, h)
        return shapes


def _header(tensors: dict[str, tuple[int, ...]]) -> tuple[bytes, dict[str, int]]:
    """The header safetensors writes for float16 tensors (sorted by name), and offsets."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offsets = {}
    at = 0
    for name in sorted(tensors):
        size = math.prod(tensors[name]) * 2
        header[name] = {
            "dtype": "F16",
            "shape": list(tensors[name]),
            "data_offsets": [at, at + size],
        }
        offsets[name] = at
        at += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8), offsets


def write_checkpoint(folder: Path, variant: str = "untied", model: Llama = Llama()) -> int:
    """Write the folder; return the bytes of tensors declared."""
    tied = variant != "untied"
    shapes = model.tensors(head=variant != "tied")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config(tied), indent=2))
    shards: list[dict[str, tuple[int, ...]]] = [{}]
    filled = 0
    for name, shape in shapes.items():  # filled in model order, as transformers does
        size = math.prod(shape) * 2
        if filled and filled + size > SHARD_BYTES:
            shards.append({})
            filled = 0
        shards[-1][name] = shape
        filled += size
    rng = np.random.default_rng(0)
    embedding_head = rng.bytes(HEAD_BYTES)
    weight_map = {}
    total = 0
    for i, part in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        raw, offsets = _header(part)
        start = 8 + len(raw)
        size = sum(math.prod(s) * 2 for s in part.values())
        with (folder / name).open("wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            for tensor, offset in offsets.items():
                copy = variant == "stored-twice" and tensor == "lm_head.weight"
                head = embedding_head if copy or tensor == "model.embed_tokens.weight" else None
                os.pwrite(f.fileno(), head or rng.bytes(HEAD_BYTES), start + offset)
            f.truncate(start + size)
        weight_map.update(dict.fromkeys(part, name))
        total += size
    index = {
        "metadata": {"total_parameters": total // 2, "total_size": total},
        "weight_map": dict(sorted(weight_map.items())),
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--variant", choices=["untied", "tied", "stored-twice"], default="untied")
    args = parser.parse_args()
    total = write_checkpoint(args.folder, args.variant)
    print(f"{args.folder}: {total / 1e9:.2f} GB of tensors declared", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
