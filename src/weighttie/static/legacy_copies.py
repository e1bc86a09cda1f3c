"""Variables a legacy ``.h5`` file stores more than once: one layer object at two places.

Keras 2 (tf.keras, tf_keras) and Keras 3's legacy format write every layer's weights
under that layer's group of ``model_weights``, so a layer object that sits at two
places (a cell given to two ``RNN`` layers, a ``Dense`` wrapped by ``TimeDistributed``
and called directly, a layer inside two nested models, a nested model at two places, a
``Bidirectional``'s backward layer also called directly) has its variables written once
per place, as equal copies. Unlike a ``.keras`` file
(:mod:`~weighttie.static.reached_again`), nothing is missing at the second place. The
file says which copies are one variable in two ways:

* **names**: a stored weight name is the variable's name, which starts with the name
  scope of the layer that created it. ``model_weights/r2`` lists ``r1/c/kernel``
  (``r1``'s cell made it), ``model_weights/proj`` lists ``td/kernel`` (made inside
  ``td``). A name listed under several groups and owned (started by the group's layer,
  or by a layer inside a nested model's group) by at most one of them is one variable;
* **Keras 2's** ``shared_object_id``: tf.keras and tf_keras serialize a layer object
  at each place and mark each place after the first with the object's id (a layer
  inside two nested models, whose weights carry its own name at both places, is known
  this way). A layer entry without the mark is a layer object of its own: two towers
  built with the same inner names, a tower copied with its weights.

Copies are merged only where shapes, dtypes and values are equal. Where neither names
nor marks speak (Keras 3 names a layer inside two nested models as it names two layers
of one name; Keras 3.0 - 3.2 write bare names; Keras 2 before 2.12 is not known to
mark every place), equal copies of a layer of one name and class are one layer at two
places or a copy of it: the reader counts them as stored, their uses are unknown, a
note says so, and the facts name their rows (``ModelFacts.unclear_copies``) so that
the build makes no finding of them.

This module imports neither Keras nor any backend.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from weighttie.facts import ROOT, RawLayer
from weighttie.layers import UNKNOWN_CLASS, cell_name, given_sublayers
from weighttie.static.group_names import sublayer_name
from weighttie.static.rows import Reader
from weighttie.static.values import Values

__all__ = [
    "Merged",
    "StoredCopies",
    "alias_owner",
    "find_copies",
    "merge_copies",
    "placed_name",
    "sublayer_aliases",
]

#: (dataset key, shape, dtype, stored weight name): one weight a legacy group lists.
Weight = tuple[str, tuple[int, ...], str, str]

#: Keras 2 releases seen to mark every place of a layer object after the first (the
#: release fixtures: tf.keras 2.12 - 2.15, tf_keras 2.16 - 2.21). An unmarked layer
#: entry of their files is a layer object of its own.
MARKS_EVERY_PLACE = (2, 12)

#: A tensor of at most this many distinct elements, each repeated at least ``_REPEATS``
#: times on average, is what a deterministic initializer makes (zeros, ones): equal
#: copies of it say nothing about identity.
_PATTERN_VALUES = 16
_REPEATS = 4

#: Rows of one name, class and stored names compared pairwise, at most (a bound on the
#: values read: such rows are the places of one layer, or copies, a few at most).
_BUCKET = 8


@dataclass
class StoredCopies:
    """What the stored names say, before any row is built (:func:`find_copies`)."""

    #: Stored name of each weight, by dataset key.
    names: dict[str, str] = field(default_factory=dict)
    #: Weights whose name another layer's scope starts, listed under another group too:
    #: their place below the layer is read from the name (:func:`placed_name`).
    foreign: set[str] = field(default_factory=set)
    #: A copy's dataset key → the key of the copy taken as the variable.
    copy_of: dict[str, str] = field(default_factory=dict)
    #: Foreign weights whose name several groups own: which one they copy is unknown.
    unsure: set[str] = field(default_factory=set)
    #: Written by Keras 2 (tf.keras, tf_keras), whose Bidirectional renames its layers.
    keras2: bool = False
    #: Nested models holding weights no layer of theirs is named for, and built layers
    #: of nested models listing no weights (filled as rows are built).
    unplaced: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    #: Rows that read variables listed elsewhere: (path, its model's path, names of the
    #: layers it keeps).
    unknown_reads: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)


def find_copies(
    groups: Iterable[tuple[frozenset[str], list[Weight]]], keras_version: str | None
) -> StoredCopies:
    """Which stored weights are copies of one variable, by their names.

    ``groups``: for each group of ``model_weights`` (a layer of the model), the names
    that own a weight in it (the layer's name; a nested model's, and its layers') and
    the weights it lists. A name listed under several groups is one variable when at
    most one group owns it: the owner's copy (else the first) is taken as the
    variable, the others are its copies. A bare name (Keras 3.0 - 3.2) says nothing.
    """
    stored = StoredCopies(keras2=bool(_keras2_release(keras_version)))
    found: dict[str, list[tuple[int, str, bool]]] = defaultdict(list)
    for index, (owned, weights) in enumerate(groups):
        for key, _, _, name in weights:
            stored.names[key] = name
            parts = _bare(name).split("/")
            if len(parts) > 1:
                found[name].append((index, key, _owned(parts, owned)))
    for places in found.values():
        if len({index for index, _, _ in places}) < 2:
            continue
        owners = [key for _, key, own in places if own]
        strangers = [key for _, key, own in places if not own]
        stored.foreign.update(strangers)
        if len(owners) > 1:  # own at several places: Keras 2's marks or values decide
            stored.unsure.update(strangers)
            continue
        original = owners[0] if owners else places[0][1]
        for _, key, _ in places:
            if key != original:
                stored.copy_of[key] = original
    return stored


def _bare(name: str) -> str:
    return name.split(":", 1)[0]


def _owned(parts: list[str], owned: frozenset[str]) -> bool:
    return any("/".join(parts[:end]) in owned for end in range(1, len(parts)))


def sublayer_aliases(
    class_name: str, config: dict[str, Any], keras2: bool = False
) -> dict[str, str]:
    """The names under which a Keras layer's config shows its sublayers, → the sublayer's
    name: a generic RNN's cell and a wrapper's layer (given by the user), a recurrent
    layer's own cell, a Bidirectional's forward and backward layers. Keras 2 renames the
    backward layer a Bidirectional is given ``backward_<name>`` and keeps ``<name>`` in
    its config (``keras2``): ``<name>`` is an alias of ``backward_<name>``."""
    aliases = {name: name for _, name, _, _ in given_sublayers(class_name, config)}
    cell = cell_name(class_name)
    if cell is not None:
        aliases[cell] = cell
    if class_name == "Bidirectional":
        for key in ("forward_layer", "backward_layer"):
            name = sublayer_name(class_name, config, key)
            aliases[name] = name
        backward = sublayer_name(class_name, config, "backward_layer")
        if keras2 and isinstance(config.get("backward_layer"), dict):
            aliases[backward] = "backward_" + backward
        elif backward.startswith("backward_"):
            aliases.setdefault(backward.removeprefix("backward_"), backward)
    return aliases


def placed_name(name: str, layer: str, aliases: Mapping[str, str]) -> str:
    """A weight's stored ``name`` that another layer's scope starts, as a name below
    ``layer``: from the first part naming the layer itself or one of its sublayers
    (``aliases``), else all parts after the scope.

    Example:
        >>> placed_name("r1/c/kernel:0", "r2", {"c": "c"})
        'r2/c/kernel'
        >>> placed_name("bi/back/gru_cell/kernel", "back", {"gru_cell": "gru_cell"})
        'back/gru_cell/kernel'
        >>> placed_name("td/kernel:0", "proj", {})
        'proj/kernel'
    """
    parts = _bare(name).split("/")
    rest = parts[1:]
    for index, part in enumerate(parts[:-1]):
        if part == layer:
            rest = parts[index + 1 :]
            break
        if part in aliases:
            rest = [aliases[part], *parts[index + 1 :]]
            break
    return "/".join([layer, *rest])


def alias_owner(
    parts: list[str], owners: Mapping[str, str], aliases: Mapping[str, str]
) -> str | None:
    """The layer of a nested model's level holding a foreign weight no name there owns
    (a cell another RNN made, given to an RNN of the nested model): the first part after
    the scope that names a layer of the level or a sublayer of one."""
    for part in parts[1:-1]:
        owner = owners.get(part) or aliases.get(part)
        if owner is not None:
            return owner
    return None


@dataclass(frozen=True)
class Merged:
    """What :func:`merge_copies` found: notes, and rows whose equal copies may be one
    variable or separate ones (their uses are unknown; the reader states them as
    ``ModelFacts.unclear_copies``, and no finding names them)."""

    notes: tuple[str, ...]
    unclear: frozenset[str]


def merge_copies(
    reader: Reader, stored: StoredCopies, values: Values, keras_version: str | None
) -> Merged:
    """Make each variable the file stores at several places one variable, and each layer
    object at several places one identity; say where the file cannot tell.

    Runs after every row is built (``reader.rows``, pre-order). Values are compared
    in full (streamed) before anything is merged, findings on or off.
    """
    rows = {row.path: row for row in reader.rows}
    holder = {key: row.path for row in reader.rows for key in row.variables}
    pairs: dict[Hashable, Hashable] = {
        c: o for c, o in stored.copy_of.items() if c in holder and o in holder
    }
    differing: list[tuple[Hashable, Hashable]] = [
        (c, o) for c, o in pairs.items() if not _same_variable(reader, values, c, o)
    ]
    for copy, _ in differing:
        del pairs[copy]
    places: dict[str, str] = {}  # a place's row → the row of the same object's first place
    for later, first in _marked(reader, rows, {holder[c] for c in stored.copy_of if c in holder}):
        matched = _same_subtree(later, first, rows)
        if matched is None:
            continue
        marked = [
            (a, b)
            for row2, row1 in matched
            for a, b in zip(rows[row2].variables, rows[row1].variables, strict=True)
        ]
        unequal = [(a, b) for a, b in marked if not _same_variable(reader, values, a, b)]
        if unequal:  # one object's copies hold one value: these are not one object's
            differing += unequal
            continue
        places.update(matched)
        pairs.update(marked)
    places.update(_places_by_names(reader, rows, holder, pairs, places))

    def identity(path: str) -> Hashable:
        seen = set()
        while path in places and path not in seen:
            seen.add(path)
            path = places[path]
        return rows[path].identity

    merged = [
        dataclasses.replace(
            row,
            identity=identity(row.path),
            variables=tuple(dict.fromkeys(_root(pairs, k) for k in row.variables)),
            reads=None if row.reads is None else tuple((_root(pairs, k), n) for k, n in row.reads),
            class_name=rows[places[row.path]].class_name
            if row.path in places and row.class_name == UNKNOWN_CLASS
            else row.class_name,
        )
        for row in reader.rows
    ]
    for copy in pairs:
        del reader.variables[copy]
    reader.rows = merged
    reader.row_index = {row.path: i for i, row in enumerate(merged)}

    marks_every_place = _keras2_release(keras_version) >= MARKS_EVERY_PLACE
    unclear, extra = _unclear(reader, stored, values, marks_every_place)
    if unclear:
        reader.rows = [
            dataclasses.replace(row, reads=tuple((k, None) for k in row.variables))
            if row.path in unclear
            else row
            for row in reader.rows
        ]
    notes = _notes(
        places, pairs, rows, holder, unclear, extra, differing, stored.unplaced, stored.hidden
    )
    return Merged(notes=notes, unclear=frozenset(unclear))


def _root(pairs: Mapping[Any, Any], key: Any) -> Any:
    """The variable a copy is a copy of, through copies of copies."""
    seen = set()
    while key in pairs and key not in seen:
        seen.add(key)
        key = pairs[key]
    return key


def _keras2_release(version: str | None) -> tuple[int, ...]:
    """``(2, minor)`` of a Keras 2 writer's version; ``()`` for any other writer."""
    parts = (version or "").split(".")
    if len(parts) < 2 or parts[0] != "2" or not parts[1].isdigit():
        return ()
    return (2, int(parts[1]))


def _marked(reader: Reader, rows: dict[str, RawLayer], named: set[str]) -> list[tuple[str, str]]:
    """(later place, first place) of each layer entry Keras 2 marked with a
    ``shared_object_id``: the first place is the earlier entry with the same mark, else
    the one earlier row of the same name, class and config. Places the names already
    pair (``named``) are left to them."""
    result = []
    earlier: list[RawLayer] = []
    for row in reader.rows:
        entry = reader.entries.get(row.path)
        mark = entry.get("shared_object_id") if isinstance(entry, dict) else None
        if mark is not None and row.path not in named:
            first = [r for r in earlier if _mark(reader, r.path) == mark]
            if not first:
                first = [r for r in earlier if _same_layer(reader, r, row)]
            first = [r for r in first if not _related(r.path, row.path)]
            if len(first) == 1 or (first and _mark(reader, first[0].path) == mark):
                result.append((row.path, first[0].path))
        earlier.append(row)
    return result


def _mark(reader: Reader, path: str) -> Any:
    entry = reader.entries.get(path)
    return entry.get("shared_object_id") if isinstance(entry, dict) else None


def _same_layer(reader: Reader, a: RawLayer, b: RawLayer) -> bool:
    if (a.name, a.class_name) != (b.name, b.class_name):
        return False
    config_a = (reader.entries.get(a.path) or {}).get("config")
    config_b = (reader.entries.get(b.path) or {}).get("config")
    return bool(_unmarked(config_a) == _unmarked(config_b))


def _unmarked(value: Any) -> Any:
    """A config without Keras 2's ``shared_object_id`` marks, to compare two places."""
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _related(a: str, b: str) -> bool:
    """Whether one path is the other or below it."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/") or ROOT in (a, b)


def _same_subtree(
    later: str, first: str, rows: dict[str, RawLayer]
) -> list[tuple[str, str]] | None:
    """Each row at or below ``later`` with the row at the same place below ``first``;
    None where the two do not match (class, variable names, shapes)."""
    matched = []
    for path, row in rows.items():
        if path != later and not path.startswith(later + "/"):
            continue
        other = rows.get(first + path[len(later) :])
        if other is None or other.class_name != row.class_name:
            return None
        if len(other.variables) != len(row.variables):
            return None
        matched.append((path, other.path))
    return matched


def _same_variable(reader: Reader, values: Values, copy: Hashable, original: Hashable) -> bool:
    """Whether two stored copies are one variable's: name, shape, dtype and bytes."""
    a, b = reader.variables[copy], reader.variables[original]
    if (a.name, a.shape, a.dtype) != (b.name, b.shape, b.dtype):
        return False
    return values.equal(str(copy), str(original))


def _places_by_names(
    reader: Reader,
    rows: dict[str, RawLayer],
    holder: dict[Hashable, str],
    pairs: dict[Any, Any],
    places: dict[str, str],
) -> dict[str, str]:
    """Rows whose every variable is a copy of another row's, of the same name and class:
    one layer object at two places; and, upwards, their parents of one name and class
    holding nothing else (a Bidirectional's backward GRU, whose cell holds the variables).
    Distinct layers sharing some variables (a head holding an embedding's matrix) stay
    distinct: they are tied."""
    found: dict[str, str] = {}
    for row in reader.rows:
        if row.path in places or not row.variables:
            continue
        if not all(k in pairs for k in row.variables):
            continue
        firsts = {holder[_root(pairs, k)] for k in row.variables}
        if len(firsts) != 1:
            continue
        other = rows[firsts.pop()]
        if other.name != row.name or row.class_name not in (other.class_name, UNKNOWN_CLASS):
            continue
        if len(other.variables) != len(row.variables):
            continue
        found[row.path] = other.path
        later, first = row, other
        while later.parent not in (None, ROOT) and first.parent not in (None, ROOT):
            later, first = rows[str(later.parent)], rows[str(first.parent)]
            if later.is_model or first.is_model or later.variables or first.variables:
                break
            if (later.name, later.class_name) != (first.name, first.class_name):
                break
            if _related(later.path, first.path):
                break
            found[later.path] = first.path
    return found


def _unclear(
    reader: Reader, stored: StoredCopies, values: Values, marks_every_place: bool
) -> tuple[set[str], int]:
    """Rows holding equal copies the file cannot tell apart from one variable, and the
    parameters they would count less if they were one.

    Rows of one name and class, whose variables have the same names, shapes, dtypes and
    stored names and equal values, one of them at least not a pattern. In a Keras 2 file
    of a release that marks every place, only sublayers of custom layers (whose configs
    hold them unmarked) can be such rows: an unmarked entry is a layer of its own; and
    rows holding a foreign weight whose name several groups own."""
    unclear: set[str] = set()
    extra = 0
    for row in reader.rows:
        if any(k in stored.unsure for k in row.variables):
            unclear.add(row.path)
            extra += sum(_size(reader.variables[k].shape) for k in row.variables)
    buckets: dict[Hashable, list[RawLayer]] = defaultdict(list)
    for row in reader.rows:
        if not row.variables or row.path in unclear:
            continue
        if marks_every_place and row.runs is not None:  # a layer of a graph, or Keras's
            continue  # own sublayer: an unmarked entry is a layer object of its own
        specs = tuple(
            (v.name, v.shape, v.dtype, stored.names.get(str(k)))
            for k in row.variables
            for v in (reader.variables[k],)
        )
        buckets[(row.name, specs)].append(row)
    for bucket in buckets.values():
        for i, first in enumerate(bucket[:_BUCKET]):
            for row in bucket[i + 1 : _BUCKET]:
                if row.identity == first.identity or row.path in unclear:
                    continue
                if UNKNOWN_CLASS not in (row.class_name, first.class_name) and (
                    row.class_name != first.class_name
                ):
                    continue
                keys = list(zip(row.variables, first.variables, strict=True))
                if not all(values.equal(str(a), str(b)) for a, b in keys):
                    continue
                if all(_patterned(values, str(b), reader.variables[b].dtype) for _, b in keys):
                    continue
                unclear.update((row.path, first.path))
                extra += sum(_size(reader.variables[k].shape) for k in row.variables)
    return unclear, extra


def _size(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def _patterned(values: Values, key: str, dtype: str) -> bool:
    """Whether a tensor has few distinct elements, each repeated (zeros, ones, a constant
    block): what a deterministic initializer makes; read until that is ruled out."""
    import numpy as np

    try:
        width = np.dtype(dtype).itemsize
    except TypeError:  # a dtype NumPy does not know (Keras's bfloat16): 2 bytes or 1
        width = 2 if "16" in dtype else 1
    distinct: set[bytes] = set()
    seen = 0
    for chunk in values.chunks(key):
        elements = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, width)
        seen += len(elements)
        distinct.update(bytes(e) for e in np.unique(elements, axis=0)[: _PATTERN_VALUES + 1])
        if len(distinct) > _PATTERN_VALUES:
            return False
    return len(distinct) <= 1 or len(distinct) * _REPEATS <= seen


def _notes(
    places: dict[str, str],
    pairs: dict[Any, Any],
    rows: dict[str, RawLayer],
    holder: dict[Hashable, str],
    unclear: set[str],
    extra: int,
    differing: list[tuple[Any, Any]],
    unplaced: list[str],
    hidden: list[str],
) -> tuple[str, ...]:
    notes = []
    tops = [(r2, r1) for r2, r1 in sorted(places.items()) if rows[r2].parent not in places]
    shown = [f"{r2!r} is {r1!r}" for r2, r1 in tops]
    tied = sorted({(holder[c], holder[o]) for c, o in pairs.items() if holder[c] not in places})
    shown += [f"{r2!r} holds variables of {r1!r}" for r2, r1 in tied]
    if shown:
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        notes.append(
            "a legacy .h5 file stores a variable under every layer that holds it: "
            f"{', '.join(shown[:3])}{more}, as the stored weight names (or Keras 2's "
            "shared_object_id marks) say and their equal values confirm; each variable is "
            "counted once and used at each place. Keras rebuilds separate layers from the "
            "file's config when it loads it"
        )
    if unclear:
        listed = sorted(unclear)
        more = f" and {len(listed) - 4} more" if len(listed) > 4 else ""
        notes.append(
            f"layers of one name and class hold equal copies stored under the same names: "
            f"{', '.join(repr(p) for p in listed[:4])}{more}; the file does not say whether "
            "each is one layer at two places or a copy of it (Keras 3's legacy .h5 never "
            "says; a .keras file does), so they are counted as stored and how often "
            f"their variables are used is unknown; if they are one layer, unique is "
            f"{extra:,} lower"
        )
    if unplaced:
        shown_unplaced = ", ".join(repr(p) for p in unplaced[:3])
        more_unplaced = f" and {len(unplaced) - 3} more" if len(unplaced) > 3 else ""
        notes.append(
            f"nested models list weights no layer of theirs is named for: {shown_unplaced}"
            f"{more_unplaced} (a variable a layer made under another name, held here by a "
            "tied layer or a custom layer's sublayer); they are counted, and which layer "
            "reads them, how often, is unknown"
        )
    if hidden:
        shown_hidden = ", ".join(repr(p) for p in hidden[:3])
        more_hidden = f" and {len(hidden) - 3} more" if len(hidden) > 3 else ""
        notes.append(
            f"built layers list no weights: {shown_hidden}{more_hidden}; a nested model's "
            "group lists a variable once however many of its layers hold it, so these hold "
            "variables listed under another layer (a cell given to two RNN layers, a tie); "
            "which, and how often they are used, is unknown"
        )
    if differing:
        shown_differing = sorted({(holder[c], holder[o]) for c, o in differing})
        notes.append(
            "stored weights named as one variable hold different values: "
            + ", ".join(f"{a!r} and {b!r}" for a, b in shown_differing[:3])
            + ("" if len(shown_differing) <= 3 else f" and {len(shown_differing) - 3} more")
            + "; counted as separate variables"
        )
    return tuple(notes)
