"""Which layer a group of ``model.weights.h5`` belongs to when the file does not say.

Keras 3.6 and later write each layer's name as the ``name`` attribute of its
``vars`` group; Keras 3.0 - 3.5 write no attribute at all (``H5Entry`` took no
metadata then). Their groups are still named by rule (``saving_lib``'s
``_save_container_state`` and ``_walk_saveable``, unchanged from 3.0 to 3.15):

* a model's ``layers`` list, in ``model.layers`` order, is saved under the
  snake-cased class name of each layer (``Dense`` → ``dense``), numbered from the
  second of a name on (``dense``, ``dense_1`` …). A Functional model's
  ``model.layers`` is its config's ``layers`` list, InputLayers included; a
  Sequential model's leaves its InputLayer out;
* a sublayer a layer holds as an attribute is saved under the attribute's name
  (``cell``, ``forward_layer``); the layer's own name comes from the class that
  made it (an LSTM names its cell ``lstm_cell``, a Bidirectional its copies
  ``forward_<layer>`` and ``backward_<layer>``), else the attribute stands for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from weighttie.layers import cell_name
from weighttie.static.config_graph import entry_layer_name
from weighttie.static.keras_hub import snake_case

__all__ = ["holds_variables", "list_group_keys", "sublayer_name"]

if TYPE_CHECKING:
    from weighttie.static.h5_tree import H5Group


def list_group_keys(level: list[tuple[str, dict[str, Any]]], sequential: bool) -> dict[str, str]:
    """The group key Keras gives each layer of a model's ``layers`` list, by layer name.

    Example:
        >>> level = [("a", {"class_name": "Dense"}), ("b", {"class_name": "Dense"})]
        >>> list_group_keys(level, sequential=False)
        {'a': 'dense', 'b': 'dense_1'}
    """
    used: dict[str, int] = {}
    keys = {}
    for name, entry in level:
        class_name = str(entry.get("class_name", ""))
        if sequential and class_name == "InputLayer":
            continue  # not in a Sequential model's `layers`
        snake = snake_case(class_name)
        if snake in used:
            used[snake] += 1
            keys[name] = f"{snake}_{used[snake]}"
        else:
            used[snake] = 0
            keys[name] = snake
    return keys


def _prefixed(prefix: str, config: Any) -> str | None:
    name = entry_layer_name(config) if isinstance(config, dict) else None
    if name is None:
        return None
    return name if name.startswith(prefix) else prefix + name


def sublayer_name(parent_class: str, parent_config: dict[str, Any], key: str) -> str:
    """The name Keras gives the sublayer a ``parent_class`` layer holds under attribute
    ``key`` (for a file that does not state it): an RNN's cell, a Bidirectional's
    copies, a wrapper's layer; else the attribute's name."""
    cell = cell_name(parent_class)
    if key == "cell" and cell is not None:
        return cell
    if parent_class == "Bidirectional" and key in ("forward_layer", "backward_layer"):
        own = parent_config.get("backward_layer") if key == "backward_layer" else None
        if isinstance(own, dict) and entry_layer_name(own) is not None:
            return str(entry_layer_name(own))
        prefix = "forward_" if key == "forward_layer" else "backward_"
        return _prefixed(prefix, parent_config.get("layer")) or key
    layer = parent_config.get("layer")
    if key == "layer" and isinstance(layer, dict):
        return entry_layer_name(layer) or key
    return key


def holds_variables(group: H5Group) -> bool:
    """Whether a group or any group below it holds a variable."""
    stack = [group]
    while stack:
        item = stack.pop()
        if item.variables:
            return True
        stack.extend(item.layers)
        stack.extend(item.attributes.values())
    return False
