"""The ``.keras`` (Keras 3) reader: ``config.json`` gives the layers, nested models
and every call; ``model.weights.h5`` each layer's variables under a group whose
``vars`` carries the layer's name, and the sublayers a layer holds (an LSTM's
``cell``). Declared ties are applied once their saved copies are found equal.

A graphless model (a keras_hub model, whose config is constructor arguments, or a
subclassed one) is read from its weights file alone (:mod:`~weighttie.static.keras_hub`):
layers, variables and counts, with its calls unknown and notes saying so. A
model's ``optimizer`` group is never a layer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weighttie.errors import FileFormatError
from weighttie.facts import ROOT, ModelFacts, join_path
from weighttie.io.keras_zip import WEIGHTS, KerasArchive
from weighttie.layers import (
    MODEL_CLASSES,
    UNKNOWN_CLASS,
    frozen_in_init,
    given_sublayers,
    hub_variable_names,
    is_builtin,
    runs_sublayers_once,
    sublayer_class,
    variable_names,
)
from weighttie.limits import Limits
from weighttie.report import CallNode, ModelInfo, Source
from weighttie.static.call_shapes import Shapes, graph_nodes, model_ends
from weighttie.static.config_graph import (
    entry_layer_name,
    entry_trainable,
    is_model_entry,
    layer_entries,
)
from weighttie.static.declared_ties import apply_ties
from weighttie.static.group_names import holds_variables, list_group_keys, sublayer_name
from weighttie.static.h5_tree import H5Group, h5_errors, read_group
from weighttie.static.keras_hub import GraphlessConfig, graphless_notes
from weighttie.static.reached_again import layer_references, resolve
from weighttie.static.rows import Place, Reader, Unsaved, opaque_notes
from weighttie.static.values import Values, value_access

__all__ = ["facts_of_config", "keras_facts", "open_keras"]


@contextmanager
def keras_facts(path: str, findings: bool, limits: Limits) -> Iterator[ModelFacts]:
    """The facts of a ``.keras`` file, valid while the file stays open (values are read
    from it for findings, through ``facts.access``)."""
    with open_keras(path, findings, limits) as (_, facts):
        yield facts


@contextmanager
def open_keras(
    path: str, findings: bool, limits: Limits
) -> Iterator[tuple[dict[str, Any], ModelFacts]]:
    """The parsed ``config.json`` of a ``.keras`` file and its facts (see :func:`keras_facts`)."""
    where = f"{path!r}: {WEIGHTS}"
    with KerasArchive(path, limits=limits) as archive:
        config = archive.config()
        metadata = archive.metadata()
        if not archive.has(WEIGHTS):
            raise FileFormatError(
                f"{path!r} has no model.weights.h5; expected a .keras archive written by "
                "Keras 3 (config.json, metadata.json, model.weights.h5)"
            )
        with archive.weights_deferred() as (h5, heaps), h5_errors(path, WEIGHTS):
            handles: dict[str, Any] = {}
            group = read_group(h5, where, limits, handles if findings else None, heaps)
            values = Values(h5, handles, where)
            yield config, facts_of_config(path, config, metadata, group, values, limits, findings)


def facts_of_config(
    path: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    group: H5Group,
    values: Values,
    limits: Limits,
    findings: bool,
    config_name: str = "config.json",
) -> ModelFacts:
    """The facts of a .keras file, with a finding for each declared tie whose copies differ.

    Declared ties' copies are always compared (a tie is bound only if they agree);
    other values are read only for ``findings``.
    """
    reader = Reader(repr(path), limits)
    notes: tuple[str, ...] = ()
    class_name = str(config.get("class_name", UNKNOWN_CLASS))
    name = entry_layer_name(config) or group.name or "model"  # a subclassed model: the weights say
    root_trainable = entry_trainable(config)
    count = len(group.variables)
    graphless_root = not is_model_entry(config) and class_name not in MODEL_CLASSES
    reader.add(
        ROOT,
        name,
        class_name,
        None,
        is_model=True,
        nodes=None,
        variables=group.variables,
        names=hub_variable_names(class_name, {}, count)
        if graphless_root
        else [str(i) for i in range(count)],
        trainable=root_trainable,
    )
    if is_model_entry(config):
        shapes = Shapes(f"{path!r}: {config_name}", False, limits.depth, limits.calls)
        _keras_model(reader, config, group, ROOT, root_trainable, 0, shapes)
    elif class_name in MODEL_CLASSES:
        raise FileFormatError(
            f"{path!r}: config.json describes a {class_name} model without a list of layers"
        )
    else:  # a subclassed model: the weights file is the only map of its layers
        graphless = GraphlessConfig(config)
        _sublayers(
            reader, group, class_name, {}, ROOT, root_trainable, 0, graphless, calls_known=False
        )
        notes = graphless_notes(
            class_name,
            sum(1 for r in reader.rows if r.class_name == UNKNOWN_CLASS and r.variables),
            graphless.ties,
        )
        reader.calls_notes.append(notes[0])
    notes += tuple(resolve(reader))
    notes += opaque_notes(reader)
    ties, differing = apply_ties(reader, config, values)
    version = metadata.get("keras_version")
    info = ModelInfo(
        name=name,
        class_name=class_name,
        source=Source.STATIC,
        file=path,
        keras_version=version if isinstance(version, str) else None,
        notes=notes,
    )
    return ModelFacts(
        model=info,
        layers=reader.rows,
        variables=tuple(reader.variables.values()),
        ties=tuple(ties),
        differing_ties=tuple(differing),
        access=value_access(reader, values if findings else None),
        calls_note=next(iter(reader.calls_notes), None),
    )


def _keras_model(
    reader: Reader,
    entry: dict[str, Any],
    group: H5Group | None,
    path: str,
    trainable: bool,
    depth: int,
    shapes: Shapes,
) -> None:
    reader.check_depth(depth, "config.json nests models")
    level = layer_entries(entry, shapes.where)
    sequential = entry.get("class_name") == "Sequential"
    nodes = graph_nodes(level, path, sequential, shapes, depth, model_ends(entry))
    by_name: dict[str, H5Group] = {}
    if group is not None:
        for child in [*group.layers, *group.attributes.values()]:
            if child.name is not None:
                by_name.setdefault(child.name, child)
        unnamed = {child.key: child for child in group.layers if child.name is None}
        if unnamed:  # Keras 3.0 - 3.5 name no group: the group keys follow the list
            for name, key in list_group_keys(level, sequential).items():
                if name not in by_name and key in unnamed:
                    by_name[name] = unnamed[key]
    for name, child_entry in level:
        child_path = join_path(path, name)
        _keras_layer(
            reader,
            child_entry,
            by_name.get(name),
            child_path,
            path,
            nodes.get(name, ()),
            trainable and entry_trainable(child_entry),
            depth + 1,
            shapes,
        )


def _keras_layer(
    reader: Reader,
    entry: dict[str, Any],
    group: H5Group | None,
    path: str,
    parent: str,
    nodes: tuple[CallNode, ...] | None,
    trainable: bool,
    depth: int,
    shapes: Shapes,
) -> None:
    class_name = str(entry.get("class_name", UNKNOWN_CLASS))
    config: dict[str, Any] = entry["config"] if isinstance(entry.get("config"), dict) else {}
    variables = group.variables if group is not None else []
    reader.entries[path] = entry
    reader.add(
        path,
        path.rsplit("/", 1)[-1],
        class_name,
        parent,
        is_model=is_model_entry(entry),
        nodes=nodes,
        variables=variables,
        names=variable_names(class_name, config, len(variables)),
        trainable=trainable,
    )
    name = path.rsplit("/", 1)[-1]
    built = is_model_entry(entry) or "build_config" in entry
    if group is None:
        reader.unsaved.append(Unsaved(Place.ROW, path, parent, name, class_name, built, config))
    else:
        reader.saved.add(path)
    if is_model_entry(entry):
        _keras_model(reader, entry, group, path, trainable, depth, shapes)
    elif group is not None:
        known = is_builtin(entry) and runs_sublayers_once(class_name)
        if known:  # a layer it was given, saved at another place (a cell in two RNNs)
            for key, sub_name, sub_class, sub_config in given_sublayers(class_name, config):
                if key not in group.attributes:
                    sub_path = join_path(path, sub_name)
                    reader.unsaved.append(
                        Unsaved(
                            Place.SUBLAYER, sub_path, path, sub_name, sub_class, built, sub_config
                        )
                    )
        else:  # the layers its config holds: its call may run or read them, or neither
            held = {child.name for child in [*group.layers, *group.attributes.values()]}
            references = [
                r for r in layer_references(config.get("config", config)) if r[0] not in held
            ]
            for sub_name, sub_class, sub_config in references:
                sub_path = join_path(path, sub_name)
                reader.unsaved.append(
                    Unsaved(Place.REFERENCE, sub_path, path, sub_name, sub_class, built, sub_config)
                )
            if group.attributes or group.layers or references:
                reader.opaque.append((path, class_name))
        _sublayers(
            reader,
            group,
            class_name,
            config,
            path,
            trainable,
            depth,
            calls_known=known,
        )


def _sublayers(
    reader: Reader,
    group: H5Group,
    class_name: str,
    config: dict[str, Any],
    path: str,
    trainable: bool,
    depth: int,
    graphless: GraphlessConfig | None = None,
    *,
    calls_known: bool = True,
) -> None:
    """The sublayers the weights file shows below ``path`` (at ``depth``, as a path's
    slashes count). In a graphless model's file (``graphless``), a layer of a
    ``layers`` list, or of another list a layer keeps (a group without ``vars``), has
    the class its group name says, where that is a known class; a sublayer kept as an
    attribute has the class its parent's catalogue entry names for the attribute.
    ``calls_known`` is False below a custom layer: its ``call`` decides how often
    they run."""
    children = [(key, child, group.is_list) for key, child in sorted(group.attributes.items())]
    children += [(str(i), child, True) for i, child in enumerate(group.layers)]
    # Keras 3.0 - 3.5 name no group: a sublayer's name is then the one its parent's class
    # gives it, and a group holding no variable (3.0 - 3.2's unbuilt template of a
    # Bidirectional's layer) is no layer.
    children = [
        (key, child, listed)
        for key, child, listed in children
        if child.name is not None or holds_variables(child)
    ]
    if children:
        reader.check_depth(depth, "model.weights.h5 nests layers")
    taken: set[str] = set()
    for key, child, listed in children:
        name = child.name
        if name is None:
            name = child.key if listed else sublayer_name(class_name, config, key)
        child_path = join_path(path, name)
        if child_path in taken:
            continue
        taken.add(child_path)
        sub_class, sub_config = sublayer_class(
            class_name, config, key, empty=not holds_variables(child)
        )
        sub_trainable = trainable
        names = variable_names(sub_class, sub_config, len(child.variables))
        if graphless is not None:
            if listed:
                sub_class, config_trainable = graphless.layer_class(child.key)
                frozen = frozen_in_init(class_name, child.key)
                sub_trainable = trainable and config_trainable and not frozen
            names = hub_variable_names(sub_class, sub_config, len(child.variables))
        reader.add(
            child_path,
            name,
            sub_class,
            path,
            is_model=graphless is not None and bool(child.layers),
            nodes=None,
            variables=child.variables,
            names=names,
            trainable=sub_trainable,
            calls_known=calls_known,
        )
        reader.saved.add(child_path)
        _sublayers(
            reader,
            child,
            sub_class,
            sub_config,
            child_path,
            sub_trainable,
            depth + 1,
            graphless,
            calls_known=calls_known,
        )
