"""The facts contract: what a front end states about a model, before any counting.

Two front ends describe models: the live walker (:mod:`weighttie.walk`, a model in
memory) and the static reader (:mod:`weighttie.static`, a file without Keras). Each
fills one :class:`ModelFacts`; :func:`weighttie.build.build_report` derives
everything else (uses, counts, groups, findings) in one build, so the two cannot
disagree about what sharing means, and no Report is patched after it is built.

* :class:`RawLayer`: one layer *occurrence* (a path), its calls and the keys of
  the variables it holds itself;
* :class:`RawVariable`: one variable *object*, keyed by identity;
* ``ties``: the ties the model or file declares, bound or not;
* ``differing_ties``: declared ties whose saved copies hold different values
  (:class:`RawDifferingTie`), which the build reports as ``broken-tie`` findings;
* ``findings``: what a reader found about how a file stores its tensors, in the
  file's own names (a checkpoint's tied tensor stored twice, an alias naming
  nothing); findings about sharing are the build's;
* ``unclear_copies``: rows holding copies the file cannot tell from one variable
  (a legacy ``.h5``'s layer at two places, or a copy of it): the build makes no
  finding of them;
* :class:`ValueAccess`: how findings reach layer configs and variable values.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from weighttie.report import CallNode, Finding, ModelInfo, Tie

__all__ = [
    "ROOT",
    "Chunks",
    "Fingerprint",
    "ModelFacts",
    "RawDifferingTie",
    "RawLayer",
    "RawVariable",
    "ValueAccess",
    "join_path",
]

#: Path of the analyzed model itself. Its row appears in a report only when the
#: model holds variables of its own (a subclassed model calling ``add_weight``).
ROOT = ""


def join_path(parent: str | None, name: str) -> str:
    """Return the path of ``name`` inside ``parent`` (``ROOT`` or None at the top)."""
    return name if not parent else f"{parent}/{name}"


#: ``fingerprint(layer_path)``: a hash of the layer's config without its name, or None.
Fingerprint = Callable[[str], str | None]
#: ``chunks(variable_key)``: the variable's values as successive byte chunks.
Chunks = Callable[[Hashable], Iterable[bytes]]


@dataclass(frozen=True)
class RawLayer:
    """One layer occurrence as a front end saw it.

    ``identity`` is equal for two rows that are the same layer object (a layer can
    sit at two paths: a cell in two RNN layers, a layer inside two nested models).
    ``nodes`` lists the calls in the parent's functional graph, or is None where
    there is no graph (subclassed models, a layer's own sublayers). ``variables``
    are the keys of the variables the layer holds itself, not through sublayers.

    ``runs``: how many times this row runs per run of its parent (a graph row: its
    calls in that graph; a sublayer: as often as its parent's call runs it, which
    may be 0 for a layer only held), or None where the source cannot tell (a custom
    layer's sublayers in a file: the layer's own ``call`` decides). Its uses, and
    every count that depends on them, are then unknown.

    ``reads``: per run of the parent, how many of this row's runs read each
    variable, as ``(key, runs)`` pairs (runs None: unknown); a row may read
    variables it does not hold (a head reading ``emb.embeddings``) and not read
    some it holds. None: each variable it holds is read by each of its runs (what
    Keras's own layers do).
    """

    path: str
    name: str
    class_name: str
    parent: str | None
    identity: Hashable
    is_model: bool
    nodes: tuple[CallNode, ...] | None
    variables: tuple[Hashable, ...]
    runs: int | None
    reads: tuple[tuple[Hashable, int | None], ...] | None = None


@dataclass(frozen=True)
class RawVariable:
    """One variable object: ``key`` is its identity.

    ``owner``: the holder the variable is named and counted under, where the source
    knows it (a checkpoint names the layer whose tensor is stored, not the head that
    reads it through a tie); None, or a path that does not hold it: the first holder
    that runs, in path order.
    """

    key: Hashable
    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    owner: str | None = None


@dataclass(frozen=True)
class ValueAccess:
    """How findings read what a Report does not hold.

    ``chunks`` is None when values cannot or should not be read: ``broken-tie``
    is then not looked for.
    """

    fingerprint: Fingerprint
    chunks: Chunks | None


@dataclass(frozen=True)
class RawDifferingTie:
    """A tie a file declares whose saved copies hold different values: not bound.

    ``copies`` pairs the keys of the target's variables with the source's, for each
    pair that differs; ``params`` is what binding the tie would share.
    """

    source: str
    target: str
    copies: tuple[tuple[Hashable, Hashable], ...]
    params: int


@dataclass(frozen=True)
class ModelFacts:
    """Everything a front end states about one model.

    Where the source cannot tell how often some layers run (a file whose config is
    constructor arguments, not a graph; a custom layer's call), its rows say so
    (``RawLayer.runs`` None) and ``calls_note`` says why, in one sentence that is
    also one of ``model.notes``.

    ``unclear_copies``: the paths of rows holding equal copies the file cannot tell
    from one variable at two places (a legacy ``.h5`` stores a layer object's
    variables under each place, and Keras 3's never says which copies are one
    object). Their reads are unknown, a note in ``model.notes`` says why, and the
    build makes no ``broken-tie`` or ``twin-branches`` finding whose every layer is
    one of these rows or holds one: such copies are no evidence of a lost tie or
    twins.
    """

    model: ModelInfo
    layers: Sequence[RawLayer]
    variables: Sequence[RawVariable]
    ties: Sequence[Tie] = ()
    differing_ties: Sequence[RawDifferingTie] = ()
    findings: Sequence[Finding] = ()
    access: ValueAccess | None = None
    calls_note: str | None = None
    unclear_copies: frozenset[str] = frozenset()
