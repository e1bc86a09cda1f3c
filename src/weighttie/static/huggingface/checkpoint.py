"""A Hugging Face checkpoint folder → facts → Report: stored tensors, aliases, declared ties.

The facts (:mod:`weighttie.facts`), as any static reader states them:

* **rows**: tensors are grouped into layers by their dotted names
  (``model.layers.0.self_attn.q_proj.weight`` is the variable ``weight`` of the layer
  ``model/layers/0/self_attn/q_proj``), every prefix a row of its own; a name with an
  empty part (``a..b``, ``.a``) or none (``weight``) is a variable of the model
  itself. A checkpoint names no classes (``?``) and holds no graph: every row runs
  an unknown number of times (``runs=None``), so uses and per-use counts are
  unknown, as for a keras_hub file, and a note says so.
* **variables**, keyed by the stored tensor that holds their bytes: a metadata
  alias (``safetensors.torch.save_model``'s ``{"alias": "stored name"}``) and a
  declared tie with one copy stored make the other name's layer hold the same
  variable (a ``tied`` group); a declared tie stored twice with equal values is
  one variable too (transformers ties such copies on load), with a
  ``stored-twice`` finding; stored twice with different values, two variables, an
  unbound tie and a ``broken-tie`` finding.
* **ties**: each pair the config declares tied (:mod:`.families`) that the model
  holds, bound or not.
* **findings**: ``missing-tied-tensor``, ``stored-twice``, ``broken-tie`` and
  ``alias`` (docs/huggingface.md).

Values are read only to compare the two stored copies of a declared tie
(:mod:`.tensor_values`), whether or not findings are asked for: the answer decides
whether the tie is bound, as for the ties a ``.keras`` file declares.

A metadata entry is an alias when its value is the name of a stored tensor (of any
shard) and its key is not; or, naming no stored tensor, when key and value both
have the form of tensor names (dotted identifiers: ``lm_head.weight``): a dangling
alias, reported. Anything else (``{"format": "pt"}``) is plain metadata.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from weighttie.errors import LimitError
from weighttie.facts import ModelFacts, RawLayer, RawVariable
from weighttie.layers import UNKNOWN_CLASS
from weighttie.limits import Limits
from weighttie.report import Finding, FindingKind, ModelInfo, Source, Tie
from weighttie.static.huggingface.checkpoint_files import (
    CONFIG,
    CheckpointFiles,
    read_checkpoint_files,
)
from weighttie.static.huggingface.families import Declared, TiedPair, declared_ties
from weighttie.static.huggingface.hub_counts import SecondCopy, hub_counts_note
from weighttie.static.huggingface.safetensors_header import DTYPES, StoredTensor
from weighttie.static.huggingface.tensor_values import same_values

__all__ = ["checkpoint_facts", "checkpoint_folder_facts", "tensor_place"]

_TENSOR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+")
_FLOATS = frozenset(d for d in DTYPES if d.startswith(("F", "BF", "C")))


@contextmanager
def checkpoint_folder_facts(folder: str, limits: Limits) -> Iterator[ModelFacts]:
    """The facts of a Hugging Face checkpoint folder (see the module's docstring).

    Raises:
        FileFormatError: the folder is not a checkpoint, or a file of it is damaged,
            special, leads out of the folder, or disagrees with the index.
        LimitError: the folder holds more than ``limits`` allow.
    """
    files = read_checkpoint_files(folder, limits)
    yield checkpoint_facts(folder, files, limits)


def checkpoint_facts(folder: str, files: CheckpointFiles, limits: Limits) -> ModelFacts:
    """The facts of a checkpoint whose files were read (:func:`read_checkpoint_files`)."""
    stored = {t.name: t for header in files.headers for t in header.tensors}
    aliases = _Aliases.read(files, stored)
    declared = declared_ties(files.config, f"{folder!r}: {CONFIG}")
    sizes = {h.file: h.file_size for h in files.headers}
    ties = _Binding(folder, stored, aliases.targets, sizes)
    ties.bind(declared)
    holders = ties.holders()
    layers = _rows(holders, limits, repr(folder))
    keys = sorted(set(holders.values()))
    variables = [
        RawVariable(
            key=key,
            name=tensor_place(key)[1],
            shape=stored[key].shape,
            dtype=DTYPES[stored[key].dtype][1],
            trainable=stored[key].dtype in _FLOATS,
            owner=tensor_place(key)[0],
        )
        for key in keys
    ]
    unique = sum(stored[key].size for key in keys)  # as build_report counts it
    notes = [
        "A checkpoint holds tensors, not a graph nor module classes: which layers call which, "
        "and how many times, is not in its files, so uses and per-use counts are unknown, and "
        "every layer's class is ?",
        declared.note(),
    ]
    if declared.family is not None and not declared.architectures:
        notes.append(
            "config.json names no architecture, so which tied tensors the model holds is "
            "unknown: a tie is checked only where one of its tensors is stored"
        )
    notes.append(hub_counts_note(files.headers, unique, ties.copies, len(aliases.targets)))
    notes += aliases.notes
    notes += _total_size_note(files, stored.values())
    notes += files.notes
    architectures = declared.architectures
    model = ModelInfo(
        name=declared.model_type or os.path.basename(os.path.normpath(folder)),
        class_name=architectures[0] if architectures else UNKNOWN_CLASS,
        source=Source.STATIC,
        file=folder,
        keras_version=None,
        notes=tuple(notes),
    )
    return ModelFacts(
        model=model,
        layers=layers,
        variables=variables,
        ties=tuple(ties.ties),
        findings=tuple(aliases.findings + ties.findings),
        access=None,  # no other finding reads values here
    )


# -- names and rows -------------------------------------------------------------------


def _escape(part: str) -> str:
    """A name's part as a path part: ``%`` and ``/`` written ``%25`` and ``%2F``."""
    return part.replace("%", "%25").replace("/", "%2F")


def tensor_place(name: str) -> tuple[str, str]:
    """The layer path and variable name of a tensor name.

    Example:
        >>> tensor_place("model.layers.0.self_attn.q_proj.weight")
        ('model/layers/0/self_attn/q_proj', 'weight')
        >>> tensor_place("logit_scale")
        ('', 'logit_scale')
    """
    parts = name.split(".")
    if len(parts) < 2 or "" in parts:
        return "", _escape(name)
    return "/".join(_escape(p) for p in parts[:-1]), _escape(parts[-1])


def _natural(path: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key: parts in order, numbers by value (``layers/2`` before ``layers/10``)."""
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in path.split("/"))


def _rows(holders: dict[str, str], limits: Limits, where: str) -> list[RawLayer]:
    """One row per layer path the names place a variable in, and per prefix of one; each
    holding the variables of its names (``holders``: name → variable key)."""
    held: dict[str, list[str]] = {}
    for name, key in holders.items():
        path, _ = tensor_place(name)
        held.setdefault(path, []).append(key)
    paths: set[str] = set()
    for path in held:
        if path.count("/") + 1 > limits.depth:
            raise LimitError(
                f"{where}: a tensor name nests {path.count('/') + 1:,} levels deep ({path!r}), "
                f"more than the depth limit of {limits.depth:,}",
                limit="depth",
            )
        parts = path.split("/") if path else []
        paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        if len(paths) > limits.layers:
            raise LimitError(
                f"{where}: the tensor names describe more than {limits.layers:,} layers, the "
                "layers limit",
                limit="layers",
            )
    rows = []
    if "" in held:
        rows.append(_row("", None, held[""]))
    for path in sorted(paths, key=_natural):
        parent, _, _ = path.rpartition("/")
        rows.append(_row(path, parent or None, held.get(path, [])))
    return rows


def _row(path: str, parent: str | None, keys: list[str]) -> RawLayer:
    name = path.rpartition("/")[2].replace("%2F", "/").replace("%25", "%")
    return RawLayer(
        path=path,
        name=name,
        class_name=UNKNOWN_CLASS,
        parent=parent,
        identity=path,
        is_model=path == "",
        nodes=None,
        variables=tuple(sorted(set(keys))),
        runs=None,
    )


# -- aliases --------------------------------------------------------------------------


@dataclass
class _Aliases:
    """The metadata aliases of a checkpoint: resolved ones (alias → stored name), the
    ``alias`` findings of those naming nothing stored, and notes."""

    targets: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, files: CheckpointFiles, stored: dict[str, StoredTensor]) -> _Aliases:
        result = cls()
        dangling: dict[str, tuple[str, str]] = {}
        claimed: list[str] = []
        for header in files.headers:
            for alias, target in sorted(header.metadata.items()):
                if target in stored and alias in stored:
                    claimed.append(alias)
                elif target in stored:
                    first = result.targets.setdefault(alias, target)
                    if first != target:
                        result.notes.append(
                            f"The metadata of {header.file} maps {alias} to {target}, another "
                            f"file's to {first}: {alias} is read as {first}"
                        )
                elif (
                    alias not in stored
                    and _TENSOR_NAME.fullmatch(alias)
                    and (_TENSOR_NAME.fullmatch(target))
                ):
                    dangling.setdefault(alias, (target, header.file))
        for alias, (target, file) in sorted(dangling.items()):
            if alias in result.targets:
                continue
            result.findings.append(
                Finding(
                    kind=FindingKind.ALIAS,
                    layers=(tensor_place(alias)[0],),
                    params=0,
                    message=(
                        f"the metadata of {file} makes {alias} an alias of {target}, which the "
                        f"checkpoint does not store: {alias} names no tensor (a loader that "
                        "follows aliases finds nothing; one that does not, a missing tensor)"
                    ),
                )
            )
        if claimed:
            shown = ", ".join(claimed[:3]) + (" …" if len(claimed) > 3 else "")
            result.notes.append(
                f"Metadata maps stored tensors to other stored tensors ({shown}): not read as "
                "aliases, as each name has bytes of its own"
            )
        return result


# -- declared ties --------------------------------------------------------------------


class _Binding:
    """Declared ties applied to what is stored: which name holds which stored tensor, the
    ``report.Tie`` records, the findings, and the second copies the Hub counts."""

    def __init__(
        self,
        folder: str,
        stored: dict[str, StoredTensor],
        aliases: dict[str, str],
        sizes: dict[str, int],
    ) -> None:
        self.folder, self.stored, self.aliases, self.sizes = folder, stored, aliases, sizes
        self.extra: dict[str, str] = {}  # a tied name with no copy of its own → stored name
        self.merged: dict[str, str] = {}  # a second equal copy → the copy it is one with
        self.ties: list[Tie] = []
        self.findings: list[Finding] = []
        self.copies: list[SecondCopy] = []

    def resolve(self, name: str) -> str | None:
        """The stored tensor a name holds (itself, an alias's target, a tie's copy), or None."""
        key = name if name in self.stored else self.aliases.get(name) or self.extra.get(name)
        while key is not None and key in self.merged:
            key = self.merged[key]
        return key

    def holders(self) -> dict[str, str]:
        """Every name that holds a variable → the variable's key (a stored tensor's name)."""
        names = [*self.stored, *self.aliases, *self.extra]
        result = {}
        for name in names:
            key = self.resolve(name)
            if key is not None:
                result[name] = key
        return result

    def bind(self, declared: Declared) -> None:
        family = declared.family
        if family is None:
            return
        groups: dict[str, list[TiedPair]] = {}
        for pair in family.pairs:
            groups.setdefault(pair.source, []).append(pair)
        for source, pairs in groups.items():
            name = self._source_name(source, family.prefix)
            tied = []
            for pair in pairs:
                held = self.resolve(pair.target) is not None
                if not declared.applies(pair):
                    if declared.expects(pair) and pair.target not in self.stored:
                        self._untied_missing(pair, name)
                elif declared.expects(pair) or held:
                    tied.append(pair)
            if tied:
                self._bind_group(name, tied)

    def _source_name(self, source: str, prefix: str | None) -> str:
        """The source as the checkpoint names it: a base model's checkpoint names it
        without the class's prefix (``wte.weight``); transformers adds it on load."""
        if self.resolve(source) is None and prefix and source.startswith(prefix + "."):
            bare = source[len(prefix) + 1 :]
            if self.resolve(bare) is not None:
                return bare
        return source

    def _tie(self, source: str, target: str, bound: bool) -> None:
        self.ties.append(
            Tie(
                source=tensor_place(source)[0],
                target=tensor_place(target)[0],
                variables=(tensor_place(target)[1],),
                bound=bound,
            )
        )

    def _finding(self, kind: FindingKind, names: Iterable[str], params: int, message: str) -> None:
        layers = tuple(sorted({tensor_place(n)[0] for n in names}))
        self.findings.append(Finding(kind=kind, layers=layers, params=params, message=message))

    def _untied_missing(self, pair: TiedPair, source: str) -> None:
        """Declared untied, and the model's head is not stored."""
        key = self.resolve(source)
        size = self.stored[key].size if key is not None else 0
        alias = self.aliases.get(pair.target)
        how = (
            f"only a metadata alias of {alias}, which transformers' loader does not follow"
            if alias is not None
            else "not stored"
        )
        self._finding(
            FindingKind.MISSING_TIED_TENSOR,
            [pair.target],
            size,
            f"config.json declares tie_word_embeddings=false, so {pair.target} is a tensor of "
            f"its own, but it is {how}: a loader initializes it at random (store it, or set "
            f"tie_word_embeddings=true to tie it to {source})",
        )

    def _bind_group(self, source: str, pairs: Sequence[TiedPair]) -> None:
        """Bind each target to the source, or to the copy stored in its place."""
        targets = [p.target for p in pairs]
        members = [source, *targets]
        present = [m for m in members if self.resolve(m) is not None]
        if not present:
            self._finding(
                FindingKind.MISSING_TIED_TENSOR,
                members,
                0,
                f"config.json ties {', '.join(targets)} to {source}, but none of them is stored: "
                "a loader initializes the tensor at random",
            )
            for target in targets:
                self._tie(source, target, False)
            return
        kept = self.resolve(present[0])
        assert kept is not None
        if self.resolve(source) is None:
            self.extra[source] = kept
        for target in targets:
            key = self.resolve(target)
            if key is None:
                self.extra[target] = kept
                self._tie(source, target, True)
            elif key == kept:
                self._tie(source, target, True)
            elif same_values(self.folder, self.stored[kept], self.stored[key], self.sizes):
                self.merged[key] = kept
                copy = self.stored[key]
                self.copies.append(SecondCopy(key, kept, copy.size))
                self._tie(source, target, True)
                self._finding(
                    FindingKind.STORED_TWICE,
                    [kept, key],
                    copy.size,
                    f"{key} and {kept} are both stored, with identical values, though config.json "
                    f"ties them: {copy.nbytes:,} bytes ({copy.size:,} parameters) stored twice; "
                    f"drop {key} from the checkpoint (transformers ties it on load)",
                )
            else:
                a, b = self.stored[kept], self.stored[key]
                why = (
                    "different values"
                    if (a.dtype, a.shape) == (b.dtype, b.shape)
                    else f"different shapes or dtypes ({a.dtype} {list(a.shape)} and "
                    f"{b.dtype} {list(b.shape)})"
                )
                self._tie(source, target, False)
                self._finding(
                    FindingKind.BROKEN_TIE,
                    [kept, key],
                    b.size,
                    f"config.json ties {target} to {source}, but {key} and {kept} are both "
                    f"stored, with {why}: transformers keeps them separate, other loaders may "
                    f"serve either; set tie_word_embeddings=false if {target} is meant to be "
                    "its own tensor",
                )


def _total_size_note(files: CheckpointFiles, tensors: Iterable[StoredTensor]) -> list[str]:
    declared = files.index_metadata.get("total_size")
    if not isinstance(declared, int) or isinstance(declared, bool):
        return []
    held = sum(t.nbytes for t in tensors)
    if declared == held:
        return []
    return [
        f"model.safetensors.index.json declares a total_size of {declared:,} bytes; its shards "
        f"hold {held:,} bytes of tensors"
    ]
