"""Layer objects Keras reached again while saving, found by name and class.

Keras saves a layer object's variables once, at the first path its saving walk
reaches (``visited_saveables`` in ``saving_lib``); at every other path the
object has no group in ``model.weights.h5``, while ``config.json`` describes it
in full each time. That happens when one layer sits at two places:

* a layer inside two nested models (an encoder and a decoder);
* a cell given to two ``RNN`` layers, a layer wrapped by ``TimeDistributed`` and
  also called directly;
* a layer that a custom layer holds in its config (a head keeping the
  embedding it reads).

The reader records each such place while it walks the config
(:class:`Unsaved`); :func:`resolve` then gives it the saved row of the same
name and class: the same identity and the same variables, and copies of that
row's own sublayers, as the live walker shows a layer object at two paths. Where
no saved row has that name and class and the layer is built, the file holds
weights the reader cannot place (a damaged file, or a format this reader does
not know): that is an error, never a layer with 0 parameters. Where several
do, the row's uses are unknown and a note says why.

This module imports neither Keras nor any backend.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.facts import RawLayer, join_path
from weighttie.io.config_json import is_layer_entry
from weighttie.static.rows import Place, Reader, Unsaved

__all__ = ["layer_references", "resolve"]


def layer_references(config: Any, depth: int = 0) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(name, class, config)`` of each serialized layer inside a layer's config
    (:func:`~weighttie.io.config_json.is_layer_entry`)."""
    if depth > 32:
        return
    if isinstance(config, dict):
        if is_layer_entry(config):
            inner = config["config"]
            yield inner["name"], config["class_name"], inner
            return
        for value in config.values():
            yield from layer_references(value, depth + 1)
    elif isinstance(config, list):
        for value in config:
            yield from layer_references(value, depth + 1)


def resolve(reader: Reader) -> list[str]:
    """Give each place in ``reader.unsaved`` the saved row of its name and class; return
    notes. ``reader.saved``: the paths of the rows that have a group in the weights file.

    Raises:
        FileFormatError: a built layer of the config has no variables in the file,
            at its path or at another of its name and class.
        LimitError: the rows added pass the layers limit.
    """
    if not reader.unsaved:
        return []
    rows = {row.path: row for row in reader.rows}
    by_name: dict[tuple[str, str], list[RawLayer]] = defaultdict(list)
    for path in sorted(reader.saved):
        row = rows[path]
        by_name[(row.name, row.class_name)].append(row)
    children: dict[str, list[RawLayer]] = defaultdict(list)
    for row in reader.rows:
        if row.parent is not None:
            children[row.parent].append(row)

    changed: dict[str, RawLayer] = {}
    added: dict[str, list[RawLayer]] = defaultdict(list)  # after a row: rows to insert
    resolved, ambiguous = [], []
    for place in reader.unsaved:
        candidates = _narrowed(by_name.get((place.name, place.class_name), []), place, reader)
        if len(candidates) != 1:
            if candidates:
                ambiguous.append(place)
                _unknown(place, candidates, rows, changed, added)
            elif place.built and place.place is not Place.REFERENCE:
                raise FileFormatError(
                    f"{reader.where}: layer {place.path!r} ({place.class_name}) is built, but "
                    f"model.weights.h5 holds no variables for it, nor for another layer named "
                    f"{place.name!r}; expected its weights at that layer's group (a damaged file, "
                    "or one written by a Keras release this reader does not know)"
                )
            continue
        match = candidates[0]
        resolved.append((place, match))
        if place.place is Place.ROW:
            row = rows[place.path]
            changed[place.path] = dataclasses.replace(
                row, identity=match.identity, variables=match.variables
            )
            anchor, base = place.path, place.path
        else:
            anchor, base = place.parent, place.path
            if base in rows or any(r.path == base for r in added[anchor]):
                continue
            added[anchor].append(
                RawLayer(
                    path=base,
                    name=place.name,
                    class_name=place.class_name,
                    parent=place.parent,
                    identity=match.identity,
                    is_model=match.is_model,
                    nodes=None,
                    variables=match.variables,
                    runs=1 if place.place is Place.SUBLAYER else None,
                )
            )
        if not match.is_model:
            added[anchor] += _copies(match, base, children, reader)

    result: list[RawLayer] = []
    for row in reader.rows:
        result.append(changed.get(row.path, row))
        result.extend(added.get(row.path, ()))
    reader.count_more(len(result) - len(reader.rows))
    reader.rows = result
    reader.row_index = {row.path: i for i, row in enumerate(result)}
    notes = _notes(resolved, ambiguous)
    if ambiguous:
        reader.calls_notes.append(notes[-1])
    return notes


