"""``--load`` without weight values: a model built from its config, traced, never filled.

``weighttie report --load FILE_OR_FOLDER`` asks Keras how the model runs: which
layer calls which, how often, and which variables each call reads. A keras_hub
model's file holds constructor arguments, not a graph, so only Keras can say.
Loading the model for that would create every weight and read every value from
the file (GPT-2 small: 16 s and 2.1 GB); none of it is needed to count calls.

So the model is built from its config with no weight values
(:func:`weighttie._keras.deferred.no_weight_values`: each variable has its shape,
dtype and place, and no data), checked against the weights file's shapes by
Keras's own loader walk (a variable of another shape is what a real load refuses:
the file does not hold this model), and analyzed by the walker, whose symbolic
pass counts every call and read (docs/concepts.md). The report says
``source: traced``; findings that need values (``broken-tie``) are not looked for,
and a note says so.

Where that cannot be done, the answer stays honest:

* a class the config names cannot be imported here (keras_hub missing, a custom
  class not registered), or the model's builder needs a weight's value (it
  computes one weight from another): one warning line, and the static report
  (counts exact, calls unknown where the file has no graph), with a note;
* Keras older than 3.5 (no symbolic scope), and legacy ``.h5`` files: the model is
  loaded with its values, as ``--load`` always did (``source: loaded``).

Before Keras is imported, the bounded static reader has read the file once (limits,
damaged or hostile files refused), as before every ``--load``: its facts give the
static report a fallback returns, and a ``.keras`` file's config, parsed within the
limits, is the one the model is built from.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from weighttie.errors import (
    FileFormatError,
    TieValueError,
    UnsafeModelError,
    WeighttieError,
    first_line,
)
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.report import Report, Source

__all__ = ["TRACED_NOTE", "TracedFallbackWarning", "traced_report"]

#: The note of every traced report.
TRACED_NOTE = (
    "built from its config without weight values (source: traced): calls, uses and counts "
    "are Keras's, but findings that need values (broken-tie) were not looked for; the "
    "static report (without --load) reads the file's values for them"
)

_PRESET_CONFIG = "config.json"
_PRESET_TASK = "task.json"
_WEIGHTS = "model.weights.h5"
_INDEX = "model.weights.json"
_TASK_WEIGHTS = "task.weights.h5"


class TracedFallbackWarning(UserWarning):
    """``--load`` could not build the model without values; the static report stands in."""


class _CannotBuild(Exception):
    """The model cannot be built without values here; the message says why (one line)."""


def traced_report(
    path: str | os.PathLike[str],
    *,
    unsafe: bool = False,
    findings: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """The report of a model file or folder, built through Keras without weight values.

    Args:
        path: a ``.keras`` file or a model folder (a keras_hub preset, sharded weights,
            ``model.save(folder, zipped=False)``); a legacy ``.h5`` file is loaded with
            its values (``source: loaded``).
        unsafe: let Keras run code from the config (Lambda layers).
        findings: look for the findings that need no values (``twin-branches``).
        limits: bounds on what the file may hold (docs/trust-model.md).

    Raises:
        WeighttieError: the file cannot be read, Keras cannot be imported, the config
            does not build (a real load would fail too), or a weight in the file has
            another shape than the model built from the config holds.

    Warns:
        TracedFallbackWarning: a class cannot be imported, or the model's builder
            needs values; the static report is returned, with a note.

    Example:
        >>> report = traced_report("gpt2.keras")             # doctest: +SKIP
        >>> report.model.source, report.params.duplicated    # doctest: +SKIP
        ('traced', 38597376)
    """
    from weighttie.model_files import FileKind, check_model_file
    from weighttie.static.huggingface import is_checkpoint_folder

    file = os.fspath(path)
    folder = os.path.isdir(file)
    if not folder and check_model_file(file) is not FileKind.KERAS:
        # A legacy .h5 file: loaded with its values (load_model checks it first).
        return _loaded_report(file, unsafe=unsafe, findings=findings, limits=limits)
    static, config = _read_statically(file, folder, limits)  # the bounded reader, once
    if folder and is_checkpoint_folder(file):
        raise FileFormatError(
            f"{file!r} is a model folder, which weighttie reads statically only; drop --load "
            "(a Hugging Face checkpoint holds no Keras config to build a model from)"
        )
    _import_keras()
    from weighttie._keras import deferred

    why_not = deferred.supported()
    if why_not is not None:
        if folder:
            return _fallback(static, why_not)
        return _loaded_report(file, unsafe=unsafe, findings=findings, limits=limits)
    try:
        if folder:
            config = _read_json(file, _PRESET_CONFIG, limits)
        return _traced(
            _Source(file, folder, config, static, limits), unsafe=unsafe, findings=findings
        )
    except _CannotBuild as exc:
        return _fallback(static, str(exc))


@dataclass(frozen=True)
class _Source:
    """A file or folder the bounded reader has read: ``config`` is a ``.keras`` file's
    config, or a folder's ``config.json``; ``static`` its static report."""

    file: str
    folder: bool
    config: dict[str, Any]
    static: Report
    limits: Limits


