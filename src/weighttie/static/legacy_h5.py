"""The legacy ``.h5`` reader (Keras 2 / tf.keras / tf_keras, and Keras 3's legacy
format): the ``model_config`` attribute and the ``model_weights`` group, whose
``weight_names`` name every variable."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weighttie.errors import FileFormatError, LimitError
from weighttie.facts import ROOT, ModelFacts, RawVariable, join_path
from weighttie.io.config_json import iter_layer_configs, parse_model_config
from weighttie.io.hdf5_guard import open_h5
from weighttie.layers import (
    UNKNOWN_CLASS,
    cell_name,
    given_sublayers,
    holds_only_given,
    holds_variables,
    is_builtin,
    runs_sublayers_once,
    sublayer_class,
    sublayer_key,
)
from weighttie.limits import Limits
from weighttie.model_files import open_model_file
from weighttie.report import CallNode, ModelInfo, Source
from weighttie.static.call_shapes import Shapes, graph_nodes, model_ends
from weighttie.static.config_graph import (
    entry_layer_name,
    entry_trainable,
    is_model_entry,
    layer_entries,
    path_name,
)
from weighttie.static.h5_tree import attr_text, h5_errors, walk_h5
from weighttie.static.keras_hub import graphless_notes
from weighttie.static.legacy_copies import (
    StoredCopies,
    Weight,
    alias_owner,
    find_copies,
    merge_copies,
    placed_name,
    sublayer_aliases,
)
from weighttie.static.reached_again import layer_references
from weighttie.static.rows import Reader, opaque_notes
from weighttie.static.values import Values, value_access

__all__ = ["legacy_facts"]


def _legacy_config(h5: Any, path: str, limits: Limits) -> dict[str, Any] | None:
    """The ``model_config`` attribute of a legacy file, parsed within ``limits``; None if absent."""
    from h5py import h5a

    if not h5a.exists(h5.id, b"model_config"):
        return None
    if h5a.open(h5.id, b"model_config").get_storage_size() > limits.config_bytes:
        raise LimitError(
            f"{path!r}: model_config holds more than {limits.config_bytes:,} bytes, "
            "the config_bytes limit",
            limit="config_bytes",
        )
    value = h5.attrs.get("model_config")
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    if not isinstance(data, bytes):
        return None
    if len(data) > limits.config_bytes:
        raise LimitError(
            f"{path!r}: model_config holds {len(data):,} bytes, more than the "
            f"{limits.config_bytes:,} of the config_bytes limit",
            limit="config_bytes",
        )
    config = parse_model_config(data, limits=limits, where=f"{path!r}: model_config")
    if not isinstance(config, dict):
        raise FileFormatError(f"{path!r}: model_config must be a JSON object")
    return config


@contextmanager
def legacy_facts(path: str, findings: bool, limits: Limits) -> Iterator[ModelFacts]:
    """The facts of a legacy ``.h5`` file, valid while the file stays open (values are
    read from it for findings, through ``facts.access``)."""
    where = repr(path)
    with open_model_file(path) as file, open_h5(file, where) as h5, h5_errors(path, "the file"):
        config = _legacy_config(h5, path, limits)
        if config is None:
            raise FileFormatError(
                f"{path!r} is an HDF5 file without a model_config attribute: it holds "
                "weights only (save_weights) or is not a Keras model"
            )
        walk_h5(h5, where, limits)
        weights = h5.get("model_weights")
        version = attr_text(h5.attrs.get("keras_version"))
        reader = Reader(where, limits)
        class_name = str(config.get("class_name", UNKNOWN_CLASS))
        name = entry_layer_name(config) or "model"
        reader.add(
            ROOT,
            name,
            class_name,
            None,
            is_model=True,
            nodes=None,
            variables=[],
            names=[],
            trainable=True,
        )
        notes: tuple[str, ...] = ()
        values = Values(h5, {}, where)
        unclear: frozenset[str] = frozenset()
        if is_model_entry(config):
            shapes = Shapes("model_config", True, limits.depth, limits.calls)
            stored = _stored_copies(config, weights, limits.depth, version)
            _legacy_model(reader, config, weights, ROOT, entry_trainable(config), 0, shapes, stored)
            _unknown_reads(reader, stored)
            merged = merge_copies(reader, stored, values, version)
            notes, unclear = merged.notes, merged.unclear
        else:  # a subclassed model (Keras 3 saves one as .h5): no graph in model_config
            _legacy_graphless(reader, weights, name, entry_trainable(config))
            notes = graphless_notes(class_name, 0, [])
            reader.calls_notes.append(notes[0])
        info = ModelInfo(
            name=name,
            class_name=class_name,
            source=Source.STATIC,
            file=path,
            keras_version=version,
            notes=notes + opaque_notes(reader),
        )
        yield ModelFacts(
            model=info,
            layers=reader.rows,
            variables=tuple(reader.variables.values()),
            access=value_access(reader, values if findings else None),
            calls_note=next(iter(reader.calls_notes), None),
            unclear_copies=unclear,
        )


def _stored_copies(
    config: dict[str, Any], weights: Any, max_depth: int, version: str | None
) -> StoredCopies:
    """The weights each group of the model's level lists, and the names each owns (a layer
    its own; a nested model its layers'), to find the copies of one variable
    (:func:`~weighttie.static.legacy_copies.find_copies`)."""
    groups = []
    for name, child in layer_entries(config, "model_config", keras2=True):
        owned = {name} | _graph_layer_names(child, max_depth)
        group = weights.get(name) if weights is not None else None
        groups.append((frozenset(owned), _legacy_weights(group)))
    return find_copies(groups, version)


def _graph_layer_names(entry: dict[str, Any], max_depth: int) -> set[str]:
    """The names of the layers of a nested model's graph, at any depth (not the layers a
    custom layer's config keeps: those may have been made outside)."""
    names: set[str] = set()
    stack = [(entry, 0)]
    while stack:
        model, depth = stack.pop()
        if not is_model_entry(model) or depth > max_depth:
            continue
        layers = model["config"].get("layers") if isinstance(model.get("config"), dict) else None
        for child in layers if isinstance(layers, list) else []:
            if isinstance(child, dict) and (inner := entry_layer_name(child)) is not None:
                names.add(inner)
                stack.append((child, depth + 1))
    return names


