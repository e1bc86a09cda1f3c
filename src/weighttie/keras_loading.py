"""Loading a model file through Keras, after the bounded reader has seen it.

Keras is imported only once the file has passed weighttie's own checks
(:func:`weighttie.static.check_before_load`): a file over a limit, damaged, or
reaching outside itself is refused before a backend loads (seconds and hundreds
of MB) and before Keras opens anything. Keras's many failure modes become one
:class:`~weighttie.errors.WeighttieError` with a message that says what was
expected, what was found, and what to do.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from weighttie.errors import FileFormatError, UnsafeModelError, first_line
from weighttie.limits import DEFAULT_LIMITS, Limits
from weighttie.static import CheckedFile, check_before_load

__all__ = ["load_keras_model"]


def load_keras_model(
    path: str | os.PathLike[str],
    *,
    unsafe: bool = False,
    compile: bool = False,
    custom_objects: dict[str, Any] | None = None,
    quiet: bool = True,
    limits: Limits = DEFAULT_LIMITS,
    checked: CheckedFile | None = None,
) -> Any:
    """Load a model file through Keras, with ``safe_mode`` on unless ``unsafe``.

    Before Keras sees the file (and before Keras is imported), the bounded reader
    checks it: its config within ``limits``, and a weights file that is
    self-contained (no external storage or links, no virtual datasets, no filters
    HDF5 would look for as plugins), so nothing Keras then reads can block or
    reach outside the file.

    ``quiet`` silences Keras's Python warnings during the load (the command line
    wants one line per error); library callers get them. ``checked``: what
    :func:`~weighttie.static.check_before_load` returned for this file, when the
    caller made the checks already.

    Raises:
        MissingFileError, FileFormatError: see :func:`check_model_file`; also when
            Keras fails to read the file.
        LimitError: the file holds more than ``limits`` allow.
        UnsafeModelError: the file holds Python code (a Lambda layer) and ``unsafe``
            is False.
    """
    if checked is None:
        checked = check_before_load(path, limits=limits)
    import keras

    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            return keras.saving.load_model(
                os.fspath(path),
                safe_mode=not unsafe,
                compile=compile,
                custom_objects=custom_objects,
            )
    except Exception as exc:
        message = str(exc)
        if not unsafe and "safe_mode=False" in message:
            raise UnsafeModelError(
                f"{os.fspath(path)!r} contains Python code (e.g. a Lambda layer) that Keras "
                "does not run in safe mode; pass --unsafe (Python: unsafe=True) only if you "
                "trust the file"
            ) from None
        hub_classes = _missing_keras_hub_classes(checked.config)
        if hub_classes:
            raise FileFormatError(
                f"{os.fspath(path)!r} holds keras_hub classes ({', '.join(hub_classes)}); "
                "loading it needs keras_hub, which is not installed here: pip install keras-hub"
            ) from None
        raise FileFormatError(
            f"Keras could not load {os.fspath(path)!r}: {type(exc).__name__}: {first_line(exc)}"
            f"; {_way_out(message)}"
        ) from None


#: What Keras says when a file names a class no imported code registered.
_UNKNOWN_CLASS = ("Could not locate class", "could not be deserialized properly")


def _way_out(message: str) -> str:
    """What to do about a file Keras cannot load."""
    if any(text in message for text in _UNKNOWN_CLASS):
        return (
            "if the file's custom classes are defined in your code, import that module "
            "first: --import your.module (Python: import it before loading; "
            "docs/trust-model.md); the static report reads the file without Keras"
        )
    return "the static report (without --load) reads the file without Keras"


def _missing_keras_hub_classes(config: dict[str, Any]) -> list[str]:
    """The keras_hub classes a ``.keras`` file's config names, if keras_hub cannot be
    imported here; otherwise (or for another file) an empty list.

    Keras imports a class's module (``keras_hub.src.models…``) itself when it loads
    the file, so with keras_hub installed nothing more is needed.
    """
    import importlib

    try:
        importlib.import_module("keras_hub")
        return []
    except ImportError:
        pass
    found: set[str] = set()
    stack: list[Any] = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = str(item.get("module") or "")
            registered = str(item.get("registered_name") or "")
            if module.split(".")[0] == "keras_hub" or registered.startswith("keras_hub>"):
                found.add(str(item.get("class_name")))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(found)
