"""The parameter counts the Hugging Face Hub shows for a checkpoint, and why weighttie's differ.

The Hub counts parameters per dtype from the safetensors headers alone
(``huggingface_hub``'s ``get_safetensors_metadata``: ``SafetensorsFileMetadata``
sums the product of each tensor's shape per dtype, a scalar counting 1;
``SafetensorsRepoMetadata`` adds up every file the index names). Every stored tensor
counts, whatever it is: a second stored copy of a tied embedding counts twice,
integer buffers (BERT's ``position_ids``) count too. A metadata alias is not a
tensor of the header, so it counts nothing.

weighttie's ``params.unique`` counts each tensor the loaded model holds once: a
bound tie stored twice with equal values is one tensor (transformers ties such
copies on load), an alias is the tensor it names. The note made here gives the
Hub's figures per dtype (parameters and bytes) and says where, and by how much,
they differ from ``params.unique``.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from weighttie.static.huggingface.safetensors_header import SafetensorsHeader

__all__ = ["SecondCopy", "hub_counts_note", "hub_parameter_count"]


@dataclass(frozen=True)
class SecondCopy:
    """A stored tensor counted by the Hub that is one tensor with ``of`` in the report."""

    name: str
    of: str
    size: int


def hub_parameter_count(headers: Iterable[SafetensorsHeader]) -> dict[str, tuple[int, int]]:
    """Parameters and bytes per safetensors dtype, summed over every stored tensor, as the Hub
    sums them; sorted by dtype name."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for header in headers:
        for t in header.tensors:
            counts[t.dtype][0] += t.size
            counts[t.dtype][1] += t.nbytes
    return {dtype: (p, b) for dtype, (p, b) in sorted(counts.items())}


def hub_counts_note(
    headers: Sequence[SafetensorsHeader],
    unique: int,
    copies: Sequence[SecondCopy],
    aliases: int,
) -> str:
    """One sentence: the Hub's count per dtype and its difference from ``unique``."""
    counts = hub_parameter_count(headers)
    total = sum(p for p, _ in counts.values())
    stored = sum(b for _, b in counts.values())
    per_dtype = ", ".join(f"{dtype} {p:,} ({b:,} bytes)" for dtype, (p, b) in counts.items())
    text = (
        f"The Hub's parameter count (safetensors headers, every stored tensor): "
        f"{per_dtype or 'none'}; {total:,} parameters in {stored:,} bytes"
    )
    if total == unique:
        text += "; params.unique is the same"
    else:
        difference = total - unique
        shown = "; ".join(f"{c.name} is a second copy of {c.of} ({c.size:,})" for c in copies[:3])
        more = f" and {len(copies) - 3} more" if len(copies) > 3 else ""
        text += (
            f"; params.unique is {unique:,}, {difference:,} fewer: tied tensors stored twice "
            f"count once in the loaded model ({shown}{more})"
        )
    if aliases:
        text += (
            f"; {aliases:,} metadata alias{'es name' if aliases != 1 else ' names'} stored "
            "tensors, counted once by both"
        )
    return text
