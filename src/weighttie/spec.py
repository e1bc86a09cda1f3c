"""Spec files, checks and diffs: what a model's sharing must look like, for CI.

A spec (TOML, ``weighttie.spec/1``) lists expectations; :func:`check` turns each
into a :class:`Result` against a Report. :func:`snapshot` writes the spec a
model satisfies as it is (commit it, check against it); :func:`diff` compares
two reports' sharing structure and counts. Everything here reads only Reports.

Example spec::

    schema = "weighttie.spec/1"
    exact_groups = true            # no sharing groups beyond those listed

    [params]
    unique = 86785
    max_per_use = 200000

    [cost]                         # budgets (docs/cost.md); snapshot writes none
    max_macs = 1_000_000_000       # MACs per forward pass, every layer counted
    max_bytes_unique = 400_000_000
    max_bytes_per_use = 800_000_000

    [findings]
    forbid = ["twin-branches", "broken-tie"]

    [[group]]
    kind = "shared-model"
    layers = ["tower"]
    calls = 2

    [[not_shared]]
    layers = ["left_*", "right_*"]
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weighttie.errors import LimitError, MissingFileError, SpecError
from weighttie.escape import printable
from weighttie.files import read_limited
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import FindingKind, GroupKind, LayerInfo, Report, SharingGroup

__all__ = [
    "SPEC_SCHEMA",
    "Diff",
    "GroupSpec",
    "Result",
    "Spec",
    "SpecError",
    "check",
    "diff",
    "load_spec",
    "match_layers",
    "snapshot",
]

SPEC_SCHEMA = "weighttie.spec/1"

_PARAM_KEYS = ("unique", "per_use", "duplicated", "trainable_unique", "non_trainable_unique")
_BOUNDS = {f"{b}_{k}": (b, k) for k in _PARAM_KEYS for b in ("min", "max")}
#: The budgets a spec's ``[cost]`` table may set.
_COST_KEYS = ("max_macs", "max_bytes_unique", "max_bytes_per_use")


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


@dataclass(frozen=True)
class Result:
    """One expectation checked: ``failure`` is None when it holds."""

    name: str
    failure: str | None

    @property
    def passed(self) -> bool:
        return self.failure is None


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

    groups = []
    raw_groups = doc.get("group", [])
    if not isinstance(raw_groups, list):
        raise SpecError(f"{source}: [[group]] must be an array of tables")
    for i, g in enumerate(raw_groups):
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

    not_shared = []
    raw_not_shared = doc.get("not_shared", [])
    if not isinstance(raw_not_shared, list):
        raise SpecError(f"{source}: [[not_shared]] must be an array of tables")
    for i, entry in enumerate(raw_not_shared):
        if not isinstance(entry, dict) or set(entry) != {"layers"}:
            raise SpecError(f"{source}: not_shared {i + 1} must be a table with only `layers`")
        not_shared.append(_strings(entry["layers"], f"{source}: not_shared {i + 1} layers"))

    params: dict[str, int] = {}
    raw_params = doc.get("params", {})
    if not isinstance(raw_params, dict):
        raise SpecError(f"{source}: [params] must be a table")
    for key, value in raw_params.items():
        if key not in _PARAM_KEYS and key not in _BOUNDS:
            raise SpecError(
                f"{source}: [params] has unknown key {key!r}; use one of "
                f"{', '.join(_PARAM_KEYS)}, or one with min_ / max_ before it"
            )
        params[key] = _int(value, f"{source}: params.{key}")

    cost: dict[str, int] = {}
    raw_cost = doc.get("cost", {})
    if not isinstance(raw_cost, dict):
        raise SpecError(f"{source}: [cost] must be a table")
    for key, value in raw_cost.items():
        if key not in _COST_KEYS:
            raise SpecError(
                f"{source}: [cost] has unknown key {key!r}; use one of {', '.join(_COST_KEYS)}"
            )
        cost[key] = _int(value, f"{source}: cost.{key}")

    kinds = {k.value for k in FindingKind}
    forbid = set(kinds)
    raw_findings = doc.get("findings", {})
    if not isinstance(raw_findings, dict) or set(raw_findings) - {"allow", "forbid"}:
        raise SpecError(f"{source}: [findings] takes `allow` and/or `forbid` lists")
    for key in ("allow", "forbid"):
        values = raw_findings.get(key, [])
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v in kinds for v in values
        ):
            raise SpecError(
                f"{source}: findings.{key} must list finding kinds ({', '.join(sorted(kinds))})"
            )
    if "forbid" in raw_findings:
        forbid = set(raw_findings["forbid"])
    forbid -= set(raw_findings.get("allow", []))
    return Spec(
        groups=tuple(groups),
        exact_groups=exact,
        not_shared=tuple(not_shared),
        params=params,
        forbid_findings=frozenset(forbid),
        cost=cost,
    )


# -- matching layers ----------------------------------------------------------------


def match_layers(report: Report, patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """Resolve names, paths and globs to layer paths: ``(paths, patterns that matched none)``.

    A pattern matches layer paths (``tower/conv``, ``tower_*``); only when no path
    matches does it match bare layer names (``conv`` for ``tower/conv``).
    """
    paths: dict[str, None] = {}
    unmatched = []
    for pattern in patterns:
        found = _match(report.layers, pattern)
        if not found:
            unmatched.append(pattern)
        paths.update(dict.fromkeys(found))
    return sorted(paths), unmatched


def _match(layers: Sequence[LayerInfo], pattern: str) -> list[str]:
    """Paths first; a layer's bare name only when no path matches."""
    if any(c in pattern for c in "*?["):
        depth = pattern.count("/")  # like a shell: * does not cross a /
        by_path = [
            r.path
            for r in layers
            if r.path.count("/") == depth and fnmatch.fnmatchcase(r.path, pattern)
        ]
        return by_path or [r.path for r in layers if fnmatch.fnmatchcase(r.name, pattern)]
    exact = [r.path for r in layers if r.path == pattern]
    return exact or [r.path for r in layers if r.name == pattern]