def _legacy_graphless(reader: Reader, weights: Any, model: str, trainable: bool) -> None:
    """The rows of a subclassed model's legacy file, whose ``model_config`` holds
    constructor arguments, not layers: ``model_weights`` lists its layers
    (``layer_names``), each with its weight names (Keras 3.3+: the model's name, the
    layer's, the variable's, ``siamese/encoder/kernel``; 3.0 - 3.2: the variable's).
    Their class is not in the file (``?``), and their calls are unknown."""
    import h5py

    names = weights.attrs.get("layer_names") if isinstance(weights, h5py.Group) else None
    for raw in list(names) if names is not None else []:
        name = attr_text(raw)
        if not name:
            continue
        own = [
            (*w[:3], w[3][len(model) + 1 :]) if w[3].startswith(model + "/") else w
            for w in _legacy_weights(weights.get(name))
        ]
        path = join_path(ROOT, path_name(name))
        direct = [w for w in own if len(_weight_parts(w[3], name)) <= 2]
        reader.add(
            path,
            name,
            UNKNOWN_CLASS,
            ROOT,
            is_model=False,
            nodes=None,
            variables=[(k, s, d) for k, s, d, _ in direct],
            names=[_weight_parts(w, name)[-1] for _, _, _, w in direct],
            trainable=trainable,
            calls_known=False,
        )
        deeper = [(w, parts) for w in own if len(parts := _weight_parts(w[3], name)[1:]) > 1]
        _legacy_sublayers(
            reader, deeper, (path, UNKNOWN_CLASS, {}), trainable, 1, calls_known=False
        )


