"""Private Keras access for the symbolic pass's cheap run: layer calls on Keras tensors.

Part of :mod:`weighttie._keras`, the package that holds every private Keras access;
each access has a test in ``tests/_keras/test_keras_internals.py``.

The symbolic pass (:func:`weighttie._keras.trace_calls_of`) counts which layers each
layer call runs and which variables it reads. Keras's symbolic execution,
``backend.compute_output_spec``, runs a call on the backend's own placeholders:
TensorFlow builds a graph op by op (GPT-2 small's twelve blocks: 2,400 ops, 2 s of
CPU), and the counts need none of those ops. :func:`on_keras_tensors` runs the same
Python on Keras's own symbolic tensors instead (``KerasTensor``: a shape and a
dtype), as building a functional model does, with these changes:

* where ``Layer.__call__`` hands a call on Keras tensors to ``symbolic_call`` (which
  would infer the output's shape without running ``call``, or run it through the
  backend), the layer's ``call`` runs (``quantized_call`` for a quantized layer),
  as it runs on the backend's placeholders;
* a variable is a Keras tensor of its shape and dtype: its ``value`` is one (the
  caller counts that read), a Keras op given one reads it (counted where the op
  meets it, as the backend's op would convert it) and infers its output from it,
  and its operators are the Keras tensor's; ops infer their output's shape and
  dtype (their ``compute_output_spec``), and no backend op is built;
* a layer of a Keras class known to read, at every call, exactly the variables it
  holds (:func:`reads_what_it_holds`: ``Dense``, ``LayerNormalization`` …) is
  counted as reading them; its ``call`` runs on the Keras tensors where it can,
  and where it computes with backend functions (``Softmax``'s mask) its output is
  Keras's shape inference, as in a functional model;
* no ``Node`` is added to any layer's graph (a layer's ``_inbound_nodes``, a
  TensorFlow list wrapper under TensorFlow, could not be put back).

Code that computes with a backend function (``tf.gather``, ``backend.numpy.*``)
gets a Keras tensor it cannot take and the run fails: the caller then runs that
call through the backend, as before. Inside a run, ``backend.compute_output_spec``
(which some ops and layers call: ``scan``, ``cond``, a layer without
``compute_output_shape``) runs as Keras runs it, on the variables' values.

The patches are installed while :func:`keras_tensor_runs` is open (the caller holds
the symbolic pass's lock) and act only in a thread inside :func:`on_keras_tensors`;
in any other thread, and outside runs, Keras runs as it always does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "READS_WHAT_IT_HOLDS",
    "SINCE",
    "NotOnKerasTensors",
    "check_runs_its_call",
    "keras_tensor_runs",
    "on_keras_tensors",
    "reads_what_it_holds",
    "running",
    "spec_of",
    "supported",
]

_STATE = threading.local()


#: The first Keras release the runs on Keras tensors are checked against (the test suite,
#: every keras_hub family against a run through the backend). On an older Keras every
#: call runs through the backend, as before: Keras's internals the patches replace
#: differ (Keras 3.3's ``is_backend_tensor_or_symbolic`` takes one argument, a
#: quantized layer keeps its mode on its dtype policy), and a count there is not checked.
SINCE = (3, 15)


def supported() -> bool:
    """Whether this Keras is :data:`SINCE` or later."""
    import keras

    parts = []
    for part in keras.version().split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= SINCE


class NotOnKerasTensors(Exception):
    """A call cannot be run on Keras tensors (the message says why): run it on the backend."""


def running() -> bool:
    """Whether this thread is inside :func:`on_keras_tensors` (and not in a backend run)."""
    return bool(getattr(_STATE, "on", False))


def spec_of(variable: Any) -> Any:
    """A variable's value in a run: a Keras tensor of its shape, of the dtype a read gives
    now (an autocast scope's, for a float variable that autocasts)."""
    from keras import KerasTensor

    # Named: Keras would make a unique name, three regular expressions per tensor.
    return KerasTensor(tuple(variable.shape), dtype=variable.dtype, name="variable_value")


#: Keras's own layer classes whose ``call`` reads every variable the layer holds, at
#: every call, and no other (each checked against a run through the backend by
#: tests/_keras/test_keras_internals.py). The weightless ones run no code they were given.
READS_WHAT_IT_HOLDS = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Embedding",
        "LayerNormalization",
        "RMSNormalization",
        "BatchNormalization",
        "GroupNormalization",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
        "PReLU",
        "Softmax",
        "Dropout",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Identity",
    }
)