def _read_statically(file: str, folder: bool, limits: Limits) -> tuple[Report, dict[str, Any]]:
    """The static report (no findings) and, for a ``.keras`` file, its config: one read."""
    from weighttie.build import build_report
    from weighttie.static import open_facts
    from weighttie.static.keras3 import open_keras

    if folder:
        with open_facts(file, findings=False, limits=limits) as facts:
            return build_report(facts, findings=False), {}
    with open_keras(file, False, limits) as (config, facts):
        return build_report(facts, findings=False), config


def _import_keras() -> None:
    try:
        import keras  # noqa: F401
    except ImportError as exc:
        raise _keras_missing(exc) from None


def _keras_missing(exc: ImportError) -> WeighttieError:
    return WeighttieError(
        f"--load reads the model through Keras, which cannot be imported here "
        f"(no module {exc.name or exc!s}); install Keras and a backend "
        "(docs/install.md), or drop --load for the static report"
    )


def _loaded_report(path: str, *, unsafe: bool, findings: bool, limits: Limits) -> Report:
    """The model loaded with its values (what ``--load`` did before it was traced)."""
    from weighttie.load import load_model

    try:
        # one line per error: Keras's warnings stay out
        model = load_model(path, unsafe=unsafe, compile=False, limits=limits, quiet=True)
    except ImportError as exc:
        raise _keras_missing(exc) from None
    from weighttie.walk import analyze

    return analyze(model, findings=findings, file=path)


def _fallback(static: Report, why: str) -> Report:
    where = static.model.file or static.model.name
    message = (
        f"--load could not build {where!r} without weight values ({why}); this is the static report"
    )
    warnings.warn(message, TracedFallbackWarning, stacklevel=3)
    note = (
        f"--load could not build the model without weight values ({why}): this is the "
        "static report, read from the file alone"
    )
    return replace(static, model=replace(static.model, notes=(*static.model.notes, note)))


def _traced(source: _Source, *, unsafe: bool, findings: bool) -> Report:
    from weighttie._keras import deferred
    from weighttie.build import build_report
    from weighttie.facts import ValueAccess
    from weighttie.walk import model_facts

    file = source.file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's warnings (an optimizer not loaded …) stay out
        try:
            with deferred.no_weight_values() as made:
                model = (
                    _build_folder(source, unsafe) if source.folder else _build_keras(source, unsafe)
                )
        except deferred.ValuesNeeded as exc:
            raise _CannotBuild(f"its builder reads a weight's value: {exc}") from None
        if made.given and max(size for _, size in made.given) > 1 << 20:
            variable, size = max(made.given, key=lambda pair: pair[1])
            raise _CannotBuild(
                f"its builder makes {variable.path!r} from a value of {size:,} elements"
            )
        with _weight_stores(source, model) as loads:
            checked = deferred.check_shapes(loads)
        if checked.mismatches:
            raise FileFormatError(
                f"{file!r} does not hold the model its config builds: {checked.mismatches[0]} "
                "(Keras refuses to load it: the config names another class or other sizes); "
                "the static report (without --load) reads the file without Keras"
            )
        if source.static.ties:
            _bind_declared_ties(model, source)
        try:
            facts = model_facts(model, file=file)
        except deferred.ValuesNeeded as exc:
            raise _CannotBuild(f"analyzing it reads a weight's value: {exc}") from None
    access = None if facts.access is None else ValueAccess(facts.access.fingerprint, None)
    info = replace(facts.model, source=Source.TRACED, notes=(*facts.model.notes, TRACED_NOTE))
    return build_report(replace(facts, model=info, access=access), findings=findings)