def _legacy_weights(group: Any) -> list[tuple[str, tuple[int, ...], str, str]]:
    """(dataset key, shape, dtype, weight name) for a legacy layer group."""
    import h5py

    if not isinstance(group, h5py.Group):
        return []
    names = group.attrs.get("weight_names")
    result = []
    for raw in list(names) if names is not None else []:
        weight = attr_text(raw)
        if not weight:
            continue
        dataset = group.get(weight)
        if isinstance(dataset, h5py.Dataset):
            result.append(
                (dataset.name, tuple(int(d) for d in dataset.shape), str(dataset.dtype), weight)
            )
    return result


def _legacy_model(
    reader: Reader,
    entry: dict[str, Any],
    weights: Any,
    path: str,
    trainable: bool,
    depth: int,
    shapes: Shapes,
    stored: StoredCopies,
    inherited: list[Weight] | None = None,
) -> None:
    """Rows of one legacy model level; ``inherited``: a nested model's weights, by inner layer.

    A weight whose name another layer's scope starts (``stored.foreign``: a copy of a
    variable that layer made, or made under it) is read at the place its name gives
    below this layer (:func:`~weighttie.static.legacy_copies.placed_name`)."""
    reader.check_depth(depth, "model_config nests models")
    level = layer_entries(entry, "model_config", keras2=True)
    sequential = entry.get("class_name") == "Sequential"
    nodes = graph_nodes(level, path, sequential, shapes, depth, model_ends(entry))
    owned = (
        _weights_by_layer(level, inherited, reader.limits.depth, entry_layer_name(entry), stored)
        if inherited
        else {}
    )
    placed = {w[0] for weights_of in owned.values() for w in weights_of}
    _unplaced(reader, stored, path, [w for w in inherited or () if w[0] not in placed], trainable)
    for name, child in level:
        child_path = join_path(path, path_name(name))
        child_trainable = trainable and entry_trainable(child)
        if inherited is not None:
            own = owned.get(name, [])
        else:
            own = _legacy_weights(weights.get(name) if weights is not None else None)
        class_name = str(child.get("class_name", UNKNOWN_CLASS))
        reader.entries[child_path] = child  # its config: trainable flags and findings
        if is_model_entry(child):
            row = (child_path, name, class_name, path, nodes.get(name, ()))
            _nested_model(reader, child, row, child_trainable, depth, shapes, stored, own)
            continue
        config: dict[str, Any] = child["config"] if isinstance(child.get("config"), dict) else {}
        known = is_builtin(child) and runs_sublayers_once(class_name)
        own = _placed_weights(
            own, (name, class_name, config), known, stored, entry_layer_name(entry)
        )
        direct = [w for w in own if len(_weight_parts(w[3], name)) <= 2]
        reader.add(
            child_path,
            name,
            class_name,
            path,
            is_model=False,
            nodes=nodes.get(name, ()),
            variables=[(k, s, d) for k, s, d, _ in direct],
            names=[_weight_parts(w, name)[-1] for _, _, _, w in direct],
            trainable=child_trainable,
        )
        deeper = [(w, parts) for w in own if len(parts := _weight_parts(w[3], name)[1:]) > 1]
        listed_none = inherited is not None and not own and bool(nodes.get(name))  # built
        held = {parts[0] for _, parts in deeper}
        place = (path, child_path, class_name)
        _reads_elsewhere(reader, stored, place, config, listed_none, known, held)
        _legacy_sublayers(
            reader,
            deeper,
            (child_path, class_name, config),
            child_trainable,
            depth + 1,
            calls_known=known,
        )


def _nested_model(
    reader: Reader,
    child: dict[str, Any],
    row: tuple[str, str, str, str, tuple[CallNode, ...]],
    trainable: bool,
    depth: int,
    shapes: Shapes,
    stored: StoredCopies,
    own: list[Weight],
) -> None:
    """A nested model's row (``row``: path, name, class, parent, calls) and its level."""
    child_path, name, class_name, parent, nodes = row
    reader.add(
        child_path,
        name,
        class_name,
        parent,
        is_model=True,
        nodes=nodes,
        variables=[],
        names=[],
        trainable=trainable,
    )
    _legacy_model(reader, child, None, child_path, trainable, depth + 1, shapes, stored, own)


