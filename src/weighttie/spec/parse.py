"""Spec files: what a model's sharing must look like (``weighttie.spec/1``), read and checked."""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weighttie.errors import LimitError, MissingFileError, SpecError
from weighttie.escape import printable
from weighttie.files import read_limited
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import FindingKind, GroupKind

__all__ = ["BOUNDS", "COST_KEYS", "PARAM_KEYS", "SPEC_SCHEMA", "GroupSpec", "Spec", "load_spec"]

SPEC_SCHEMA = "weighttie.spec/1"

PARAM_KEYS = ("unique", "per_use", "duplicated", "trainable_unique", "non_trainable_unique")
BOUNDS = {f"{b}_{k}": (b, k) for k in PARAM_KEYS for b in ("min", "max")}
#: The budgets a spec's ``[cost]`` table may set.
COST_KEYS = ("max_macs", "max_bytes_unique", "max_bytes_per_use")


@dataclass(frozen=True)
class GroupSpec:
    """An expected sharing group: its kind and exactly these layers (globs allowed)."""

    kind: GroupKind
    layers: tuple[str, ...]
    calls: int | None = None
    params: int | None = None


@dataclass(frozen=True)
class Spec:
    """What a model's sharing must look like."""

    groups: tuple[GroupSpec, ...] = ()
    exact_groups: bool = False
    not_shared: tuple[tuple[str, ...], ...] = ()
    params: Mapping[str, int] = field(default_factory=dict)
    forbid_findings: frozenset[str] = frozenset(k.value for k in FindingKind)
    cost: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "spec") -> Spec:
        """Validate a parsed spec document."""
        return _spec_from_dict(doc, source)


# -- reading specs ------------------------------------------------------------------


