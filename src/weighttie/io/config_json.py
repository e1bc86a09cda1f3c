"""A model config parsed within limits, and the layer entries it holds.

A model config (``config.json``, a legacy ``model_config``) is parsed layer by
layer, counting layers, calls and nesting against :class:`~weighttie.limits.Limits`,
so a small file describing a huge model is refused after reading no more than the
limits allow.

This module imports no Keras and no backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from weighttie.collector import collector_paused
from weighttie.errors import FileFormatError, LimitError
from weighttie.facts import join_path
from weighttie.limits import DEFAULT_LIMITS, Limits

__all__ = ["check_json_size", "is_layer_entry", "iter_layer_configs", "parse_model_config"]


# -- a model config, parsed within limits -------------------------------------------

_DECODER = json.JSONDecoder()
_SPACE = r"[ \t\n\r]*"
_WHITESPACE = re.compile(_SPACE)
_KEY = re.compile(f'{_SPACE}"([^"\\\\]*)"{_SPACE}:{_SPACE}')  # a key without escapes
_NEXT = re.compile(f"{_SPACE}([,}}\\]]){_SPACE}")  # what follows a member or an element
_EMPTY_OBJECT = re.compile(f"{_SPACE}}}")
_EMPTY_ARRAY = re.compile(f"{_SPACE}\\]")
# What a key's value is, by the role of the object holding it: a layer entry's
# "config" may list layers (a nested model); its "inbound_nodes" list its calls.
_ENTRY, _CONFIG, _LAYERS, _NODES = "entry", "config", "layers", "nodes"
_CHILD_ROLES = {
    _ENTRY: {"config": _CONFIG, "inbound_nodes": _NODES},
    _CONFIG: {"layers": _LAYERS},
}


def parse_model_config(data: bytes, *, limits: Limits, where: str) -> Any:
    """Parse a model config (``config.json``, a legacy ``model_config``) as ``json.loads`` would.

    Layers (entries of any model's ``layers``), calls (entries of a layer's
    ``inbound_nodes``) and the nesting of models are counted while the document is
    read, one layer at a time, and reading stops as soon as one exceeds ``limits``:
    the time and memory spent on a config are proportional to what is accepted.
    A document with fewer objects and arrays than either limit cannot exceed them
    and is parsed in one call.

    Raises:
        FileFormatError: the bytes are not valid JSON.
        LimitError: the config exceeds ``limits.layers``, ``limits.calls`` or
            ``limits.depth``.
    """
    containers = check_json_size(data, limits, where)
    try:
        if containers <= min(limits.layers, limits.calls):
            return json.loads(data)
        text = data.decode(json.detect_encoding(data), "surrogatepass")
        del data  # the caller passed its only reference: half the memory of a big config
        with collector_paused():
            return _CountingParser(text, limits, where).document()
    except LimitError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise FileFormatError(f"{where} is not valid JSON: {exc}") from None


#: Parsed JSON takes far more memory than its text: 64 MiB of ``{},`` become 1.7 GB
#: of dicts, of ``0.5,`` 0.8 GB of floats. Real configs hold one object or array per
#: 20 to 55 bytes and one comma per 18 to 24; a document may hold one per 16 and one
#: per 8 bytes of the config_bytes limit, which keeps its objects within a few
#: hundred MB at the default limit.
_BYTES_PER_CONTAINER = 16
_BYTES_PER_COMMA = 8


def check_json_size(data: bytes, limits: Limits, where: str) -> int:
    """Refuse a JSON document with more values than its byte limit allows; return how
    many objects and arrays it holds at most (braces in strings count too)."""
    containers = data.count(b"{") + data.count(b"[")
    commas = data.count(b",")
    most_containers = limits.config_bytes // _BYTES_PER_CONTAINER
    most_commas = limits.config_bytes // _BYTES_PER_COMMA
    if containers > most_containers or commas > most_commas:
        found, most, what = (
            (containers, most_containers, "objects and arrays")
            if containers > most_containers
            else (commas, most_commas, "values")
        )
        raise LimitError(
            f"{where} holds {found:,} JSON {what}, more than the {most:,} weighttie parses "
            "within the config_bytes limit",
            limit="config_bytes",
        )
    return containers


def _skip(text: str, pos: int) -> int:
    """Past the whitespace at ``pos``."""
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


class _CountingParser:
    """A JSON reader that descends into a model config's layer lists and call lists by hand.

    Everything else (a layer's arguments, a call's tensors) is read whole by
    ``json``'s own scanner; only the lists that grow with the model are walked here,
    element by element, so the count is checked before the next element is built.
    """

    def __init__(self, text: str, limits: Limits, where: str) -> None:
        self.text = text
        self.limits = limits
        self.where = where
        self.layers = 0
        self.calls = 0
        self.keys: dict[str, str] = {}  # one string per distinct key, as json.loads keeps
        self.next_layers = 0  # where '"layers"' occurs next in the text (-1: nowhere)

    def document(self) -> Any:
        pos = _skip(self.text, 0)
        value, pos = self._value(pos, _ENTRY, 0)
        pos = _skip(self.text, pos)
        if pos != len(self.text):
            raise json.JSONDecodeError("Extra data", self.text, pos)
        return value

    def _value(self, pos: int, role: str | None, depth: int) -> tuple[Any, int]:
        opening = self.text[pos : pos + 1]
        if opening == "{" and role == _CONFIG and not self._layers_ahead(pos):
            return _DECODER.raw_decode(self.text, pos)  # no model in it: read it whole
        if opening == "{" and role in (_ENTRY, _CONFIG):
            return self._object(pos, role, depth)
        if opening == "[" and role in (_LAYERS, _NODES):
            return self._array(pos, role, depth)
        return _DECODER.raw_decode(self.text, pos)

    def _layers_ahead(self, pos: int) -> bool:
        """Whether the text still holds ``"layers"`` at or after ``pos``.

        A layer's config that cannot hold a model's layer list is read by ``json`` in
        one call. (A key spelled with escapes, ``"lay\\u0065rs"``, is not seen here;
        such a model's layers are still counted, by the reader, after parsing, within
        the JSON bounds of :func:`check_json_size`.)
        """
        if 0 <= self.next_layers < pos:
            self.next_layers = self.text.find('"layers"', pos)
        return self.next_layers >= 0

    def _key(self, pos: int) -> tuple[str, int]:
        text = self.text
        match = _KEY.match(text, pos)
        if match is not None:
            key = match.group(1)
            return self.keys.setdefault(key, key), match.end()
        pos = _skip(text, pos)
        if not text.startswith('"', pos):
            raise json.JSONDecodeError(
                "Expecting property name enclosed in double quotes", text, pos
            )
        key, pos = _DECODER.raw_decode(text, pos)  # a key with escapes
        pos = _skip(text, pos)
        if not text.startswith(":", pos):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
        return key, _skip(text, pos + 1)

    def _next(self, pos: int, closing: str) -> tuple[bool, int]:
        """Past the ``,`` after a member or element (False) or the closing bracket (True)."""
        match = _NEXT.match(self.text, pos)
        if match is None or match.group(1) not in (",", closing):
            raise json.JSONDecodeError("Expecting ',' delimiter", self.text, pos)
        return match.group(1) == closing, match.end()

    def _object(self, pos: int, role: str, depth: int) -> tuple[dict[str, Any], int]:
        children = _CHILD_ROLES[role]
        result: dict[str, Any] = {}
        empty = _EMPTY_OBJECT.match(self.text, pos + 1)
        if empty is not None:
            return result, empty.end()
        pos += 1
        while True:
            key, pos = self._key(pos)
            result[key], pos = self._value(pos, children.get(key), depth)
            done, pos = self._next(pos, "}")
            if done:
                return result, pos

    def _array(self, pos: int, role: str, depth: int) -> tuple[list[Any], int]:
        if role == _LAYERS and depth > self.limits.depth:  # a model nested ``depth`` deep
            raise LimitError(
                f"{self.where} nests models more than {self.limits.depth} levels deep, "
                "the depth limit",
                limit="depth",
            )
        result: list[Any] = []
        empty = _EMPTY_ARRAY.match(self.text, pos + 1)
        if empty is not None:
            return result, empty.end()
        pos = _skip(self.text, pos + 1)
        while True:
            if self.text[pos : pos + 1] in ("{", "["):
                self._count(role)
            if role == _LAYERS:
                item, pos = self._value(pos, _ENTRY, depth + 1)
            else:
                item, pos = _DECODER.raw_decode(self.text, pos)
            result.append(item)
            done, pos = self._next(pos, "]")
            if done:
                return result, pos

    def _count(self, role: str) -> None:
        if role == _LAYERS:
            self.layers += 1
            if self.layers > self.limits.layers:
                raise LimitError(
                    f"{self.where} describes more than {self.limits.layers:,} layers, "
                    "the layers limit",
                    limit="layers",
                )
        else:
            self.calls += 1
            if self.calls > self.limits.calls:
                raise LimitError(
                    f"{self.where} records more than {self.limits.calls:,} calls of layers, "
                    "the calls limit",
                    limit="calls",
                )


def iter_layer_configs(
    config: dict[str, Any], parent: str = "", depth: int = 0, *, max_depth: int | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(path, layer entry)`` for every layer in a model config, pre-order.

    Paths are built as the live walker builds them: a nested model's layers sit
    below the model's path (``tower/conv``), and so do the layers a layer's own
    config holds (an RNN's cell ``rnn/cell``, a wrapper's layer ``td/proj``, the
    layer a custom layer keeps). Entries without a name are skipped, and so is
    anything nested deeper than ``max_depth`` (default: the default
    ``Limits.depth``; the static reader refuses those, here the bound only keeps
    the recursion finite).
    """
    limit = DEFAULT_LIMITS.depth if max_depth is None else max_depth
    if depth > limit:
        return
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return
    for entry in layers:
        if not isinstance(entry, dict):
            continue
        layer_config = entry.get("config")
        name = entry.get("name")
        if isinstance(layer_config, dict) and isinstance(layer_config.get("name"), str):
            name = layer_config["name"]
        if not isinstance(name, str):
            continue
        path = join_path(parent, name)
        yield path, entry
        yield from iter_layer_configs(entry, path, depth + 1, max_depth=limit)
        if isinstance(layer_config, dict) and not isinstance(layer_config.get("layers"), list):
            yield from _held_layer_configs(layer_config, path, depth + 1, limit)