def _legacy_sublayers(
    reader: Reader,
    weights: list[tuple[tuple[str, tuple[int, ...], str, str], list[str]]],
    parent: tuple[str, str, dict[str, Any]],
    trainable: bool,
    depth: int,
    *,
    calls_known: bool = True,
) -> None:
    """Rows of the sublayers a layer's weight names show, nested as the names nest them
    (``bi/forward_gru/gru_cell/kernel``: the forward GRU, then its cell); ``weights``
    pairs each weight with the parts of its name below the parent. ``calls_known``
    is False below a custom layer: its ``call`` decides how often they run."""
    path, class_name, config = parent
    groups: dict[str, list[tuple[tuple[str, tuple[int, ...], str, str], list[str]]]] = {}
    for weight, parts in weights:
        groups.setdefault(parts[0], []).append((weight, parts[1:]))
    if groups:
        reader.check_depth(depth, "model_weights nests layers")
    for sub_name, items in groups.items():
        key = sublayer_key(class_name, sub_name) or "cell"
        sub_class, sub_config = sublayer_class(class_name, config, key)
        sub_path = join_path(path, sub_name)
        direct = [(w, parts) for w, parts in items if len(parts) == 1]
        reader.add(
            sub_path,
            sub_name,
            sub_class,
            path,
            is_model=False,
            nodes=None,
            variables=[(k, s, d) for (k, s, d, _), _ in direct],
            names=[parts[0] for _, parts in direct],
            trainable=trainable,
            calls_known=calls_known,
        )
        deeper = [(w, parts) for w, parts in items if len(parts) > 1]
        _legacy_sublayers(
            reader,
            deeper,
            (sub_path, sub_class, sub_config),
            trainable,
            depth + 1,
            calls_known=calls_known,
        )


def _cell_weights(
    weights: list[tuple[str, tuple[int, ...], str, str]], layer: str, class_name: str
) -> list[tuple[str, tuple[int, ...], str, str]]:
    """A recurrent layer's weights under its cell, where their names do not say so: Keras
    3.0 - 3.2 name a legacy file's weights bare (``kernel``, not ``lstm/lstm_cell/kernel``),
    and an LSTM's are its cell's (named ``lstm_cell``, as Keras 3 names it)."""
    cell = cell_name(class_name)
    if cell is None or not weights or any("/" in w[3] for w in weights):
        return weights
    return [(*w[:3], f"{layer}/{cell}/{w[3]}") for w in weights]


def _placed_weights(
    weights: list[Weight],
    layer: tuple[str, str, dict[str, Any]],
    known: bool,
    stored: StoredCopies,
    model: str | None,
) -> list[Weight]:
    """A layer's weights (``layer``: its name, class and config) named by where they sit
    below it: a copy of a variable another layer's scope starts, or any weight of a
    custom layer, at the place its name gives (:func:`_foreign_name`); a recurrent
    layer's bare weights under its cell; a wrapper's direct weights under the layer it
    was given (:func:`_given_weights`)."""
    name, class_name, config = layer
    aliases = sublayer_aliases(class_name, config, stored.keras2)
    placed = [
        (key, shape, dtype, _foreign_name(weight, name, aliases, known, model))
        if key in stored.foreign or not known
        else (key, shape, dtype, weight)
        for key, shape, dtype, weight in weights
    ]
    return _given_weights(_cell_weights(placed, name, class_name), name, class_name, config)