# -- building from the config -----------------------------------------------------------------


def _build_keras(source: _Source, unsafe: bool) -> Any:
    """A ``.keras`` file's model, as ``keras.saving.load_model`` makes it before its values,
    from the config the bounded reader parsed."""
    return _deserialize(source.config, source.file, unsafe)


def _deserialize(config: dict[str, Any], file: str, unsafe: bool) -> Any:
    from weighttie._keras import deferred

    try:
        return deferred.deserialize(_without_preprocessor(config), safe_mode=not unsafe)
    except deferred.ValuesNeeded:
        raise
    except Exception as exc:
        raise _build_error(exc, file, config, unsafe) from None


def _without_preprocessor(config: dict[str, Any]) -> dict[str, Any]:
    """A keras_hub task's config without its preprocessor: a tokenizer holds no weights,
    takes no part in the model's call, and needs the preset's or archive's assets."""
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("preprocessor"), dict):
        return {**config, "config": {**inner, "preprocessor": None}}
    return config


def _build_error(exc: Exception, file: str, config: Any, unsafe: bool) -> Exception:
    message = str(exc)
    if not unsafe and "safe_mode=False" in message:
        return UnsafeModelError(
            f"{file!r} contains Python code (e.g. a Lambda layer) that Keras does not run in "
            "safe mode; pass --unsafe (Python: unsafe=True) only if you trust the file"
        )
    missing = _unimportable_classes(config)
    if missing:
        return _CannotBuild(missing)
    if "Could not locate" in message or "Could not deserialize" in message:
        return _CannotBuild(
            f"Keras cannot find a class: {first_line(exc, 200)}; if the file's custom classes "
            "are defined in your code, import that module first: --import your.module"
        )
    return FileFormatError(
        f"Keras could not build {file!r} from its config: {type(exc).__name__}: {first_line(exc)}"
    )


def _unimportable_classes(config: Any) -> str | None:
    """Which classes a config names whose module cannot be imported here, in a few words
    (keras_hub's, with keras_hub missing), or None."""
    import importlib

    missing: dict[str, set[str]] = {}
    stack: list[Any] = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, name = item.get("module"), item.get("class_name")
            if isinstance(module, str) and isinstance(name, str) and module:
                try:
                    importlib.import_module(module)
                except Exception:
                    missing.setdefault(module.split(".")[0], set()).add(name)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if not missing:
        return None
    package, names = sorted(missing.items())[0]
    hint = ": pip install keras-hub" if package == "keras_hub" else ""
    return (
        f"it holds {package} classes ({', '.join(sorted(names))}), and {package} cannot be "
        f"imported here{hint}"
    )


def _read_json(folder: str, name: str, limits: Limits) -> dict[str, Any]:
    """A folder's JSON file (the static reader checked it), read again within ``limits``."""
    from weighttie.files import read_limited
    from weighttie.io.config_json import parse_model_config

    data = read_limited(
        os.path.join(folder, name), limit=limits.config_bytes, limit_name="config_bytes", what=name
    )
    doc = parse_model_config(data, limits=limits, where=f"{folder!r}: {name}")
    if not isinstance(doc, dict):
        raise FileFormatError(f"{folder!r}: {name} must hold a JSON object")
    return doc


