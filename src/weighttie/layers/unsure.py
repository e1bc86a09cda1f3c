"""How a rule says that its facts do not tell: it raises :class:`Unsure`, and the
question's answer is then None ("unknown"), never a guess."""

from __future__ import annotations

__all__ = ["Unsure"]


class Unsure(Exception):
    """Raised inside a rule whose facts do not tell: the answer is None (unknown)."""