def _reads_elsewhere(
    reader: Reader,
    stored: StoredCopies,
    place: tuple[str, str, str],
    config: dict[str, Any],
    listed_none: bool,
    known: bool,
    held: set[str],
) -> None:
    """Mark a row (``place``: its model's path, its path, its class) that reads variables
    the file lists under other layers (:func:`_unknown_reads` fills them in), and a
    custom layer's row whose sublayers' calls its own ``call`` decides as opaque.

    A nested model's group lists a variable once, however many of its layers hold it:
    a built layer of one listing no weights (``listed_none``) though its class holds
    some holds variables listed under another layer (tied), which the file does not
    say; what it reads, and how often, is unknown. Likewise a custom layer keeping a
    layer (``layer_references``) whose weights it does not list (``held``: the
    sublayers it lists weights of): it may read that layer's variables."""
    path, child_path, class_name = place
    if listed_none and holds_variables(class_name, config):
        stored.hidden.append(child_path)
        stored.unknown_reads.append((child_path, path, ()))
    references = [] if known else [r[0] for r in layer_references(config)]
    if [r for r in references if r not in held]:  # a layer it keeps, listed elsewhere
        stored.unknown_reads.append((child_path, path, tuple(references)))
        if (child_path, class_name) not in reader.opaque:
            reader.opaque.append((child_path, class_name))
    if held and not known and (child_path, class_name) not in reader.opaque:
        reader.opaque.append((child_path, class_name))


def _foreign_name(
    weight: str, layer: str, aliases: dict[str, str], known: bool, model: str | None
) -> str:
    """Where a weight another layer's scope starts sits below ``layer``: a Keras layer's
    as its name shows (:func:`~weighttie.static.legacy_copies.placed_name`); a custom
    layer's below a sublayer of the scope's name (a head keeping the Dense it reads,
    built elsewhere), whose runs and reads its own ``call`` decides."""
    if known:
        return placed_name(weight, layer, aliases)
    parts = _weight_parts(weight, layer)
    if len(parts) > 2 and parts[0] == model:  # Keras 3.3 on name a Sequential's weights so
        parts = _weight_parts("/".join(parts[1:]), layer)
    if len(parts) < 2 or parts[0] == layer:  # its own (or bare: Keras 3.0 - 3.2)
        return weight
    return "/".join([layer, *parts])


def _unplaced(
    reader: Reader, stored: StoredCopies, path: str, weights: list[Weight], trainable: bool
) -> None:
    """Weights a nested model's group lists that no layer of it is named for (a variable
    a layer made under another name and a layer here holds, tied): held by the model's
    row, so they are counted, and read an unknown number of times by its layers."""
    if not weights:
        return
    index = reader.row_index[path]
    row = reader.rows[index]
    for key, shape, dtype, weight in weights:
        name = _weight_parts(weight)[-1]
        flag = trainable and name not in ("moving_mean", "moving_variance")
        reader.variables[key] = RawVariable(key, name, shape, dtype, flag)
    keys = tuple(w[0] for w in weights)
    held = row.reads if row.reads is not None else tuple((k, row.runs) for k in row.variables)
    reads = (*held, *((k, None) for k in keys))
    reader.rows[index] = dataclasses.replace(row, variables=(*row.variables, *keys), reads=reads)
    stored.unplaced.append(path)


def _unknown_reads(reader: Reader, stored: StoredCopies) -> None:
    """Rows that read variables the file lists under other layers, which or how often
    unknown: a built layer listing no weights (its variables listed once, under another
    layer of its nested model), a custom layer keeping a layer whose weights it does not
    list. They may read the variables of the layers of the names they keep, else any
    of their model's: those variables' uses are unknown."""
    if not stored.unknown_reads:
        return
    by_name: dict[str, list[str]] = {}
    for row in reader.rows:
        by_name.setdefault(row.name, []).extend(str(k) for k in row.variables)
    for path, level, names in stored.unknown_reads:
        keys = [k for name in names for k in by_name.get(name, ())]
        if not keys:
            keys = [
                str(k)
                for row in reader.rows
                if row.path.startswith(level + "/" if level else "") and row.path != path
                for k in row.variables
            ]
        index = reader.row_index[path]
        row = reader.rows[index]
        held = row.reads if row.reads is not None else tuple((k, row.runs) for k in row.variables)
        unknown = tuple((k, None) for k in dict.fromkeys(keys) if k not in row.variables)
        reader.rows[index] = dataclasses.replace(row, reads=(*held, *unknown))