def _build_folder(source: _Source, unsafe: bool) -> Any:
    """A folder's model: a keras_hub preset as ``from_preset(..., load_weights=False)`` builds
    it (its dtype resolved as keras_hub resolves it; no preprocessor), or the graph of a
    model saved with ``zipped=False``."""
    folder = source.file
    task = os.path.lexists(os.path.join(folder, _PRESET_TASK))
    config = _read_json(folder, _PRESET_TASK, source.limits) if task else source.config
    registered = str(config.get("registered_name") or "")
    if not registered.startswith("keras_hub>") and not task:
        return _deserialize(config, folder, unsafe)
    from weighttie._keras import deferred

    try:
        import keras_hub  # noqa: F401
    except ImportError:
        raise _CannotBuild(
            f"it is a keras_hub preset ({registered.partition('>')[2] or registered}), and "
            "keras_hub cannot be imported here: pip install keras-hub"
        ) from None
    import keras

    cls = keras.saving.get_registered_object(registered)
    if cls is None:
        raise _CannotBuild(f"cannot import {registered!r} here")
    extra = {"preprocessor": None} if task else {}
    try:
        with deferred.safe_mode(not unsafe):
            return cls.from_preset(folder, load_weights=False, **extra)
    except deferred.ValuesNeeded:
        raise
    except Exception as exc:
        raise _build_error(exc, folder, config, unsafe) from None


# -- the weights files, shapes only -----------------------------------------------------------


@contextmanager
def _weight_stores(source: _Source, model: Any) -> Iterator[list[tuple[Any, Any, set[int]]]]:
    """What Keras's loader would read for ``model``: ``(saveable, store, skipped ids)``."""
    import h5py

    from weighttie._keras import deferred
    from weighttie.io.hdf5_guard import LazyH5
    from weighttie.io.keras_zip import KerasArchive

    file = source.file
    with ExitStack() as stack:
        if not source.folder:
            archive = stack.enter_context(KerasArchive(file, limits=source.limits))
            if not archive.has(_WEIGHTS):
                yield []
                return
            # Names and shapes only: no variable-length value (the global heap) is read.
            h5, _ = stack.enter_context(archive.weights_deferred())
            h5 = h5.opened() if isinstance(h5, LazyH5) else h5  # Keras's store takes h5py's
            yield [(model, deferred.declared_store([h5], _WEIGHTS), set())]
            return

        def opened(names: list[str]) -> list[Any]:
            return [stack.enter_context(h5py.File(os.path.join(file, n), "r")) for n in names]

        weights = opened(_model_weight_files(file, source.limits))
        task_weights = os.path.join(file, _TASK_WEIGHTS)
        backbone = getattr(model, "backbone", None)
        if backbone is not None and os.path.lexists(os.path.join(file, _PRESET_TASK)):
            loads: list[tuple[Any, Any, set[int]]] = [
                (backbone, deferred.declared_store(weights, _WEIGHTS), set())
            ]
            if os.path.lexists(task_weights):
                skipped = {id(layer) for layer in deferred.flatten_layers(backbone)}
                store = deferred.declared_store(opened([_TASK_WEIGHTS]), _TASK_WEIGHTS)
                loads.append((model, store, skipped))
            yield loads
            return
        yield [(model, deferred.declared_store(weights, _WEIGHTS), set())]


def _model_weight_files(folder: str, limits: Limits) -> list[str]:
    """``model.weights.h5``, or the shards its index names (checked by the static reader)."""
    if os.path.lexists(os.path.join(folder, _WEIGHTS)):
        return [_WEIGHTS]
    index = _read_json(folder, _INDEX, limits)
    names: set[str] = set()
    for value in (index.get("weight_map") or {}).values():
        names.update([value] if isinstance(value, str) else value)
    return sorted(names)


# -- ties the file declares ---------------------------------------------------------------------


def _bind_declared_ties(model: Any, source: _Source) -> None:
    """Bind the file's ties as ``weighttie.load_model`` binds them, values aside: a tie the
    layers cannot take fails with load_model's message; the saved copies, which
    load_model compares, the static reader compared (a tie whose copies differ is one a
    real load refuses)."""
    from weighttie.load import bind_file_ties

    file = source.file
    bind_file_ties(model, file, source.config, check_values=False, limits=source.limits)
    broken = [t for t in source.static.ties if not t.bound]
    if broken:
        tie = broken[0]
        raise TieValueError(
            f"{file!r} ties {tie.target!r} to {tie.source!r}, but the copies saved in the file "
            "disagree, so the file was not saved from a model with this tie; load it with keras "
            "and call tie_weights(..., keep=...)"
        )