def _fmt(paths: Iterable[str]) -> str:
    return "[" + ", ".join(paths) + "]"


# -- unknown calls ------------------------------------------------------------------


def _unknown_calls_failure(report: Report, why: str) -> str:
    """``unknown: this static report cannot tell how often layers run, so …: <note>``."""
    reason = report.model.calls_note or ""
    return (
        f"unknown: this {report.model.source!s} report cannot tell how often layers run, "
        f"so {why}: {reason}"
    )


# -- checking -------------------------------------------------------------------------


def check(report: Report, spec: Spec) -> list[Result]:
    """Check every expectation of ``spec`` against ``report``, in spec order."""
    results: list[Result] = []
    for key, value in spec.params.items():
        results.append(_check_param(report, key, value))
    for key, value in spec.cost.items():
        results.append(_check_cost(report, key, value))
    matched_groups: set[int] = set()
    for g in spec.groups:
        result, index = _check_group(report, g)
        results.append(result)
        if index is not None:
            matched_groups.add(index)
    if spec.exact_groups:
        extra = [grp for i, grp in enumerate(report.groups) if i not in matched_groups]
        problems = [
            f"unexpected {grp.kind.value} group {_fmt(grp.layers)} ({grp.params:,} params)"
            for grp in extra
        ]
        if report.model.calls_note is not None:
            problems.append(
                _unknown_calls_failure(
                    report,
                    "a layer or model called more than once (sharing its weights) is not seen",
                )
            )
        results.append(Result("no other sharing groups", "; ".join(problems) or None))
    for layers in spec.not_shared:
        results.append(_check_not_shared(report, layers))
    for kind in sorted(spec.forbid_findings):
        found = [f for f in report.findings if f.kind == kind]
        failure = "; ".join(f"{_fmt(f.layers)}: {f.message}" for f in found) or None
        results.append(Result(f"no {kind} findings", failure))
    return results


def _check_param(report: Report, key: str, expected: int) -> Result:
    bound, name = _BOUNDS.get(key, (None, key))
    found = getattr(report.params, name)
    op = {None: "==", "max": "<=", "min": ">="}[bound]
    text = f"params.{name} {op} {expected:,}"
    if found is None:  # a per-use count of a file that states no calls
        return Result(text, _unknown_calls_failure(report, f"params.{name} is unknown"))
    ok = {None: found == expected, "max": found <= expected, "min": found >= expected}[bound]
    return Result(text, None if ok else f"found {found:,}")