def _given_weights(
    weights: list[Weight], layer: str, class_name: str, config: dict[str, Any]
) -> list[Weight]:
    """A wrapper's weights under the layer it was given, where their names do not say so:
    Keras 2 names a TimeDistributed's inner weights after the wrapper (``td/kernel``),
    Keras 3.0 - 3.2 name a generic RNN's cell weights bare (``kernel``), and a wrapper
    given a layer built elsewhere lists that layer's names (``proj/kernel``)."""
    given = given_sublayers(class_name, config) if holds_only_given(class_name) else []
    if not given:
        return weights
    sub = given[0][1]
    return [
        (*w[:3], f"{layer}/{sub}/{_weight_parts(w[3], layer)[-1]}")
        if len(_weight_parts(w[3], layer)) <= 2
        else w
        for w in weights
    ]


def _weight_parts(weight: str, layer: str | None = None) -> list[str]:
    """A weight's name in parts, ``:0`` dropped: ``lstm/lstm_cell/kernel:0`` → ``lstm``,
    ``lstm_cell``, ``kernel``; a ``layer`` name (which may hold ``/``, as tf_keras's
    ``conv1/conv`` does) that starts it is kept whole."""
    bare = weight.split(":", 1)[0]
    if layer is not None and bare.startswith(layer + "/"):
        return [layer, *bare[len(layer) + 1 :].split("/")]
    return bare.split("/")


def _weights_by_layer(
    level: list[tuple[str, dict[str, Any]]],
    weights: list[Weight],
    max_depth: int,
    model: str | None = None,
    stored: StoredCopies | None = None,
) -> dict[str, list[Weight]]:
    """A nested model's weights by the layer of ``level`` that holds them.

    A weight is named by the layer that made it: a layer of this level, or (for a
    nested model) a layer anywhere in its subtree; names here win, and of the names
    a weight starts with, the longest (names may hold ``/``). Keras 3 (3.3 on) names
    a Sequential model's weights after the model too (``stack/dense/kernel``): where
    no layer owns the name, it is read without the nested ``model``'s name in front.
    A copy of a variable another layer made (``stored.foreign``: a cell an RNN outside
    made, given to an RNN here) goes to the layer here whose sublayer its name shows; a
    variable of a layer only one layer here holds in its config (a custom head keeping
    the Dense it reads), to that layer.
    """
    owners: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for name, child in level:
        entries = (
            [entry for _, entry in iter_layer_configs(child, max_depth=max_depth)]
            if is_model_entry(child)
            else [child]
        )
        for entry in entries:
            inner = entry_layer_name(entry)
            if inner is not None and is_model_entry(child):
                owners.setdefault(inner, name)
            config = entry.get("config")
            if isinstance(config, dict):
                keras2 = stored is not None and stored.keras2
                for alias in sublayer_aliases(str(entry.get("class_name", "")), config, keras2):
                    aliases.setdefault(alias, name)
    owners.update({name: name for name, _ in level})
    holding: dict[str, set[str]] = {}  # a layer a layer's config holds → the layers holding it
    for name, child in level:
        if not is_model_entry(child):
            for held, _, _ in layer_references(child.get("config")):
                holding.setdefault(held, set()).add(name)
    result: dict[str, list[Weight]] = {}
    for weight in weights:
        parts = weight[3].split(":", 1)[0].split("/")
        owner = _owner(owners, parts)
        if owner is None and model is not None and parts[0] == model and len(parts) > 2:
            owner = _owner(owners, parts[1:])
            weight = (*weight[:3], weight[3][len(model) + 1 :])
        if owner is None and stored is not None and weight[0] in stored.foreign:
            owner = alias_owner(parts, owners, aliases)
        if owner is None and len(holding.get(parts[0], ())) == 1:  # a layer held, not called
            (owner,) = holding[parts[0]]
        if owner is not None:
            result.setdefault(owner, []).append(weight)
    return result


def _owner(owners: dict[str, str], parts: list[str]) -> str | None:
    """The layer a weight named ``parts`` belongs to: the longest name it starts with."""
    for end in range(len(parts) - 1, 0, -1):
        owner = owners.get("/".join(parts[:end]))
        if owner is not None:
            return owner
    return None
