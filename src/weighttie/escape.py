"""Making text from a file safe to show on a terminal, in a CI log or a web page.

Names in a model file (layers, classes, the model itself) and Keras's own error
text are untrusted. Written raw, a control character can clear the screen,
retitle a terminal, move the cursor or start a new line that forges a summary
line; a bidirectional override can make one name look like another.

- :func:`printable` shows each such character as a visible escape (text output).
- :func:`markdown` does that and also escapes what Markdown or HTML would
  interpret, so a name shows as itself on a rendered page.
- :func:`printable_json` writes those characters of a JSON text as ``\\u``
  escapes: the same document, safe to print.
- :func:`to_xml_safe` / :func:`from_xml_safe` encode, reversibly, the characters
  XML 1.0 cannot carry (GraphML files).

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["from_xml_safe", "markdown", "printable", "printable_json", "to_xml_safe"]

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


# -- Markdown -----------------------------------------------------------------------

# Entities for what HTML would read as markup; a backslash for Markdown's own
# punctuation: code spans, emphasis, links and images, table cells, strikethrough
# and GitHub's math.
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_SPECIAL = re.compile(r"_+|[&<>\\`*\[\]|~$]")
# At the start of a block a character can open a heading, a list or a rule.
_BLOCK_START = re.compile(r"[#+=-]|\d+(?=[.)])")


def _markdown_char(match: re.Match[str]) -> str:
    found = match.group()
    if found[0] == "_":
        # An underscore run between two letters or digits (lstm_cell) cannot
        # open or close emphasis (CommonMark's flanking rules): left as it is.
        start, end, text = match.start(), match.end(), match.string
        if start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum():
            return found
        return found.replace("_", "\\_")
    return _HTML.get(found) or "\\" + found


def markdown(text: str) -> str:
    """``text`` as Markdown that renders as the text itself, one line, no markup.

    Controls and format characters are shown as escapes (:func:`printable`);
    Markdown punctuation is backslash-escaped and ``& < >`` become entities, so a
    name can neither break a table cell (``|``) nor start emphasis, a link, a
    heading or HTML. An underscore inside a word (``lstm_cell``) is left alone.

    Example:
        >>> markdown("tower/lstm_cell")
        'tower/lstm_cell'
        >>> markdown("a|b *c* <img>")
        'a\\\\|b \\\\*c\\\\* &lt;img&gt;'
    """
    text = _MARKDOWN_SPECIAL.sub(_markdown_char, printable(text))
    start = _BLOCK_START.match(text)
    if start is None:
        return text
    if start.group()[0].isdigit():  # "1." or "1)" would start an ordered list
        end = start.end()
        return f"{text[:end]}\\{text[end:]}"
    return "\\" + text


# -- JSON ---------------------------------------------------------------------------

_BEYOND_ASCII = re.compile("[\x7f-\U0010ffff]")


def _json_escape(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _UNSAFE_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable_json(json_text: str) -> str:
    """JSON text with every character :func:`printable` would escape as a ``\\u`` escape.

    ``json.dumps(..., ensure_ascii=False)`` escapes quotes, backslashes and C0
    controls itself but writes DEL, C1 controls, bidirectional overrides, line
    separators and lone surrogates raw. Outside strings JSON text is ASCII, so
    escaping these keeps the document exactly the same, and makes it safe to print
    and to encode as UTF-8. ASCII text is returned unchanged.

    Example:
        >>> printable_json('{"name": "a\\u202eb"}')
        '{"name": "a\\\\u202eb"}'
    """
    return _BEYOND_ASCII.sub(_json_escape, json_text)


# -- XML ----------------------------------------------------------------------------

# XML 1.0 cannot carry C0 controls, U+FFFE, U+FFFF or surrogates at all, and a
# parser turns a tab, newline or carriage return in an attribute into a space
# (and a carriage return in text into a newline).
_XML_UNSAFE = re.compile("[\\\\\x00-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ESCAPED = re.compile(r"\\(\\|u[0-9a-f]{4})")


def _xml_escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


def to_xml_safe(text: str) -> str:
    """``text`` with what XML 1.0 cannot carry faithfully written as ``\\uXXXX``.

    The encoding is reversible (:func:`from_xml_safe`): a backslash is written
    ``\\\\``, each C0 control (tab, newline and carriage return included), U+FFFE,
    U+FFFF and lone surrogate as ``\\u`` and four lowercase hex digits. Everything
    else, including all of Unicode's letters, is unchanged.

    Example:
        >>> to_xml_safe("conv\\x00")
        'conv\\\\u0000'
        >>> from_xml_safe(to_xml_safe("a\\\\b\\nc")) == "a\\\\b\\nc"
        True
    """
    return _XML_UNSAFE.sub(_xml_escape, text)


def _xml_unescape(match: re.Match[str]) -> str:
    body = match.group(1)
    return "\\" if body == "\\" else chr(int(body[1:], 16))


def from_xml_safe(text: str) -> str:
    """The text :func:`to_xml_safe` encoded.

    Example:
        >>> from_xml_safe("conv\\\\u0000")
        'conv\\x00'
    """
    return _XML_ESCAPED.sub(_xml_unescape, text)