def load_spec(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Spec:
    """Read a TOML spec file.

    At most ``limits.spec_bytes`` are read, and nesting (arrays, tables, dotted
    keys) deeper than ``limits.depth`` is refused before it is parsed where it
    can be (TOML's parser takes time quadratic in a dotted key's length).

    Example:
        >>> check(report, load_spec("weighttie.toml"))  # doctest: +SKIP

    Raises:
        SpecError: the file is missing, not UTF-8 TOML, or not a valid spec.
        FileFormatError: the path is a directory, a FIFO or another special file.
        LimitError: the file holds more than ``limits.spec_bytes`` (limit
            ``spec_bytes``) or nests deeper than ``limits.depth`` (limit ``depth``).
    """
    try:
        data = read_limited(
            path, limit=limits.spec_bytes, limit_name="spec_bytes", what="spec file"
        )
    except MissingFileError:
        raise SpecError(
            f"no spec file at {str(path)!r}; write one with `weighttie snapshot MODEL`"
        ) from None
    name = repr(str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{name} is not valid TOML: {exc}") from None
    _refuse_long_dotted_keys(text, limits.depth, name)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{name} is not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(
            f"{name} nests arrays or inline tables too deeply to read; a spec nests 4 levels"
        ) from None
    _refuse_deep_nesting(doc, limits.depth, name)
    return _spec_from_dict(doc, printable(str(path)))


# TOML strings and comments. Every alternative matches wherever it starts (an
# unterminated string runs to the end of its line, or of the file), so removing
# them takes linear time on any input.
_TOML_STRINGS_AND_COMMENTS = re.compile(
    r'"""[^\\"]*+(?:(?:\\[\s\S]|"(?!""))[^\\"]*+)*+(?:"""|\Z)'
    r"|'''[\s\S]*?(?:'''|\Z)"
    r'|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"?'
    r"|'[^'\n]*+'?"
    r"|#[^\n]*+"
)
_SPACED_DOT = re.compile(r"[ \t]*\.[ \t]*")


def _blank_strings(match: re.Match[str]) -> str:
    return "" if match.group().startswith("#") else '""'  # a quoted key part stays one


@functools.cache
def _dotted_key(parts: int) -> re.Pattern[str]:
    """A dotted key (``a.b."c"``) of more than ``parts`` parts, matched from its start only."""
    part = r'(?:[A-Za-z0-9_-]++|"")'
    return re.compile(rf'(?<![A-Za-z0-9_".-])(?:{part}\.){{{parts}}}{part}')


def _refuse_long_dotted_keys(text: str, limit: int, name: str) -> None:
    if 2 * limit >= len(text):  # too short to hold a key of more than `limit` parts
        return
    keys = _SPACED_DOT.sub(".", _TOML_STRINGS_AND_COMMENTS.sub(_blank_strings, text))
    if _dotted_key(limit).search(keys):
        raise LimitError(
            f"{name} has a dotted key or table name of more than {limit} parts; "
            f"weighttie reads specs nested at most {limit} levels deep",
            limit="depth",
        )


def _refuse_deep_nesting(doc: dict[str, Any], limit: int, name: str) -> None:
    """Walk the parsed document without recursion; the top-level table is level 1."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        nested = [c for c in children if isinstance(c, dict | list)]
        if nested and depth >= limit:
            raise LimitError(
                f"{name} nests tables and arrays more than {limit} levels deep; "
                f"weighttie reads specs nested at most {limit} levels deep",
                limit="depth",
            )
        stack.extend((c, depth + 1) for c in nested if c)  # an empty one nests no further


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where} must be a non-empty list of layer names, paths or globs")
    return tuple(value)


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SpecError(f"{where} must be a non-negative integer; received {value!r}")
    return value


def _spec_from_dict(doc: Mapping[str, Any], source: str) -> Spec:
    known = {"schema", "exact_groups", "params", "cost", "findings", "group", "not_shared"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SpecError(
            f"{source}: unknown key {unknown[0]!r}; a spec has {', '.join(sorted(known))}"
        )
    schema = doc.get("schema", SPEC_SCHEMA)
    if schema != SPEC_SCHEMA:
        raise SpecError(f"{source}: expected schema = {SPEC_SCHEMA!r}; received {schema!r}")
    exact = doc.get("exact_groups", False)
    if not isinstance(exact, bool):
        raise SpecError(f"{source}: exact_groups must be true or false")
    return Spec(
        groups=_groups(doc.get("group", []), source),
        exact_groups=exact,
        not_shared=_not_shared(doc.get("not_shared", []), source),
        params=_table(doc.get("params", {}), "params", _param_key, source),
        forbid_findings=_forbidden(doc.get("findings", {}), source),
        cost=_table(doc.get("cost", {}), "cost", _cost_key, source),
    )


def _groups(raw: Any, source: str) -> tuple[GroupSpec, ...]:
    if not isinstance(raw, list):
        raise SpecError(f"{source}: [[group]] must be an array of tables")
    groups = []
    for i, g in enumerate(raw):
        where = f"{source}: group {i + 1}"
        if not isinstance(g, dict):
            raise SpecError(f"{where} must be a table")
        extra = sorted(set(g) - {"kind", "layers", "calls", "params"})
        if extra:
            raise SpecError(f"{where}: unknown key {extra[0]!r}")
        try:
            kind = GroupKind(str(g.get("kind")))
        except ValueError:
            names = ", ".join(k.value for k in GroupKind)
            raise SpecError(
                f"{where}: kind must be one of {names}; received {g.get('kind')!r}"
            ) from None
        groups.append(
            GroupSpec(
                kind=kind,
                layers=_strings(g.get("layers"), f"{where} layers"),
                calls=None if "calls" not in g else _int(g["calls"], f"{where} calls"),
                params=None if "params" not in g else _int(g["params"], f"{where} params"),
            )
        )
    return tuple(groups)


def _not_shared(raw: Any, source: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list):
        raise SpecError(f"{source}: [[not_shared]] must be an array of tables")
    found = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) != {"layers"}:
            raise SpecError(f"{source}: not_shared {i + 1} must be a table with only `layers`")
        found.append(_strings(entry["layers"], f"{source}: not_shared {i + 1} layers"))
    return tuple(found)


def _param_key(key: str) -> str | None:
    """Why ``key`` is not a ``[params]`` key, or None."""
    if key in PARAM_KEYS or key in BOUNDS:
        return None
    return f"use one of {', '.join(PARAM_KEYS)}, or one with min_ / max_ before it"


def _cost_key(key: str) -> str | None:
    """Why ``key`` is not a ``[cost]`` key, or None."""
    return None if key in COST_KEYS else f"use one of {', '.join(COST_KEYS)}"


def _table(raw: Any, name: str, refuse: Any, source: str) -> dict[str, int]:
    """A ``[params]`` or ``[cost]`` table of integers, its keys checked by ``refuse``."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: [{name}] must be a table")
    table: dict[str, int] = {}
    for key, value in raw.items():
        why = refuse(key)
        if why is not None:
            raise SpecError(f"{source}: [{name}] has unknown key {key!r}; {why}")
        table[key] = _int(value, f"{source}: {name}.{key}")
    return table


def _forbidden(raw: Any, source: str) -> frozenset[str]:
    """The finding kinds a ``[findings]`` table forbids: every kind unless it says."""
    kinds = {k.value for k in FindingKind}
    if not isinstance(raw, dict) or set(raw) - {"allow", "forbid"}:
        raise SpecError(f"{source}: [findings] takes `allow` and/or `forbid` lists")
    for key in ("allow", "forbid"):
        values = raw.get(key, [])
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v in kinds for v in values
        ):
            raise SpecError(
                f"{source}: findings.{key} must list finding kinds ({', '.join(sorted(kinds))})"
            )
    forbid = set(raw["forbid"]) if "forbid" in raw else set(kinds)
    return frozenset(forbid - set(raw.get("allow", [])))