def is_layer_entry(value: Any) -> bool:
    """Whether ``value`` is a serialized layer: ``{"class_name": …, "config": {"name": …,
    "trainable": …}}`` (a layer's base config always carries both; dtype policies and
    initializers, also serialized objects, do not)."""
    if not isinstance(value, dict):
        return False
    inner = value.get("config")
    return (
        isinstance(value.get("class_name"), str)
        and isinstance(inner, dict)
        and isinstance(inner.get("name"), str)
        and "trainable" in inner
    )


def _held_layer_configs(
    value: Any, parent: str, depth: int, limit: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The serialized layers inside a layer's config, as ``(path, entry)``, pre-order.

    A serialized layer is an object whose ``config`` has a ``name`` and a
    ``trainable`` (a layer's base config); dtype policies and initializers have not.
    Only lists and objects are looked into (a layer's config is mostly numbers and
    strings: a generator for each would cost more than the rest of the reading).
    """
    if depth >= limit:  # its items would be past the limit
        return
    items = value if isinstance(value, list) else value.values()
    for item in items:
        if isinstance(item, dict):
            if is_layer_entry(item):
                inner = item["config"]
                path = join_path(parent, inner["name"])
                yield path, item
                yield from iter_layer_configs(item, path, depth + 2, max_depth=limit)
                if not isinstance(inner.get("layers"), list):
                    yield from _held_layer_configs(inner, path, depth + 2, limit)
            else:
                yield from _held_layer_configs(item, parent, depth + 1, limit)
        elif isinstance(item, list):
            yield from _held_layer_configs(item, parent, depth + 1, limit)