def reads_what_it_holds(layer: Any) -> bool:
    """Whether ``layer``'s call reads exactly the variables it holds itself, at every call,
    and runs no sublayer: a class of :data:`READS_WHAT_IT_HOLDS`, Keras's own (not a
    subclass), holding no sublayer, not quantized (a quantized layer reads scales by
    mode), and not a ``LayerNormalization`` with ``rms_scaling`` (Keras 3.3 builds a
    ``beta`` for it, which its call never reads)."""
    cls = type(layer)
    if cls.__name__ not in READS_WHAT_IT_HOLDS or not cls.__module__.startswith("keras.src."):
        return False
    if getattr(layer, "_layers", None) or getattr(layer, "quantization_mode", None) is not None:
        return False
    return not getattr(layer, "rms_scaling", False)


def check_runs_its_call(layer: Any) -> None:
    """Raise :class:`NotOnKerasTensors` where a run would not reach ``layer``'s ``call``:
    its class overrides ``symbolic_call`` (no Keras class does)."""
    patched = getattr(_STATE, "symbolic_call", None)
    if type(layer).symbolic_call is not patched:
        raise NotOnKerasTensors(f"{type(layer).__name__} overrides symbolic_call")


def on_keras_tensors(run: Callable[[], Any]) -> Any:
    """``run()`` with this thread's layer calls on Keras tensors (module docstring), in the
    scopes ``backend.compute_output_spec`` enters: stateless (an ``assign`` records an
    update and writes nothing) and symbolic (where this Keras has it)."""
    from keras.src.backend.common.stateless_scope import StatelessScope

    with StatelessScope(), _symbolic_scope():
        _STATE.on = True
        try:
            return run()
        finally:
            _STATE.on = False


def _symbolic_scope() -> Any:
    try:
        from keras.src.backend.common.symbolic_scope import SymbolicScope
    except ImportError:  # Keras before 3.5: compute_output_spec enters none either
        return contextlib.nullcontext()
    return SymbolicScope()


