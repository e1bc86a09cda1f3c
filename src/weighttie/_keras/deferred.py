"""Private Keras access for building a model without weight values (``--load``).

Part of :mod:`weighttie._keras`, the package that holds every private Keras access,
kept in its own module so that building without values is one file's work when
Keras changes. Each access has a test in ``tests/_keras/test_keras_internals.py``.

How a model is built without values (Keras 3.5 or later):

* **Deferred variables.** Inside a ``keras.StatelessScope``, Keras creates a
  variable given an initializer without a value (``_value`` None, the
  initializer kept), as it does to build a model before placing it on devices;
  reading its ``value`` then calls the initializer. Here every such initializer
  is guarded: it runs only inside a symbolic call (Keras's ``SymbolicScope``, the
  one ``compute_output_spec`` enters under every backend; under torch, also only
  on the ``meta`` device), where it makes a placeholder of the shape, not data.
  Anywhere else, reading a value raises :class:`ValuesNeeded`: a builder that
  needs a weight's value (to compute another from it) is found, never paid for.
* **Given values.** A variable made from a value, not an initializer (an
  optimizer's iteration count, which a keras_hub task's ``compile`` creates), is
  made as given, outside the scope: its value was in memory already.
* **Shapes checked, values not read.** :func:`check_shapes` runs Keras's own
  loader walk (``saving_lib._load_state``, what ``load_model`` and
  ``load_weights`` run) over a store that answers with each dataset's shape,
  and each variable's ``assign`` compares the shape instead of copying values:
  the shapes a real load would refuse are found, no value is read.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from weighttie.errors import first_line

__all__ = [
    "Declared",
    "Deferred",
    "ShapeMismatch",
    "ValuesNeeded",
    "check_shapes",
    "declared_store",
    "deserialize",
    "flatten_layers",
    "holds_no_value",
    "no_weight_values",
    "safe_mode",
    "supported",
]

_LOCK = threading.RLock()


class ValuesNeeded(Exception):
    """A weight's value was needed outside a symbolic call; the message names it."""


class ShapeMismatch(Exception):
    """A weights file holds a variable of another shape than the model built."""


def supported() -> str | None:
    """None where this Keras can build without values; else why not, in a few words."""
    try:
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope  # noqa: F401
    except ImportError:
        import keras

        return f"Keras {keras.__version__} has no symbolic scope (Keras 3.5 added it)"
    return None


def _in_symbolic_call() -> bool:
    """Whether a value read now makes a placeholder, not data: inside Keras's symbolic
    scope, and under torch on the ``meta`` device (torch's ``compute_output_spec``
    retries a failed ``meta`` call on real tensors, inside the same scope)."""
    import keras
    from keras.src.backend.common.symbolic_scope import in_symbolic_scope

    if not in_symbolic_scope():
        return False
    if keras.config.backend() == "torch":
        from keras.src.backend.torch.core import get_device

        return str(get_device()) == "meta"
    return True


