"""The JSON contract of a Report: ``weighttie.report/3`` written and read back.

``Report.to_json()`` / ``Report.from_json()`` call these; docs/json-contract.md is
the reference. Documents of ``weighttie.report/2`` (no ``read_by``, ``parent``,
variable ``name`` nor ``calls_note``: derived on reading) and ``/1`` (no cost:
unknown) still read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from weighttie.collector import collector_paused
from weighttie.errors import ReportFormatError
from weighttie.escape import printable_json
from weighttie.files import read_limited
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import (
    SCHEMA,
    SCHEMA_1,
    SCHEMA_2,
    UNKNOWN_COST,
    UNKNOWN_LAYER_BYTES,
    Bytes,
    CallNode,
    Cost,
    Finding,
    FindingKind,
    GroupKind,
    InboundRef,
    LayerBytes,
    LayerInfo,
    LayerParams,
    ModelInfo,
    Params,
    Report,
    Shape,
    SharingGroup,
    Source,
    Tie,
    VariableInfo,
)

__all__ = [
    "read_report_json",
    "report_from_dict",
    "report_from_json",
    "report_to_dict",
    "report_to_json",
]


def report_to_dict(report: Report) -> dict[str, Any]:
    """Return the report as plain JSON-ready data (``weighttie.report/3``)."""
    return {
        "schema": SCHEMA,
        "model": {
            "name": report.model.name,
            "class": report.model.class_name,
            "source": report.model.source,
            "file": report.model.file,
            "keras_version": report.model.keras_version,
            "notes": list(report.model.notes),
            "calls_note": report.model.calls_note,
        },
        "params": {
            "unique": report.params.unique,
            "per_use": report.params.per_use,
            "duplicated": report.params.duplicated,
            "trainable_unique": report.params.trainable_unique,
            "non_trainable_unique": report.params.non_trainable_unique,
        },
        "cost": {
            "bytes": _bytes_to_dict(report.cost.bytes),
            "macs": report.cost.macs,
            "uncounted": report.cost.uncounted,
        },
        "layers": [_layer_to_dict(row) for row in report.layers],
        "variables": [
            {
                "path": v.path,
                "name": v.name,
                "shape": list(v.shape),
                "dtype": v.dtype,
                "trainable": v.trainable,
                "size": v.size,
                "layers": list(v.layers),
                "read_by": list(v.read_by),
                "uses": v.uses,
                "bytes": v.bytes,
            }
            for v in report.variables
        ],
        "groups": [
            {
                "kind": g.kind.value,
                "layers": list(g.layers),
                "variables": list(g.variables),
                "params": g.params,
                "calls": g.calls,
                "duplicated": g.duplicated,
                "bytes": _bytes_to_dict(g.bytes),
            }
            for g in report.groups
        ],
        "ties": [
            {
                "source": t.source,
                "target": t.target,
                "variables": list(t.variables),
                "bound": t.bound,
            }
            for t in report.ties
        ],
        "findings": [
            {
                "kind": f.kind,
                "layers": list(f.layers),
                "params": f.params,
                "message": f.message,
            }
            for f in report.findings
        ],
    }


@collector_paused()
def report_to_json(report: Report, *, compact: bool = False) -> str:
    """Return the report as JSON text; the same report always gives the same text.

    The layout puts each top-level key, and each element of a top-level list
    (a layer, a variable, a group …), on a line of its own: readable, friendly
    to line-based diffs, and written by the C encoder (``indent`` would be
    several times slower on big models). ``compact`` gives one line.

    Letters of any script are written as they are; a control, format or
    separator character (and a lone surrogate) in a name is written as a ``\\u``
    escape, so the text is safe to print and decodes to the same names.
    """
    doc = report_to_dict(report)
    if compact:
        return printable_json(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) + "\n"
    dump = json.JSONEncoder(ensure_ascii=False).encode
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {dump(item)}" for item in value)
            lines.append(f"  {dump(key)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {dump(key)}: {dump(value)}")
    return printable_json("{\n" + ",\n".join(lines) + "\n}\n")


def report_from_dict(doc: Mapping[str, Any]) -> Report:
    """Build a report from :func:`report_to_dict` output.

    A ``weighttie.report/1`` document (written before cost was recorded) reads
    too, with every cost field unknown (None).

    Raises:
        ReportFormatError: the document is not a ``weighttie.report/3`` (or /2, /1) report.
    """
    if not isinstance(doc, Mapping):
        raise ReportFormatError(
            f"expected a JSON object with schema {SCHEMA!r}; received: {type(doc).__name__}"
        )
    schema = doc.get("schema")
    if schema not in (SCHEMA, SCHEMA_2, SCHEMA_1):
        raise ReportFormatError(
            f"expected a report with schema {SCHEMA!r} (or {SCHEMA_2!r}, {SCHEMA_1!r}); "
            f"received: schema={schema!r}"
        )
    try:
        return _report_from_dict(doc, with_cost=schema != SCHEMA_1)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportFormatError(
            f"report document does not follow {schema}: {type(exc).__name__}: {exc}"
        ) from None


def report_from_json(text: str | bytes) -> Report:
    """Build a report from :func:`report_to_json` output.

    Raises:
        ReportFormatError: the text is not JSON (or not UTF-8), nests deeper than
            the parser follows, or is not a ``weighttie.report/3`` (or /2, /1) report.
    """
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ReportFormatError(
            f"report nests arrays or objects too deeply to be a {SCHEMA} report "
            "(which nests 7 levels)"
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ReportFormatError(f"report is not valid JSON: {exc}") from None
    return report_from_dict(doc)


def read_report_json(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Report:
    """Read a JSON report file (``weighttie report --format json``) back into a Report.

    At most ``limits.report_bytes`` are read; a FIFO, a device or a directory is
    refused before it is opened.

    Example:
        >>> read_report_json("report.json").params.unique  # doctest: +SKIP
        497

    Raises:
        MissingFileError: nothing exists at ``path``.
        FileFormatError: ``path`` is not a regular file.
        LimitError: the file holds more than ``limits.report_bytes`` (limit ``report_bytes``).
        ReportFormatError: the file is not a ``weighttie.report/3`` (or /2, /1) JSON report.
    """
    data = read_limited(
        path, limit=limits.report_bytes, limit_name="report_bytes", what="JSON report"
    )
    try:
        return report_from_json(data)
    except ReportFormatError as exc:
        raise ReportFormatError(f"{str(path)!r}: {exc}") from None


def _shape_to_json(shape: Shape | None) -> list[int | None] | None:
    return None if shape is None else list(shape)


def _shape_from_json(value: Any) -> Shape | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise TypeError(f"a shape must be a list, got {type(value).__name__}")
    for d in value:
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise TypeError(f"a shape dimension must be an integer or null, got {d!r}")
    return tuple(value)


def _bytes_to_dict(b: Bytes) -> dict[str, int | None]:
    return {"unique": b.unique, "per_use": b.per_use}


def _layer_to_dict(row: LayerInfo) -> dict[str, Any]:
    return {
        "name": row.name,
        "path": row.path,
        "parent": row.parent,
        "order": row.order,
        "class": row.class_name,
        "uses": row.uses,
        "params": {
            "held": row.params.held,
            "unique": row.params.unique,
            "per_use": row.params.per_use,
            "inside": row.params.inside,
        },
        "bytes": {
            "held": row.bytes.held,
            "unique": row.bytes.unique,
            "per_use": row.bytes.per_use,
        },
        "macs": row.macs,
        "variables": list(row.variables),
        "nodes": None
        if row.nodes is None
        else [
            {
                "index": n.index,
                "inbound": [[r.layer, r.node_index, r.tensor_index] for r in n.inbound],
                "input_shapes": [_shape_to_json(s) for s in n.input_shapes],
                "output_shapes": [_shape_to_json(s) for s in n.output_shapes],
                "macs": n.macs,
            }
            for n in row.nodes
        ],
    }


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _optional_int(value: Any) -> int | None:
    """An integer, or None: a count the source could not tell."""
    return None if value is None else _int(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _bytes_from_dict(doc: Mapping[str, Any]) -> Bytes:
    return Bytes(unique=_optional_int(doc["unique"]), per_use=_optional_int(doc["per_use"]))


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return tuple(_str(v) for v in value)


def _node_from_dict(doc: Mapping[str, Any], with_cost: bool) -> CallNode:
    inbound = []
    for ref in doc["inbound"]:
        layer, node_index, tensor_index = ref
        inbound.append(InboundRef(_str(layer), _int(node_index), _int(tensor_index)))
    return CallNode(
        index=_int(doc["index"]),
        inbound=tuple(inbound),
        input_shapes=tuple(_shape_from_json(s) for s in doc["input_shapes"]),
        output_shapes=tuple(_shape_from_json(s) for s in doc["output_shapes"]),
        macs=_optional_int(doc["macs"]) if with_cost else None,
    )


def _layer_bytes_from_dict(doc: Mapping[str, Any]) -> LayerBytes:
    return LayerBytes(
        held=_optional_int(doc["held"]),
        unique=_optional_int(doc["unique"]),
        per_use=_optional_int(doc["per_use"]),
    )


def _with_parents(layers: tuple[LayerInfo, ...]) -> tuple[LayerInfo, ...]:
    """Rows of a document older than ``parent``, given one: the path without the name, or
    the nearest prefix that is a row (a tf_keras name may hold "/")."""
    paths = {row.path for row in layers}

    def parent(row: LayerInfo) -> str | None:
        if row.path == "":
            return None
        suffix = "/" + row.name
        candidate = (
            row.path[: -len(suffix)]
            if row.name and row.path.endswith(suffix)
            else row.path.rpartition("/")[0]
        )
        while candidate and candidate not in paths:
            candidate = candidate.rpartition("/")[0]
        return candidate

    return tuple(replace(row, parent=parent(row)) for row in layers)


def _variable_name(path: str) -> str:
    """A variable's name in a document older than ``name``: its path's last part."""
    name = path.rpartition("/")[2]
    stem, mark, number = name.rpartition("#")
    return stem if mark and number.isdigit() else name


def _calls_note(notes: tuple[str, ...], unknown: bool) -> str | None:
    """A document older than ``calls_note``: the note on calls, where counts are unknown."""
    if not unknown:
        return None
    return next((note for note in notes if "call" in note), "how often some layers run is unknown")


def _running(variable: Mapping[str, Any], uses: Mapping[str, int | None]) -> tuple[str, ...]:
    """The readers of a variable in a document older than ``read_by``: its holders that run."""
    return tuple(p for p in _strs(variable["layers"]) if uses.get(p) != 0)


def _report_from_dict(doc: Mapping[str, Any], *, with_cost: bool = True) -> Report:
    """A report from its JSON document; a /1 document (``with_cost`` false) has no cost."""
    layers = _layers_from(doc["layers"], with_cost)
    uses = {row.path: row.uses for row in layers}
    return Report(
        model=_model_from(doc["model"], doc["params"]["per_use"] is None),
        params=_params_from(doc["params"]),
        layers=layers,
        variables=tuple(_variable_from(v, uses, with_cost) for v in doc["variables"]),
        groups=tuple(_group_from(g, with_cost) for g in doc["groups"]),
        ties=tuple(_tie_from(t) for t in doc.get("ties", [])),
        findings=tuple(_finding_from(f) for f in doc.get("findings", [])),
        cost=_cost_from(doc["cost"]) if with_cost else UNKNOWN_COST,
    )


def _model_from(m: Mapping[str, Any], unknown_uses: bool) -> ModelInfo:
    notes = _strs(m.get("notes", []))
    return ModelInfo(
        name=_str(m["name"]),
        class_name=_str(m["class"]),
        source=Source(m["source"]),
        file=_optional_str(m.get("file")),
        keras_version=_optional_str(m.get("keras_version")),
        notes=notes,
        calls_note=_optional_str(m["calls_note"])
        if "calls_note" in m
        else _calls_note(notes, unknown_uses),
    )


def _params_from(p: Mapping[str, Any]) -> Params:
    return Params(
        unique=_int(p["unique"]),
        per_use=_optional_int(p["per_use"]),
        duplicated=_optional_int(p["duplicated"]),
        trainable_unique=_int(p["trainable_unique"]),
        non_trainable_unique=_int(p["non_trainable_unique"]),
    )


def _cost_from(c: Mapping[str, Any]) -> Cost:
    return Cost(
        bytes=_bytes_from_dict(c["bytes"]),
        macs=_optional_int(c["macs"]),
        uncounted=_int(c["uncounted"]),
    )


def _layers_from(rows: Any, with_cost: bool) -> tuple[LayerInfo, ...]:
    layers = tuple(
        LayerInfo(
            name=_str(row["name"]),
            path=_str(row["path"]),
            class_name=_str(row["class"]),
            uses=_optional_int(row["uses"]),
            params=LayerParams(
                held=_int(row["params"]["held"]),
                unique=_int(row["params"]["unique"]),
                per_use=_optional_int(row["params"]["per_use"]),
                inside=_int(row["params"].get("inside", row["params"]["held"])),
            ),
            variables=_strs(row["variables"]),
            nodes=None
            if row["nodes"] is None
            else tuple(_node_from_dict(n, with_cost) for n in row["nodes"]),
            order=_int(row.get("order", i)),
            bytes=_layer_bytes_from_dict(row["bytes"]) if with_cost else UNKNOWN_LAYER_BYTES,
            macs=_optional_int(row["macs"]) if with_cost else None,
            parent=_optional_str(row["parent"]) if "parent" in row else None,
        )
        for i, row in enumerate(rows)
    )
    if any("parent" not in row for row in rows):  # before /3: from the paths
        layers = _with_parents(layers)
    return layers


def _variable_from(
    v: Mapping[str, Any], uses: Mapping[str, int | None], with_cost: bool
) -> VariableInfo:
    return VariableInfo(
        path=_str(v["path"]),
        shape=tuple(_int(d) for d in v["shape"]),
        dtype=_str(v["dtype"]),
        trainable=bool(v["trainable"]),
        size=_int(v["size"]),
        layers=_strs(v["layers"]),
        uses=_optional_int(v["uses"]),
        bytes=_optional_int(v["bytes"]) if with_cost else None,
        read_by=_strs(v["read_by"]) if "read_by" in v else _running(v, uses),
        name=_str(v["name"]) if "name" in v else _variable_name(_str(v["path"])),
    )


def _group_from(g: Mapping[str, Any], with_cost: bool) -> SharingGroup:
    return SharingGroup(
        kind=GroupKind(g["kind"]),
        layers=_strs(g["layers"]),
        variables=_strs(g["variables"]),
        params=_int(g["params"]),
        calls=_optional_int(g["calls"]),
        duplicated=_optional_int(g["duplicated"]),
        bytes=_bytes_from_dict(g["bytes"]) if with_cost else Bytes(None, None),
    )


def _tie_from(t: Mapping[str, Any]) -> Tie:
    return Tie(
        source=_str(t["source"]),
        target=_str(t["target"]),
        variables=_strs(t["variables"]),
        bound=bool(t["bound"]),
    )


def _finding_from(f: Mapping[str, Any]) -> Finding:
    return Finding(
        kind=FindingKind(f["kind"]),
        layers=_strs(f["layers"]),
        params=_int(f["params"]),
        message=_str(f["message"]),
    )