def _check_cost(report: Report, key: str, limit: int) -> Result:
    """One ``[cost]`` budget: ``max_macs``, ``max_bytes_unique`` or ``max_bytes_per_use``.

    A budget holds only when the cost is known: MACs with every layer counted,
    bytes with every dtype's width known. Unknown is a failure that says why.
    """
    cost = report.cost
    if key == "max_macs":
        text = f"cost.macs <= {limit:,}"
        if cost.macs is None and report.model.calls_note is not None:
            return Result(text, _unknown_calls_failure(report, "its MACs are unknown"))
        if cost.macs is not None and cost.macs > limit:
            bound = "at least " if cost.uncounted else ""
            return Result(text, f"found {bound}{cost.macs:,}")
        if cost.uncounted:
            layers = f"{cost.uncounted} layer{'s' if cost.uncounted != 1 else ''}"
            counted = "" if cost.macs is None else f"{cost.macs:,} counted, "
            return Result(text, f"unknown: {counted}{layers} not counted{_uncounted(report)}")
        if cost.macs is None:
            return Result(text, "unknown: no call's MACs are known (a weighttie.report/1 report?)")
        return Result(text, None)
    which = key.removeprefix("max_bytes_")
    found = getattr(cost.bytes, which)
    text = f"cost.bytes.{which} <= {limit:,}"
    if found is None and which == "per_use" and report.model.calls_note is not None:
        return Result(text, _unknown_calls_failure(report, "its per-use bytes are unknown"))
    if found is None:
        return Result(text, "unknown: a variable's dtype has no known width, or no cost recorded")
    return Result(text, None if found <= limit else f"found {found:,}")


def _uncounted(report: Report, shown: int = 3) -> str:
    """`` (e.g. 'lstm' (LSTM))``: graph calls of unknown MACs, innermost first."""
    parents = {row.parent for row in report.layers if row.nodes is not None}
    leaves = [
        row
        for row in report.layers
        if row.nodes is not None and row.macs is None and row.path not in parents
    ]
    if not leaves:
        return ""
    names = ", ".join(f"{row.path!r} ({row.class_name})" for row in leaves[:shown])
    more = f" and {len(leaves) - shown} more" if len(leaves) > shown else ""
    return f" (calls of unknown MACs: {names}{more}: no rule for the class, or a shape unknown)"


def _check_group(report: Report, expected: GroupSpec) -> tuple[Result, int | None]:
    name = f"{expected.kind.value} group {_fmt(expected.layers)}"
    paths, unmatched = match_layers(report, expected.layers)
    if unmatched:
        return Result(name, f"no layer matches {', '.join(map(repr, unmatched))}"), None
    for i, grp in enumerate(report.groups):
        if grp.kind is expected.kind and sorted(grp.layers) == paths:
            problems = []
            if expected.calls is not None and grp.calls != expected.calls:
                problems.append(
                    f"expected {expected.calls} calls; found "
                    + ("unknown" if grp.calls is None else str(grp.calls))
                )
            if expected.params is not None and grp.params != expected.params:
                problems.append(f"expected {expected.params:,} params; found {grp.params:,}")
            return Result(name, "; ".join(problems) or None), i
    near = [grp for grp in report.groups if set(grp.layers) & set(paths)]
    if near:
        found = "; ".join(f"{grp.kind.value} group {_fmt(grp.layers)}" for grp in near)
    elif report.model.calls_note is None:
        found = "those layers share no weights"
    elif expected.kind is GroupKind.TIED:  # ties are known without calls
        found = "no two of those layers hold the same variable"
    else:
        return Result(
            name, _unknown_calls_failure(report, f"a {expected.kind.value} group is not seen")
        ), None
    return Result(
        name, f"expected a {expected.kind.value} group of {_fmt(paths)}; found {found}"
    ), None


def _shared_variables(report: Report, paths: Iterable[str]) -> dict[str, set[str]]:
    """The variables of each layer's subtree."""
    result: dict[str, set[str]] = {}
    for path in paths:
        prefix = path + "/"
        result[path] = {
            v
            for r in report.layers
            if r.path == path or r.path.startswith(prefix)
            for v in r.variables
        }
    return result


def _check_not_shared(report: Report, patterns: tuple[str, ...]) -> Result:
    name = f"not shared {_fmt(patterns)}"
    paths, unmatched = match_layers(report, patterns)
    if unmatched:
        return Result(name, f"no layer matches {', '.join(map(repr, unmatched))}")
    problems = []
    for grp in report.groups:
        members = [p for p in paths if p in grp.layers]
        if members:
            problems.append(f"{_fmt(members)} in {grp.kind.value} group {_fmt(grp.layers)}")
    held = _shared_variables(report, paths)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            both = held[a] & held[b]
            if both and not (a.startswith(b + "/") or b.startswith(a + "/")):
                problems.append(f"{a} and {b} share {', '.join(sorted(both))}")
    if report.model.calls_note is not None and any(held.values()):  # weightless: nothing to share
        problems.append(
            _unknown_calls_failure(
                report,
                f"a layer of {_fmt(paths)} called more than once (sharing its weights) is not seen",
            )
        )
    return Result(name, "; ".join(problems) or None)


# -- snapshot -------------------------------------------------------------------------


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
            for k in _PARAM_KEYS
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