def _narrowed(candidates: list[RawLayer], place: Unsaved, reader: Reader) -> list[RawLayer]:
    """The candidates whose config is the place's, where name and class leave several
    (an RNN layer's own cell and a cell given to another RNN can share a name)."""
    if len(candidates) < 2 or place.config is None:
        return candidates
    wanted = _normalized(place.config)
    same = []
    for row in candidates:
        entry = reader.entries.get(row.path)
        config = entry.get("config") if isinstance(entry, dict) else None
        if isinstance(config, dict) and _normalized(config) == wanted:
            same.append(row)
    return same or candidates


def _normalized(value: Any) -> Any:
    """A config without what saving adds beside it (``shared_object_id``, the reader's
    ``held_as``), to compare two places' configs."""
    if isinstance(value, dict):
        return {
            k: _normalized(v) for k, v in value.items() if k not in ("shared_object_id", "held_as")
        }
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _unknown(
    place: Unsaved,
    candidates: list[RawLayer],
    rows: dict[str, RawLayer],
    changed: dict[str, RawLayer],
    added: dict[str, list[RawLayer]],
) -> None:
    """A place that could be any of several saved layers: it may read any of their
    variables, an unknown number of times, so their uses are unknown."""
    keys = tuple(dict.fromkeys(k for row in candidates for k in row.variables))
    reads = tuple((k, None) for k in keys)
    if place.place is Place.ROW:
        changed[place.path] = dataclasses.replace(rows[place.path], runs=None, reads=reads)
        return
    added[place.parent].append(
        RawLayer(
            path=place.path,
            name=place.name,
            class_name=place.class_name,
            parent=place.parent,
            identity=place.path,
            is_model=False,
            nodes=None,
            variables=(),
            runs=None,
            reads=reads,
        )
    )


def _copies(
    match: RawLayer, base: str, children: dict[str, list[RawLayer]], reader: Reader
) -> list[RawLayer]:
    """``match``'s sublayers (from the weights file), again under ``base``, in pre-order."""
    copies: list[RawLayer] = []
    stack = [(child, base) for child in reversed(children.get(match.path, []))]
    while stack:
        row, parent = stack.pop()
        path = join_path(parent, row.name)
        copies.append(dataclasses.replace(row, path=path, parent=parent))
        if len(copies) > reader.limits.layers:
            break  # the limit check after resolving says so
        stack.extend((child, path) for child in reversed(children.get(row.path, [])))
    return copies


def _notes(resolved: list[tuple[Unsaved, RawLayer]], ambiguous: list[Unsaved]) -> list[str]:
    notes = []
    again = [(p, m) for p, m in resolved if p.place is not Place.REFERENCE]
    if again:
        shown = ", ".join(f"{p.path!r} is {m.path!r}" for p, m in again[:3])
        more = f" and {len(again) - 3} more" if len(again) > 3 else ""
        notes.append(
            f"one layer object sits at two places, its variables saved at the first only: "
            f"{shown}{more} (the same name and class); counted as one layer, run at each "
            "place. Keras rebuilds a separate layer at each place when it loads the file, "
            "and finds no variables for the second"
        )
    if ambiguous:
        shown = ", ".join(repr(p.path) for p in ambiguous[:3])
        more = f" and {len(ambiguous) - 3} more" if len(ambiguous) > 3 else ""
        notes.append(
            f"layers the weights file holds no variables for at their place: {shown}{more}; "
            "several saved layers have their name and class, so which one they are, and "
            "how often its variables are used, is unknown"
        )
    return notes