class _Guarded:
    """A deferred variable's initializer that makes placeholders in symbolic calls only."""

    def __init__(self, initializer: Callable[..., Any], variable: Any) -> None:
        self.initializer = initializer
        self.variable = variable

    def __call__(self, shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        if not _in_symbolic_call():
            raise ValuesNeeded(
                f"the value of {self.variable.path!r} {tuple(shape)} was read outside a "
                "symbolic call"
            )
        # A placeholder of the shape: zeros cost one op where a random initializer
        # builds several (the symbolic pass reads every variable, so this is most of
        # what --load costs beyond the call itself).
        import keras

        return keras.ops.zeros(tuple(shape), dtype=dtype or keras.config.floatx())

    def get_config(self) -> Any:  # an initializer's own config, if asked
        return getattr(self.initializer, "get_config", dict)()


@dataclass
class Deferred:
    """What :func:`no_weight_values` saw: the variables made without a value, and the
    ones made from a value given (with its size in elements)."""

    variables: list[Any] = field(default_factory=list)
    given: list[tuple[Any, int]] = field(default_factory=list)


def holds_no_value(variable: Any) -> bool:
    """Whether ``variable`` holds no value (made under :func:`no_weight_values`)."""
    return getattr(variable, "_value", None) is None and isinstance(
        getattr(variable, "_initializer", None), _Guarded
    )


@contextlib.contextmanager
def no_weight_values() -> Iterator[Deferred]:
    """Within: variables given an initializer are made without values (module docstring).

    Only this thread's variables are deferred (Keras's stateless scope is per thread
    too). The variables stay without values afterwards; they are taken off Keras's list
    of variables to initialize when a stateless scope ends (that would allocate
    them), so a model built here holds no weight values for as long as it lives.
    It can be inspected and traced symbolically, not run on data.

    Raises:
        ValuesNeeded: (from the block) a builder read a weight's value.
    """
    import keras
    from keras.src.backend.common import global_state

    from weighttie._keras import variable_base

    KerasVariable = variable_base()

    seen = Deferred()
    original = KerasVariable.__dict__["__init__"]
    thread = threading.get_ident()

    @functools.wraps(original)
    def __init__(self: Any, initializer: Any, *args: Any, **kwargs: Any) -> None:
        if threading.get_ident() != thread:  # another thread's variables are its own
            original(self, initializer, *args, **kwargs)
            return
        if isinstance(initializer, str):
            initializer = keras.initializers.get(initializer)
        if callable(initializer):
            original(self, _Guarded(initializer, self), *args, **kwargs)
            seen.variables.append(self)
            return
        with _outside_stateless_scope():
            original(self, initializer, *args, **kwargs)
        seen.given.append((self, int(_size(getattr(self, "shape", ())))))

    with _LOCK:
        scope = keras.StatelessScope(initialize_variables=False)
        KerasVariable.__init__ = __init__
        try:
            with scope:
                yield seen
        finally:
            KerasVariable.__init__ = original
            mine = {id(v) for v in seen.variables}
            waiting = global_state.get_global_attribute("uninitialized_variables")
            if waiting:
                waiting[:] = [v for v in waiting if id(v) not in mine]


@contextlib.contextmanager
def _outside_stateless_scope() -> Iterator[None]:
    from keras.src.backend.common import global_state

    scope = global_state.get_global_attribute("stateless_scope")
    global_state.set_global_attribute("stateless_scope", None)
    try:
        yield
    finally:
        global_state.set_global_attribute("stateless_scope", scope)


def _size(shape: Any) -> int:
    size = 1
    for d in shape:
        size *= int(d)
    return size


def deserialize(config: dict[str, Any], *, safe_mode: bool) -> Any:
    """A model from a ``.keras`` file's config, as ``keras.saving.load_model`` makes it
    before reading values (``saving_lib._model_from_config``, not compiled).

    ``config`` is left as it was (Keras's deserializer takes keys out of the dicts it
    is given: it gets a copy)."""
    import copy

    import keras
    from keras.src.saving.serialization_lib import ObjectSharingScope

    config = {**copy.deepcopy(config), "compile_config": None}
    with ObjectSharingScope():
        return keras.saving.deserialize_keras_object(config, safe_mode=safe_mode)


@contextlib.contextmanager
def safe_mode(on: bool) -> Iterator[None]:
    """Keras's safe mode for every deserialization inside (keras_hub's ``from_preset``
    deserializes without a ``safe_mode`` argument)."""
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(on):
        yield


def flatten_layers(layer: Any) -> list[Any]:
    """``layer`` and every layer inside it (what ``load_weights``'s ``objects_to_skip`` gets
    from keras_hub for a task's backbone)."""
    return list(layer._flatten_layers())


# -- checking the built model against a weights file's shapes ----------------------------


@dataclass(frozen=True)
class Declared:
    """A dataset of a weights file as a variable store gives it: shape only, no value."""

    shape: tuple[int, ...]
    where: str


class _DeclaredEntries:
    """The reading side of Keras's ``H5IOStore`` over open ``h5py.File`` s, shapes only."""

    name: str
    _groups: set[str]
    _vars: dict[str, dict[str, Declared]]
    _entry: dict[str, Declared]

    def index(self, files: Sequence[Any]) -> None:
        """Every group's path, and every ``vars`` group's datasets (shapes): one walk of
        each file's metadata, so that the loader's many lookups are a dict's."""
        import h5py

        self._groups, self._vars, self._entry = set(), {}, {}

        def visit(name: str, item: Any) -> None:
            if isinstance(item, h5py.Group):
                self._groups.add(name)
            elif isinstance(item, h5py.Dataset):
                group, _, key = name.rpartition("/")
                if group == "vars" or group.endswith("/vars"):
                    declared = Declared(tuple(int(d) for d in item.shape), f"/{name}")
                    self._vars.setdefault(group, {}).setdefault(key, declared)

        for h5 in files:
            h5.visititems(visit)

    def __bool__(self) -> bool:
        return True

    def get(self, path: str) -> Any:
        self._entry = self._vars.get(f"{path}/vars" if path else "vars", {})
        return self

    def has_path(self, path: str) -> bool:
        return path.strip("/") in self._groups

    def keys(self) -> Any:
        return self._entry.keys()

    def __len__(self) -> int:
        return len(self._entry)

    def __contains__(self, key: object) -> bool:
        return key in self._entry

    def __getitem__(self, key: str) -> Declared:
        return self._entry[key]

    def close(self) -> None:
        pass


@functools.cache
def _store_class() -> type:
    # An H5IOStore to Keras's loader, which checks the store's type; its __init__ (which
    # opens a file) is never run.
    from keras.src.saving.saving_lib import H5IOStore

    return type("declared_store", (_DeclaredEntries, H5IOStore), {})


def declared_store(files: Sequence[Any], name: str) -> Any:
    """Keras's weights store (``H5IOStore``'s reading side) answering with shapes only.

    ``files``: open ``h5py.File`` s of one tree (a weights file, or the shards of
    one); a layer's ``vars`` are gathered from every file holding them (a shard
    may hold part of a layer's variables). Only metadata is read.
    """
    cls: Any = _store_class()
    store = cls.__new__(cls)
    store.name = name
    store.index(files)
    return store


@dataclass(frozen=True)
class Checked:
    """What :func:`check_shapes` found: shapes that differ (what a real load refuses), and
    layers whose loading needs values (checked no further: Keras computes with them)."""

    mismatches: tuple[str, ...]
    need_values: tuple[str, ...]


def check_shapes(loads: Sequence[tuple[Any, Any, set[int]]]) -> Checked:
    """Run Keras's loader walk over each ``(saveable, store, skipped ids)`` with shapes only.

    Every saveable's ``load_own_variables`` runs as in ``load_model`` /
    ``load_weights``; a variable's ``assign`` compares the shape it is given with its
    own and copies nothing. A layer whose loading computes with values (one that
    interpolates a position table from the saved one) cannot be checked without
    them: it is listed in ``need_values``.
    """
    from keras.src.saving import saving_lib

    mismatches: list[str] = []
    need_values: list[str] = []
    classes: set[Any] = _assignable_classes([saveable for saveable, _, _ in loads])

    def assign(self: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Declared):
            if tuple(value.shape) != tuple(int(d) for d in self.shape):
                raise ShapeMismatch(
                    f"{value.where} has shape {value.shape}; the model built from the "
                    f"config holds {self.path!r} of shape {tuple(int(d) for d in self.shape)}"
                )
            return None
        raise ValuesNeeded(f"loading {self.path!r} computes a value")

    parameters = inspect.signature(saving_lib._load_state).parameters
    with _LOCK, _skip_sets_remembered():
        saved = {cls: cls.__dict__.get("assign") for cls in classes}
        for cls in classes:
            cls.assign = assign
        try:
            for saveable, store, skipped in loads:
                errors: dict[int, tuple[Any, BaseException]] = {}
                kwargs: dict[str, Any] = {"visited_saveables": set(skipped)}
                if "failed_saveables" in parameters:
                    kwargs.update(failed_saveables=set(), error_msgs=errors)
                try:
                    saving_lib._load_state(saveable, store, None, "", **kwargs)
                except (ShapeMismatch, ValuesNeeded, ValueError) as failed:
                    errors[id(failed)] = (saveable, failed)
                for layer, error in errors.values():
                    where = str(getattr(layer, "path", None) or getattr(layer, "name", "?"))
                    if isinstance(error, ValuesNeeded):
                        need_values.append(where)
                    else:
                        mismatches.append(first_line(error))
        finally:
            for cls, method in saved.items():
                if method is None:
                    delattr(cls, "assign")
                else:
                    cls.assign = method
    return Checked(tuple(mismatches), tuple(sorted(set(need_values))))


@contextlib.contextmanager
def _skip_sets_remembered() -> Iterator[None]:
    """Within: Keras's loader walk computes each kind's attribute skip set once.

    ``saving_lib._walk_saveable`` asks ``get_attr_skipset(kind)`` for every saveable it
    reaches; Keras 3.15 keeps the set under a key it never reads back
    (``saving_attr_skipset_…``, read as ``…_skiplist_…``), so each call builds a
    reference ``Layer()`` and lists its attributes again: 456 times for the 1.7 B
    preset, about 0.3 s. The set depends on the kind alone; here each is computed once,
    as Keras means to.
    """
    from keras.src.saving import saving_lib

    original = saving_lib.get_attr_skipset
    known: dict[str, Any] = {}

    def get_attr_skipset(obj_type: str) -> Any:
        if obj_type not in known:
            known[obj_type] = original(obj_type)
        return known[obj_type]

    saving_lib.get_attr_skipset = get_attr_skipset
    try:
        yield
    finally:
        saving_lib.get_attr_skipset = original


def _assignable_classes(saveables: Sequence[Any]) -> set[type]:
    """The variable classes whose ``assign`` a load may call: the backend's and the models'."""
    from keras.src.backend import Variable

    from weighttie._keras import variable_base

    KerasVariable = variable_base()

    classes: set[type] = {Variable, KerasVariable}
    for saveable in saveables:
        for variable in getattr(saveable, "variables", ()):
            classes.add(type(variable))
    return classes