# -- diff ---------------------------------------------------------------------------

#: What a diff cannot compare when a report does not know its calls.
NOT_COMPARED = (
    "params.per_use",
    "params.duplicated",
    "shared-layer and shared-model groups",
    "group calls and duplicated counts",
)
_BY_CALLS = (GroupKind.SHARED_LAYER, GroupKind.SHARED_MODEL)
_GroupKey = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Diff:
    """How two reports' sharing differs.

    ``calls_unknown``: for report ``a`` and ``b``, why it cannot tell how often its
    layers run (None when it can). When either can not, :data:`NOT_COMPARED` was
    not compared, and the diff is not ``same``: it could not see everything.
    """

    added: tuple[SharingGroup, ...]
    removed: tuple[SharingGroup, ...]
    changed: tuple[tuple[SharingGroup, SharingGroup], ...]
    params: tuple[tuple[str, int, int], ...]  # (count, in a, in b)
    ties: tuple[tuple[str, str], ...]  # ("+"|"-", "source -> target")
    calls_unknown: tuple[str | None, str | None] = (None, None)

    @property
    def not_compared(self) -> tuple[str, ...]:
        """What was not compared: :data:`NOT_COMPARED` when either report's calls are unknown."""
        return NOT_COMPARED if self.calls_unknown != (None, None) else ()

    @property
    def differs(self) -> bool:
        """Some difference was seen (in what both reports know)."""
        return bool(self.added or self.removed or self.changed or self.params or self.ties)

    @property
    def same(self) -> bool:
        """No difference, and everything compared: unknown is never the same."""
        return not self.differs and not self.not_compared

    def to_dict(self) -> dict[str, Any]:
        def group(g: SharingGroup) -> dict[str, Any]:
            return {
                "kind": g.kind.value,
                "layers": list(g.layers),
                "params": g.params,
                "calls": g.calls,
                "duplicated": g.duplicated,
            }

        return {
            "schema": "weighttie.diff/1",
            "same": self.same,
            "groups": {
                "added": [group(g) for g in self.added],
                "removed": [group(g) for g in self.removed],
                "changed": [{"a": group(a), "b": group(b)} for a, b in self.changed],
            },
            "params": [{"count": k, "a": a, "b": b} for k, a, b in self.params],
            "ties": [{"change": c, "tie": t} for c, t in self.ties],
            "not_compared": list(self.not_compared),
            "calls_unknown": {"a": self.calls_unknown[0], "b": self.calls_unknown[1]},
        }


def diff(a: Report, b: Report) -> Diff:
    """Compare two reports: groups (matched by kind and layers), ties and counts.

    Where either report cannot tell how often layers run (``ModelInfo.calls_note``),
    what depends on calls is not compared (:data:`NOT_COMPARED`): the per-use
    counts, the groups of a layer or model called more than once, and group calls.
    Ties (distinct layers holding one variable) are compared either way.
    """
    unknown = (a.model.calls_note, b.model.calls_note)
    blind = unknown != (None, None)

    def comparable(groups: Iterable[SharingGroup]) -> dict[_GroupKey, SharingGroup]:
        """Groups by kind and layers; those seen only through calls when both know them."""
        return {(g.kind.value, g.layers): g for g in groups if not (blind and g.kind in _BY_CALLS)}

    a_groups, b_groups = comparable(a.groups), comparable(b.groups)
    added = tuple(b_groups[k] for k in sorted(set(b_groups) - set(a_groups)))
    removed = tuple(a_groups[k] for k in sorted(set(a_groups) - set(b_groups)))
    changed = tuple(
        (a_groups[k], b_groups[k])
        for k in sorted(set(a_groups) & set(b_groups))
        if (a_groups[k].params, a_groups[k].calls) != (b_groups[k].params, b_groups[k].calls)
    )
    counts = tuple(  # a count one report does not know (None) is not compared
        (k, getattr(a.params, k), getattr(b.params, k))
        for k in _PARAM_KEYS
        if None not in (getattr(a.params, k), getattr(b.params, k))
        and getattr(a.params, k) != getattr(b.params, k)
    )
    a_ties = {f"{t.source} -> {t.target}" for t in a.ties if t.bound}
    b_ties = {f"{t.source} -> {t.target}" for t in b.ties if t.bound}
    ties = tuple(
        [("-", t) for t in sorted(a_ties - b_ties)] + [("+", t) for t in sorted(b_ties - a_ties)]
    )
    return Diff(
        added=added,
        removed=removed,
        changed=changed,
        params=counts,
        ties=ties,
        calls_unknown=unknown,
    )
