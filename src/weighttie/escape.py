"""Making text from a file safe to show on a terminal or in a CI log.

Names in a model file (layers, classes, the model itself) and Keras's own error
text are untrusted. Written raw, a control character can clear the screen,
retitle a terminal, move the cursor or start a new line that forges a summary
line; a bidirectional override can make one name look like another.
:func:`printable` shows each such character as a visible escape instead.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# Categories shown escaped: controls (C0, DEL, C1), format characters (bidi
# overrides and isolates, zero-width characters), line and paragraph separators,
# surrogates and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format or separator character shown as an escape.

    Plain text, including accented letters, CJK and emoji, is returned unchanged,
    so the common case costs one scan.

    Example:
        >>> printable("conv\\x1b[2J")
        'conv\\\\x1b[2J'
        >>> printable("tower/embed")
        'tower/embed'
    """
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)