def _off(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` as Keras runs it: values are values, symbolic calls Keras's."""
    _STATE.on = False
    try:
        return fn(*args, **kwargs)
    finally:
        _STATE.on = True


class _Patches:
    """Attributes replaced on modules and classes, put back in reverse order."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self._undo.append((owner, name, vars(owner)[name]))
        setattr(owner, name, value)

    def undo(self) -> None:
        while self._undo:
            owner, name, value = self._undo.pop()
            setattr(owner, name, value)


@contextlib.contextmanager
def keras_tensor_runs(read: Callable[[Any], None]) -> Iterator[None]:
    """Within: :func:`on_keras_tensors` runs calls on Keras tensors; ``read(variable)`` is
    told each variable a Keras op meets in a run, and each variable a layer of
    :func:`reads_what_it_holds` holds, at each of its runs. (The caller counts reads of
    ``value`` itself and returns :func:`spec_of` for them while :func:`running`.)

    Patched until the block ends: ``symbolic_call`` (of ``Operation``, and of
    ``Layer`` where Keras defines it), ``keras.src.backend.compute_output_spec``,
    ``Node`` and ``is_backend_tensor_or_symbolic`` where ``Layer.__call__`` finds them,
    a variable's operators, and ``any_symbolic_tensors`` in every Keras module that
    calls it (:func:`_patch_variables`).
    """
    patches = _Patches()
    try:
        _patch_calls(patches, read)
        _patch_variables(patches, read)
        yield
    finally:
        patches.undo()
        _STATE.symbolic_call = None


def _patch_calls(patches: _Patches, read: Callable[[Any], None]) -> None:
    """Layers run ``call``, ops infer: ``symbolic_call``, and what ``Layer.__call__`` does
    around it (module docstring)."""
    import keras
    from keras import KerasTensor
    from keras.src import backend
    from keras.src.layers import layer as layer_module
    from keras.src.ops.operation import Operation

    from weighttie._keras import own_variables

    op_symbolic_call = vars(Operation)["symbolic_call"]
    layer_symbolic_call = vars(keras.Layer).get("symbolic_call", op_symbolic_call)
    backend_run = backend.compute_output_spec
    node_class = vars(layer_module).get("Node")
    tensor_or_symbolic = vars(layer_module).get("is_backend_tensor_or_symbolic")

    def symbolic_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        is_layer = isinstance(self, keras.Layer)
        if not running():
            original = layer_symbolic_call if is_layer else op_symbolic_call
            return original(self, *args, **kwargs)
        if not is_layer:
            args, kwargs = _variables_read(read, args, kwargs)
            return self.compute_output_spec(*args, **kwargs)
        if not reads_what_it_holds(self):
            if getattr(self, "quantization_mode", None) is not None:
                return self.quantized_call(*args, **kwargs)
            return self.call(*args, **kwargs)
        for variable in own_variables(self):
            read(variable)
        try:
            return self.call(*args, **kwargs)
        except Exception:  # it computes with backend functions: Keras's shape inference
            return _off(layer_symbolic_call, self, *args, **kwargs)

    def compute_output_spec(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if running():
            return _off(backend_run, fn, *args, **kwargs)
        return backend_run(fn, *args, **kwargs)

    def node(*args: Any, **kwargs: Any) -> Any:
        return None if running() else node_class(*args, **kwargs)

    def keras_tensor_first(x: Any, *args: Any, **kwargs: Any) -> bool:
        # The same answer; a Keras tensor is no TensorFlow type, and TensorFlow's check
        # of that (a typing Protocol on Python 3.11) took a sixth of a run. Arguments as
        # this Keras takes them (``allow_none`` came in Keras 3.4).
        if running() and isinstance(x, KerasTensor):
            return True
        return bool(tensor_or_symbolic(x, *args, **kwargs))

    def refused(name: str, original: Any) -> Any:
        def control_flow(*args: Any, **kwargs: Any) -> Any:
            if running():
                raise NotOnKerasTensors(f"{name} on a concrete condition")
            return original(*args, **kwargs)

        return control_flow

    for cls in (Operation, keras.Layer):
        if "symbolic_call" in vars(cls):
            patches.set(cls, "symbolic_call", symbolic_call)
    for name in sorted(_CONTROL_FLOW):
        if name in vars(backend.core):
            patches.set(backend.core, name, refused(name, vars(backend.core)[name]))
    patches.set(backend, "compute_output_spec", compute_output_spec)
    if node_class is not None:
        patches.set(layer_module, "Node", node)
    if tensor_or_symbolic is not None:
        patches.set(layer_module, "is_backend_tensor_or_symbolic", keras_tensor_first)
    _STATE.symbolic_call = symbolic_call


#: The backend's control flow, which a Keras op runs where its condition or loop state is
#: no Keras tensor. In a run that is a condition computed from a concrete size (a run at
#: two concrete sizes, after one at unknown sizes failed) or a constant: where the
#: backend's symbolic run at unknown sizes would trace every branch (``tf.cond``), one
#: runs. A run meeting one fails, and the backend runs the call.
_CONTROL_FLOW = frozenset(
    {
        "cond",
        "switch",
        "while_loop",
        "fori_loop",
        "scan",
        "map",
        "associative_scan",
        "vectorized_map",
    }
)


#: A variable's operators that compute with ``backend.numpy`` on its value; in a run they
#: are the Keras tensor's (Keras ops). ``__getitem__``, ``__neg__`` … call the value's own.
_OPERATORS = frozenset(
    {
        "__add__",
        "__radd__",
        "__sub__",
        "__rsub__",
        "__mul__",
        "__rmul__",
        "__matmul__",
        "__rmatmul__",
        "__truediv__",
        "__rtruediv__",
        "__floordiv__",
        "__rfloordiv__",
        "__mod__",
        "__rmod__",
        "__pow__",
        "__rpow__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__ne__",
        "__and__",
        "__rand__",
        "__or__",
        "__ror__",
        "__xor__",
        "__rxor__",
        "__round__",
    }
)


def _patch_variables(patches: _Patches, read: Callable[[Any], None]) -> None:
    """In a run, a variable is a Keras tensor to Keras ops: an op given one and no other
    Keras tensor (``ops.transpose(self.embeddings)``, ``ops.cast(self.scale, …)``)
    infers its output (``any_symbolic_tensors``, which each ops module calls by its own
    global name, says so), and a variable's operators, which compute with
    ``backend.numpy`` on its value, are its value's. The read is counted where an op
    meets the variable (its ``symbolic_call``), or by ``value``. And ``ops.shape`` of a
    Keras tensor gives an unknown dimension as a Keras tensor (:func:`_unknown_size`),
    wherever Keras's modules hold ``shape`` (``keras.ops`` included)."""
    import sys

    from keras import KerasTensor
    from keras.src.backend.common import keras_tensor

    from weighttie._keras import variable_base

    Variable = variable_base()
    from keras.src.ops import core as ops_core

    def operator(name: str, original: Any) -> Any:
        def on_value(self: Any, *args: Any) -> Any:
            if running():
                return getattr(self.value, name)(*args)
            return original(self, *args)

        return on_value

    for name in sorted(_OPERATORS):
        if name in vars(Variable) and hasattr(KerasTensor, name):
            patches.set(Variable, name, operator(name, vars(Variable)[name]))

    symbolic = keras_tensor.any_symbolic_tensors

    def any_symbolic_tensors(args: Any = None, kwargs: Any = None) -> bool:
        if symbolic(args, kwargs):
            return True
        return running() and _holds_variable(args or (), kwargs or {})

    original_shape = ops_core.shape

    def shape(x: Any) -> Any:
        if running() and isinstance(x, KerasTensor):
            return tuple(_unknown_size() if d is None else d for d in x.shape)
        return original_shape(x)

    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("keras"):
            continue
        names = vars(module)
        if names.get("any_symbolic_tensors") is symbolic:
            patches.set(module, "any_symbolic_tensors", any_symbolic_tensors)
        if names.get("shape") is original_shape:
            patches.set(module, "shape", shape)


def _unknown_size() -> Any:
    """What ``ops.shape`` gives in a run for an unknown dimension: a Keras tensor (a scalar),
    as TensorFlow's symbolic execution gives a symbolic scalar. Keras tensors' own
    ``ops.shape`` gives None, and computing with None makes concrete values where the
    backend computes symbolic ones: ``ops.cond(ops.equal(ops.shape(x)[1], 0), …)`` runs
    one branch, where the backend's run traces both (SAM's prompt encoder)."""
    from keras import KerasTensor

    return KerasTensor((), dtype="int32", name="unknown_size")


def _holds_variable(args: Any, kwargs: Any) -> bool:
    """Whether a variable is among ``args`` (a sequence) and ``kwargs`` (a mapping), at any
    depth: a shallow look first (an op's tensors are its arguments, seldom nested)."""
    from keras.src import tree

    from weighttie._keras import variable_base

    Variable = variable_base()

    for x in (*args, *kwargs.values()):
        if isinstance(x, Variable):
            return True
        if isinstance(x, list | tuple | dict) and any(
            isinstance(y, Variable) for y in tree.flatten(x)
        ):
            return True
    return False


def _variables_read(
    read: Callable[[Any], None], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An op's arguments with each variable read (told to ``read``) as a Keras tensor."""
    from keras.src import tree

    from weighttie._keras import variable_base

    Variable = variable_base()

    if not _holds_variable(args, kwargs):
        return args, kwargs

    def as_read(x: Any) -> Any:
        if isinstance(x, Variable):
            read(x)
            return spec_of(x)
        if isinstance(x, list | tuple | dict):
            return tree.map_structure(as_read, x)
        return x

    return tuple(as_read(x) for x in args), {k: as_read(v) for k, v in kwargs.items()}
