"""The spec a report satisfies as it is: commit it, check against it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from weighttie.errors import SpecError
from weighttie.escape import printable
from weighttie.report import FindingKind, Report
from weighttie.spec.parse import PARAM_KEYS, SPEC_SCHEMA

# -- snapshot -------------------------------------------------------------------------

__all__ = ["snapshot"]


_TOML_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_TOML_SPECIAL = re.compile('["\\\\\x00-\x1f\x7f-\U0010ffff]')
_GLOB_SPECIAL = re.compile(r"[*?[]")


def _toml_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _TOML_SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        raise SpecError(
            f"cannot write {match.string!r} to a TOML spec: it holds a lone surrogate "
            f"(U+{code:04X}), which TOML cannot represent"
        )
    if printable(char) == char:  # letters of any script stay as they are
        return char
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _toml_str(value: str) -> str:
    """A TOML basic string: quotes, backslashes and every control or format character escaped."""
    return '"' + _TOML_SPECIAL.sub(_toml_char, value) + '"'


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _literal(path: str) -> str:
    """A pattern matching exactly ``path``: glob characters in a name are bracketed (``[*]``)."""
    return _GLOB_SPECIAL.sub(lambda m: f"[{m.group()}]", path)


def snapshot(report: Report) -> str:
    """The spec (TOML text) that ``report``'s model satisfies exactly as it is.

    What the report does not know is written as a comment, never as a claim: the
    counts that depend on calls, and ``exact_groups``, when the report states no
    calls (``ModelInfo.calls_note``); so ``check`` of the same model passes.

    Any name is written so that :func:`load_spec` reads it back as itself: control
    characters as TOML escapes, glob characters (``*?[``) in a layer path bracketed.

    Example:
        >>> Path("weighttie.toml").write_text(snapshot(report))  # doctest: +SKIP

    Raises:
        SpecError: a name holds a lone surrogate, which TOML cannot represent.
    """
    kinds = {k.value for k in FindingKind}
    kinds_present = sorted({f.kind for f in report.findings} & kinds)  # a spec knows no others
    forbid = sorted(kinds - set(kinds_present))
    source = str(report.model.source)
    if report.model.calls_note is None:
        exact = ["exact_groups = true"]
    else:  # the ties are known, a layer called more than once is not: claim no more
        exact = [
            f"# exact_groups: unknown in this {source} report, which cannot tell how often",
            "# layers run (--load counts the calls); only its ties are listed below",
        ]
    lines = [
        f"# weighttie spec of model {report.model.name!r}: `weighttie check MODEL --spec FILE`",
        f"schema = {_toml_str(SPEC_SCHEMA)}",
        *exact,
        "",
        "[params]",
        *(
            f"{k} = {getattr(report.params, k)}"
            if getattr(report.params, k) is not None
            else f"# {k}: unknown in this {source} report"
            for k in PARAM_KEYS
        ),
        "",
        "[findings]",
        f"forbid = {_toml_list(forbid)}",
    ]
    if kinds_present:
        lines.append(f"allow = {_toml_list(kinds_present)}  # present when the snapshot was taken")
    for grp in report.groups:
        lines += [
            "",
            "[[group]]",
            f"kind = {_toml_str(grp.kind.value)}",
            f"layers = {_toml_list(_literal(path) for path in grp.layers)}",
            f"calls = {grp.calls}" if grp.calls is not None else "# calls: unknown",
            f"params = {grp.params}",
        ]
    return "\n".join(lines) + "\n"
