"""Walking an HDF5 weights file: refusing what is not self-contained (external
storage or links, dangling links, virtual datasets, plugin filters) before any
value is read, within the limits and a time budget, and reading the tree of
saveables of a ``.keras`` archive's ``model.weights.h5``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from weighttie.errors import FileFormatError, LimitError
from weighttie.io.hdf5_guard import Heaps
from weighttie.io.hdf5_headers import BUILTIN_FILTERS, Tree, read_tree
from weighttie.limits import Limits

__all__ = [
    "H5_SECONDS",
    "H5_SECONDS_PER_OBJECT",
    "NOT_LAYERS",
    "Collected",
    "H5Group",
    "attr_text",
    "collect_h5",
    "h5_errors",
    "link_groups",
    "read_group",
    "walk_h5",
]

#: Time allowed to walk a weights file: a base plus a share per object visited.
H5_SECONDS = 5.0
H5_SECONDS_PER_OBJECT = 0.002

_SELF_CONTAINED = "weighttie reads only self-contained weights files"


class _Pace:
    """A time budget that grows with the work done: ``base + per_item × items`` seconds.

    A damaged HDF5 object can make one call take seconds; a file full of them must
    not hang the reader.
    """

    def __init__(self, what: str, base: float, per_item: float) -> None:
        self.what, self.base, self.per_item = what, base, per_item
        self.started = time.monotonic()

    def check(self, items: int, doing: str) -> None:
        budget = self.base + self.per_item * items
        if time.monotonic() - self.started > budget:
            raise FileFormatError(
                f"{self.what} is damaged: {doing} took longer than {budget:.0f} s"
            )


class _Links:
    """Every group's links, checked when the object walk reaches the group (its metadata
    is then in HDF5's cache, and no list of the file's paths is kept).

    HDF5's object visitor follows hard links only, and so does everything that
    follows; but Keras opens datasets by path, through whatever link is there. So
    external and user-defined links are refused at once, and soft links are kept and,
    once the walk is over, must name an object of the file through hard links alone.
    """

    def __init__(self, h5: Any, where: str, limits: Limits) -> None:
        self.h5, self.where, self.limits = h5, where, limits
        self.count = 0
        self.soft: list[bytes] = []

    def check_group(self, group: Any, path: bytes) -> None:
        """Check the links of ``group``, found at ``path`` (``b""``: the root)."""
        from h5py import h5l

        other: list[tuple[bytes, int]] = []
        stopped: list[FileFormatError] = []

        def listed(name: bytes, info: Any) -> bool | None:
            # h5py's link iteration cannot pass an exception on (it raises SystemError):
            # a refusal is kept, the iteration stopped (a value other than None), and
            # raised after.
            self.count += 1
            if self.count > self.limits.h5_objects:
                stopped.append(
                    LimitError(
                        f"{self.where} holds more than {self.limits.h5_objects:,} HDF5 links, "
                        "the h5_objects limit",
                        limit="h5_objects",
                    )
                )
                return True
            if info.type != h5l.TYPE_HARD:
                other.append((name, info.type))
            return None

        group.links.iterate(listed, info=True)
        if stopped:
            raise stopped[0]
        for name, kind in other:
            full = path + b"/" + name if path else name
            if kind == h5l.TYPE_SOFT:
                self.soft.append(full)
            elif kind == h5l.TYPE_EXTERNAL:
                file, target = group.links.get_val(name)
                raise FileFormatError(
                    f"{self.where} links {_text(full)!r} to object {_text(target)!r} of "
                    f"another file ({_text(file)!r}); {_SELF_CONTAINED}"
                )
            else:
                raise FileFormatError(
                    f"{self.where} holds {_text(full)!r}, a user-defined link (class {kind}) "
                    f"HDF5 would resolve through a plugin; {_SELF_CONTAINED}"
                )

    def check_soft(self) -> None:
        """Each soft link must name an object reached through hard links alone."""
        links = self.h5.id.links
        for name in self.soft:
            target = links.get_val(name)
            if not self._hard_path(_resolve_soft(name, target)):
                raise FileFormatError(
                    f"{self.where} holds a soft link {_text(name)!r} to {_text(target)!r}, "
                    f"which names no object of the file; {_SELF_CONTAINED}"
                )

    def _hard_path(self, path: bytes) -> bool:
        from h5py import h5g, h5l, h5o

        group = self.h5.id
        parts = path.split(b"/") if path else []
        for i, part in enumerate(parts):
            if not group.links.exists(part) or (group.links.get_info(part).type != h5l.TYPE_HARD):
                return False
            if i < len(parts) - 1:
                if h5o.get_info(group, part).type != h5o.TYPE_GROUP:
                    return False
                group = h5g.open(group, part)
        return bool(parts)


def _resolve_soft(name: bytes, target: bytes) -> bytes:
    """The path (relative to the root, as the link visitor names objects) a soft link names."""
    base = [] if target.startswith(b"/") else name.split(b"/")[:-1]
    parts: list[bytes] = list(base)
    for part in target.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":  # HDF5 has no "..": a literal name, which no Keras file uses
            return b"\0"
        parts.append(part)
    return b"/".join(parts)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def attr_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _check_dataset(dataset: Any, name: str, where: str) -> None:
    """Refuse a dataset whose values live outside the file or need a filter plugin.

    Only the creation property list is read: for a virtual dataset, even asking
    for its shape can open the source files.
    """
    from h5py import h5d

    plist = dataset.get_create_plist()
    if plist.get_layout() == h5d.VIRTUAL:
        source = _text(plist.get_virtual_filename(0)) if plist.get_virtual_count() else "?"
        raise FileFormatError(
            f"{where} stores dataset {name!r} as a virtual dataset mapped from "
            f"{source!r}; {_SELF_CONTAINED}"
        )
    if plist.get_external_count():
        raise FileFormatError(
            f"{where} stores dataset {name!r} in an external file "
            f"({_text(plist.get_external(0)[0])!r}); {_SELF_CONTAINED}"
        )
    for index in range(plist.get_nfilters()):
        code, _, _, filter_name = plist.get_filter(index)
        if code not in BUILTIN_FILTERS:
            raise FileFormatError(
                f"{where} stores dataset {name!r} through HDF5 filter {code} "
                f"({_text(filter_name) or 'unnamed'}), which is not built into HDF5: reading "
                "it would load a plugin library from this machine; weighttie reads only "
                "datasets stored plain or with HDF5's built-in filters"
            )


def walk_h5(
    h5: Any,
    where: str,
    limits: Limits,
    on_dataset: Callable[[str, Any], None] | None = None,
    on_group: Callable[[bytes, str], None] | None = None,
    linked: _HardLinks | None = None,
) -> None:
    """Check a weights file and visit its objects, within ``limits``, before any value is read.

    One pass of HDF5's own visitor (``h5o.visit``) over the objects: the high-level
    h5py API costs twice as much per object, which on a large model is most of the
    static reader's time. Each group's links are checked as it is reached
    (:class:`_Links`), each dataset (:func:`_check_dataset`) before ``on_dataset``
    sees it.

    The visitor reaches each object once, by its first name: a dataset HDF5 hard
    links under several names (one variable of several layers, as
    :func:`weighttie.save_model` writes it) is seen once. With ``linked``, each such
    dataset is recorded there, by object address, with the name it was seen by, and
    so is every ``vars`` group (where its other names can be).
    """
    from h5py import h5d, h5g, h5o

    links = _Links(h5, where, limits)
    links.check_group(h5.id, b"")
    fid = h5.id
    visited = 0
    pace = _Pace(where, H5_SECONDS, H5_SECONDS_PER_OBJECT)

    def visit(raw: bytes, info: Any) -> None:
        nonlocal visited
        visited += 1
        if visited > limits.h5_objects:
            raise LimitError(
                f"{where} holds more than {limits.h5_objects:,} HDF5 objects, the h5_objects limit",
                limit="h5_objects",
            )
        pace.check(visited, f"reading {visited:,} objects")  # healthy: 0.25 ms an object
        name = raw.decode("utf-8", "replace")
        # A layer's variables sit some three groups deeper per level (layers/<name>/vars/0).
        if name.count("/") > _slashes(limits):
            raise LimitError(
                f"{where} nests groups more than {_slashes(limits)} levels deep, the depth limit",
                limit="depth",
            )
        if info.type == h5o.TYPE_DATASET:
            dataset = h5d.open(fid, raw)
            _check_dataset(dataset, name, where)
            if linked is not None and info.rc > 1:
                linked.addresses[info.addr] = name
            if on_dataset is not None:
                on_dataset(name, dataset)
        elif info.type == h5o.TYPE_GROUP:
            links.check_group(h5g.open(fid, raw), raw)
            if linked is not None and (raw == b"vars" or raw.endswith(b"/vars")):
                linked.vars_groups.append(raw)
            if on_group is not None:
                on_group(raw, name)

    h5o.visit(fid, visit, info=True)
    links.check_soft()


@contextmanager
def h5_errors(path: str, what: str) -> Iterator[None]:
    """HDF5 reports damage with many exception types; turn each into one clear error."""
    try:
        yield
    except FileFormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise FileFormatError(
            f"{path!r}: {what} is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None


@dataclass
class H5Group:
    """One saveable in model.weights.h5: its variables and its child saveables.

    ``key`` is the saveable's own group name: an attribute's name, or for a layer
    of a model's ``layers`` list the snake-cased class name Keras gave it
    (``reversible_embedding``, ``transformer_decoder_1``).

    ``is_list`` is True for a group without ``vars``: no saveable (each writes its
    ``vars``, even empty) but a list or dict attribute, whose members Keras saves as
    it saves a model's ``layers``, each under its class's snake-cased name
    (``stages_list/hg_net_v2_stage``).
    """

    name: str | None
    variables: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    layers: list[H5Group] = field(default_factory=list)  # under "layers/" (models)
    attributes: dict[str, H5Group] = field(default_factory=dict)  # other child saveables
    key: str = ""
    is_list: bool = False


#: A model's attribute Keras saves beside its layers that is not a layer: the
#: optimizer (its variables are never counted; ``optimizer/vars/0`` is its iterations).
NOT_LAYERS = frozenset({"optimizer"})


@dataclass
class _HardLinks:
    """What a walk records for :func:`_other_names`: the datasets HDF5 links under more than
    one name (object address → the name the walk saw), and the ``vars`` groups visited."""

    addresses: dict[int, str] = field(default_factory=dict)
    vars_groups: list[bytes] = field(default_factory=list)


@dataclass
class Collected:
    """What one walk of a weights file found, before the tree is linked: group paths
    (with each group's own key), the ``vars`` groups' layer names, and the datasets."""

    groups: dict[str, str] = field(default_factory=dict)
    saveables: set[str] = field(default_factory=set)  # the groups holding a ``vars`` group
    named: list[tuple[str, Any]] = field(default_factory=list)
    datasets: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)
    objects: int = 0  # groups and datasets visited
    #: A variable's other names: the path of a hard link in a ``vars`` group → the path
    #: the dataset was visited by (one variable held by several layers).
    aliases: dict[str, str] = field(default_factory=dict)
    hard: _HardLinks = field(default_factory=_HardLinks)

    @classmethod
    def below(cls, prefix: str) -> Collected:
        """An empty collection of the tree below ``prefix`` (``"layers/bert_backbone/"``),
        whose own group is recorded."""
        found = cls()
        if prefix:
            found.groups[prefix[:-1]] = prefix[:-1].rpartition("/")[2]
        return found

    def add_group(self, path: str, prefix: str) -> bool:
        """Record the group at ``path`` below ``prefix``; True for a ``vars`` group (its
        owner is a saveable; the caller reads the layer name it may carry)."""
        owner, _, last = path.rpartition("/")
        if last == "vars":
            self.saveables.add(prefix + owner if owner else prefix[:-1])
            return True
        if last != "layers":
            self.groups[prefix + path] = last
        return False

    def merge(self, other: Collected, where: str) -> None:
        """Add another file's part of one tree (a shard): a dataset may be in one file only."""
        for name, key in other.groups.items():
            self.groups.setdefault(name, key)
        self.saveables |= other.saveables
        self.named += other.named
        seen = {name for name, _, _ in self.datasets}
        for dataset in other.datasets:
            if dataset[0] in seen:
                raise FileFormatError(
                    f"{where}: two weights files hold variable {dataset[0]!r}; expected each "
                    "variable in one file only (a damaged or mixed-up set of shards)"
                )
        self.datasets += other.datasets
        self.objects += other.objects
        self.aliases.update(other.aliases)  # a hard link stays inside its file


def collect_h5(
    h5: Any,
    where: str,
    limits: Limits,
    handles: dict[str, Any] | None = None,
    prefix: str = "",
    heaps: Heaps | None = None,
) -> Collected:
    """Walk one weights file (checked as :func:`walk_h5` checks it), its paths below
    ``prefix`` (``"layers/bert_backbone/"``: a backbone's file inside its task).

    With ``heaps`` (a file opened by :func:`~weighttie.io.hdf5_guard.open_h5_deferred`),
    a plain file's tree is read from its object headers
    (:func:`~weighttie.io.hdf5_headers.read_tree`, no HDF5 call an object); any other
    is walked through HDF5, and the layer names (strings in global heaps) are read
    after the walk, once the collections they point to are checked; a dataset whose
    values could point into a heap (strings, references) makes the whole file
    checked instead.
    """
    if heaps is not None and heaps.stream is not None:  # a plain file: its headers say it all
        tree = read_tree(heaps.stream, heaps.size, where, limits.h5_objects, _slashes(limits))
        if tree is not None:
            heaps.done = True  # HDF5 reads none of its strings: they were read here, bounded
            return _collected(tree, h5, prefix, handles)
    return _walked(h5, where, limits, handles, prefix, heaps)


def _walked(
    h5: Any,
    where: str,
    limits: Limits,
    handles: dict[str, Any] | None,
    prefix: str,
    heaps: Heaps | None,
) -> Collected:
    """What :func:`collect_h5` collects, through HDF5's walk (:func:`walk_h5`)."""
    from h5py import h5a, h5o

    found = Collected.below(prefix)
    names: list[tuple[str, Any]] = []  # (path, the vars group) whose name is to be read
    tagged: list[tuple[int, Any]] = []  # (index in datasets, an opaque dataset with a dtype)
    whole = False

    def on_dataset(name: str, ds: Any) -> None:
        nonlocal whole
        found.objects += 1
        dtype = ds.dtype
        if dtype.kind == "V" and dtype.names is None and h5a.exists(ds, _DTYPE_ATTR):
            tagged.append((len(found.datasets), ds))
        found.datasets.append((prefix + name, tuple(int(d) for d in ds.shape), str(dtype)))
        whole = whole or dtype.hasobject
        if handles is not None:  # kept open: values are read through them
            handles["/" + prefix + name] = ds

    def read_name(name: str, obj: Any) -> None:
        value = _scalar_attribute(obj, b"name")
        if value is not None:  # a layer name is one string; anything else is not
            found.named.append((prefix + name, value))

    def read_dtype(index: int, ds: Any) -> None:
        name, shape, stored = found.datasets[index]
        keras_name = _opaque_dtype(stored, _scalar_attribute(ds, _DTYPE_ATTR))
        if keras_name is not None:
            found.datasets[index] = (name, shape, keras_name)

    def on_group(raw: bytes, name: str) -> None:
        found.objects += 1
        if found.add_group(name, prefix):
            obj = h5o.open(h5.id, raw)
            if h5a.exists(obj, b"name"):
                if heaps is None:
                    read_name(name, obj)
                else:
                    names.append((name, obj))

    walk_h5(h5, where, limits, on_dataset, on_group, found.hard)
    if heaps is not None:
        headers = [h5o.get_info(obj).addr for _, obj in [*names, *tagged]]
        heaps.check(None if whole else headers)
        for name, obj in names:
            read_name(name, obj)
    for index, ds in tagged:
        read_dtype(index, ds)
    _other_names(h5, where, found, prefix)
    return found


def _slashes(limits: Limits) -> int:
    """The most slashes a path may hold: a layer's variables sit some three groups deeper per
    level of nesting (``layers/<name>/vars/0``)."""
    return 3 * (limits.depth + 1)


def _collected(tree: Tree, h5: Any, prefix: str, handles: dict[str, Any] | None) -> Collected:
    """What :func:`collect_h5` collects, from a tree read from the object headers."""
    found = Collected.below(prefix)
    found.objects = tree.objects
    for path in tree.groups:
        if found.add_group(path, prefix) and path in tree.names:
            found.named.append((prefix + path, tree.names[path]))
    for dataset in tree.datasets:
        dtype = dataset.dtype
        if dataset.dtype_attribute is not None and dtype.startswith("|V"):
            dtype = _opaque_dtype(dtype, dataset.dtype_attribute) or dtype
        found.datasets.append((prefix + dataset.path, dataset.shape, dtype))
        if handles is not None:  # values are read through them
            held = dataset.values or _open_dataset(h5, dataset.path)
            handles["/" + prefix + dataset.path] = held
    found.aliases = {prefix + alias: prefix + path for alias, path in tree.aliases.items()}
    return found


def _open_dataset(h5: Any, path: str) -> Any:
    from h5py import h5d

    return h5d.open(h5.id, path.encode())


def _scalar_attribute(obj: Any, attribute: bytes) -> Any:
    """The value of an HDF5 object's attribute (None if it is not a scalar)."""
    import numpy as np
    from h5py import h5a

    attr = h5a.open(obj, attribute)
    if attr.shape != ():
        return None
    value = np.empty((), dtype=attr.dtype)
    attr.read(value)
    return value[()]


def _other_names(h5: Any, where: str, found: Collected, prefix: str) -> None:
    """Find the other names of the datasets hard linked more than once in the ``vars``
    groups (``found.hard``), and record each as an alias of the name the walk saw.

    Each ``vars`` group was visited once, and its links were counted against the
    limits as it was checked; only its hard links are looked at here.
    """
    from h5py import h5g, h5l, h5o

    linked = found.hard.addresses
    if not linked:
        return
    pace = _Pace(where, H5_SECONDS, H5_SECONDS_PER_OBJECT)
    visited = {name for name, _, _ in found.datasets}
    seen = 0
    for raw in found.hard.vars_groups:
        group = h5g.open(h5.id, raw)
        for link in _hard_links(group, h5l):
            seen += 1
            pace.check(seen, f"following {seen:,} links")
            info = h5o.get_info(group, link)
            canonical = linked.get(info.addr)
            path = prefix + (raw + b"/" + link).decode("utf-8", "replace")
            if info.type != h5o.TYPE_DATASET or canonical is None or path in visited:
                continue
            found.aliases[path] = prefix + canonical


def _hard_links(group: Any, h5l: Any) -> list[bytes]:
    names: list[bytes] = []

    def listed(name: bytes, info: Any) -> None:
        if info.type == h5l.TYPE_HARD:
            names.append(name)

    group.links.iterate(listed, info=True)
    return names


#: The attribute Keras 3 sets on a dataset whose values NumPy has no type for: it
#: writes a ``bfloat16`` variable as two opaque bytes (``|V2``) with the attribute
#: ``dtype = "bfloat16"``, and reads such a dataset back as ``bfloat16``
#: (``H5IOStore.__getitem__``).
_DTYPE_ATTR = b"dtype"
#: What Keras writes in the attribute, and the width of the opaque type it goes with.
_KERAS_OPAQUE = {"bfloat16": "|V2"}


def _opaque_dtype(stored: str, attribute: Any) -> str | None:
    """The Keras dtype an opaque dataset holds, when its ``dtype`` attribute says so and the
    stored width fits (``|V2`` with ``"bfloat16"``); None otherwise: the dataset keeps
    NumPy's name of its type (``|V1``: one opaque byte, as Keras 3.15 writes a
    ``float8_e4m3fn`` variable, with nothing to tell which 1-byte type it was)."""
    if isinstance(attribute, bytes):
        attribute = attribute.decode("utf-8", "replace")
    if isinstance(attribute, str) and _KERAS_OPAQUE.get(attribute) == stored:
        return attribute
    return None


def read_group(
    h5: Any,
    where: str,
    limits: Limits,
    handles: dict[str, Any] | None = None,
    heaps: Heaps | None = None,
) -> H5Group:
    """Read the tree of saveables in model.weights.h5: names, variable shapes and dtypes."""
    return link_groups(collect_h5(h5, where, limits, handles, heaps=heaps))


def link_groups(found: Collected) -> H5Group:
    """The tree of saveables of what one or more walks found."""
    root = H5Group(name=None)
    groups: dict[str, H5Group] = {"": root}
    for name, key in found.groups.items():
        groups[name] = H5Group(name=None, key=key, is_list=name not in found.saveables)
    # Link each saveable group to its parent: "a/layers/b" is a layer of "a",
    # "a/cell" an attribute of "a".
    for name in sorted(groups, key=lambda n: (n.count("/"), n)):
        if not name:
            continue
        parent, _, key = name.rpartition("/")
        if parent.endswith("layers") and parent.rpartition("/")[2] == "layers":
            owner = groups.get(parent.rpartition("/")[0])
            if owner is not None:
                owner.layers.append(groups[name])
            continue
        owner = groups.get(parent)
        if owner is not None:
            owner.attributes[key] = groups[name]
    for saveable in groups.values():  # a model's optimizer (the file's root is a model)
        if saveable is root or saveable.layers:
            for key in NOT_LAYERS:
                saveable.attributes.pop(key, None)
    for name, value in found.named:
        group = groups.get(name.rpartition("/")[0] if "/" in name else "")
        if group is not None:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str) or group.name is None:  # a shard may not repeat it
                group.name = value if isinstance(value, str) else None
    specs = {name: (shape, dtype) for name, shape, dtype in found.datasets}
    entries = [(name, name, shape, dtype) for name, shape, dtype in found.datasets]
    entries += [(alias, name, *specs[name]) for alias, name in found.aliases.items()]
    numbered: dict[int, list[tuple[int, tuple[str, tuple[int, ...], str]]]] = {}
    for place, name, shape, dtype in entries:  # a hard link: its own place, the variable's key
        owner_path, _, index = place.rpartition("/")
        vars_owner, _, leaf = owner_path.rpartition("/")
        if leaf != "vars" or not index.isdigit():
            continue
        group = groups.get(vars_owner if "/" in owner_path else "")
        if group is not None:
            numbered.setdefault(id(group), []).append((int(index), ("/" + name, shape, dtype)))
    for group in groups.values():
        group.variables = [v for _, v in sorted(numbered.get(id(group), []), key=lambda e: e[0])]
    return root
