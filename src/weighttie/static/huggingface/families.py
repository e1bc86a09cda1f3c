"""Which tensors a Hugging Face architecture ties, and what a ``config.json`` declares.

transformers ties tensors by name: each model class lists ``_tied_weights_keys``
(``{"lm_head.weight": "model.embed_tokens.weight"}``: the head's weight *is* the
input embedding), applied only when the config's ``tie_word_embeddings`` is true
(``PreTrainedModel.get_expanded_tied_weights_keys``). Where ``config.json`` has no
``tie_word_embeddings`` key, the config class's default holds. The list below is
transformers 5.24's (each ``configuration_<family>.py`` and ``modeling_<family>.py``):

* ``gpt2``: ``lm_head.weight`` ← ``transformer.wte.weight``; default true; held by
  GPT2LMHeadModel, GPT2DoubleHeadsModel;
* ``llama``, ``mistral``, ``mixtral``, ``qwen2``, ``qwen3``, ``phi3``, ``olmo2``:
  ``lm_head.weight`` ← ``model.embed_tokens.weight``; default false; ``…ForCausalLM``;
* ``gemma``, ``gemma2``, ``gemma3_text``, ``starcoder2``: the same tensors; default true;
* ``falcon``: ``lm_head.weight`` ← ``transformer.word_embeddings.weight``; default true;
* ``bert``: ``cls.predictions.decoder.weight`` ← ``bert.embeddings.word_embeddings.weight``
  and ``cls.predictions.decoder.bias`` ← ``cls.predictions.bias``; default true;
  BertForMaskedLM, BertForPreTraining, BertLMHeadModel;
* ``t5``: ``encoder.embed_tokens.weight`` and ``decoder.embed_tokens.weight`` ←
  ``shared.weight`` always (T5Model, T5ForConditionalGeneration, T5ForQuestionAnswering;
  T5EncoderModel the encoder's only); ``lm_head.weight`` ← ``shared.weight``; default
  true; T5ForConditionalGeneration.

A checkpoint of the base model (``GPT2Model``, saved without the ``transformer.``
prefix: ``wte.weight``) names the source without the class's ``base_model_prefix``;
transformers adds the prefix on load, and so does the lookup here.

T5 is special: transformers 5 ties T5's head whatever the key says (the key only
decides whether decoder outputs are scaled), while transformers 4 honoured it, and
T5 v1.1 / Flan-T5 checkpoints declare ``false`` and store their own head. The
declared value is the config's (``true`` where absent), as for every family.

This module imports neither Keras nor a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weighttie.errors import FileFormatError

__all__ = ["FAMILIES", "Declared", "Family", "TiedPair", "declared_ties"]


@dataclass(frozen=True)
class TiedPair:
    """``target`` is ``source`` when tied; ``by_config``: only when ``tie_word_embeddings``
    is true (else always); ``classes``: the model classes that hold the target."""

    target: str
    source: str
    by_config: bool
    classes: frozenset[str]


@dataclass(frozen=True)
class Family:
    """An architecture family: its name, its ``tie_word_embeddings`` default, its
    ``base_model_prefix`` (None: checkpoints never name it) and the tensors it ties."""

    title: str
    tie_default: bool
    prefix: str | None
    pairs: tuple[TiedPair, ...]


def _head(title: str, default: bool, prefix: str, source: str, *classes: str) -> Family:
    return Family(
        title, default, prefix, (TiedPair("lm_head.weight", source, True, frozenset(classes)),)
    )


def _decoder(title: str, default: bool, model_class: str) -> Family:
    return _head(title, default, "model", "model.embed_tokens.weight", model_class)


_BERT_HEADS = frozenset({"BertForMaskedLM", "BertForPreTraining", "BertLMHeadModel"})
_T5_DECODERS = frozenset({"T5Model", "T5ForConditionalGeneration", "T5ForQuestionAnswering"})

#: By ``model_type``.
FAMILIES: Mapping[str, Family] = {
    "gpt2": _head(
        "GPT-2",
        True,
        "transformer",
        "transformer.wte.weight",
        "GPT2LMHeadModel",
        "GPT2DoubleHeadsModel",
    ),
    "llama": _decoder("Llama", False, "LlamaForCausalLM"),
    "mistral": _decoder("Mistral", False, "MistralForCausalLM"),
    "mixtral": _decoder("Mixtral", False, "MixtralForCausalLM"),
    "qwen2": _decoder("Qwen2", False, "Qwen2ForCausalLM"),
    "qwen3": _decoder("Qwen3", False, "Qwen3ForCausalLM"),
    "phi3": _decoder("Phi-3", False, "Phi3ForCausalLM"),
    "olmo2": _decoder("OLMo 2", False, "Olmo2ForCausalLM"),
    "gemma": _decoder("Gemma", True, "GemmaForCausalLM"),
    "gemma2": _decoder("Gemma 2", True, "Gemma2ForCausalLM"),
    "gemma3_text": _decoder("Gemma 3 (text)", True, "Gemma3ForCausalLM"),
    "starcoder2": _decoder("StarCoder2", True, "Starcoder2ForCausalLM"),
    "falcon": _head(
        "Falcon", True, "transformer", "transformer.word_embeddings.weight", "FalconForCausalLM"
    ),
    "bert": Family(
        "BERT",
        True,
        "bert",
        (
            TiedPair(
                "cls.predictions.decoder.weight",
                "bert.embeddings.word_embeddings.weight",
                True,
                _BERT_HEADS,
            ),
            TiedPair("cls.predictions.decoder.bias", "cls.predictions.bias", True, _BERT_HEADS),
        ),
    ),
    "t5": Family(
        "T5",
        True,
        None,
        (
            TiedPair(
                "encoder.embed_tokens.weight",
                "shared.weight",
                False,
                _T5_DECODERS | {"T5EncoderModel"},
            ),
            TiedPair("decoder.embed_tokens.weight", "shared.weight", False, _T5_DECODERS),
            TiedPair(
                "lm_head.weight", "shared.weight", True, frozenset({"T5ForConditionalGeneration"})
            ),
        ),
    ),
}

KEY = "tie_word_embeddings"


@dataclass(frozen=True)
class Declared:
    """What a ``config.json`` declares about ties.

    ``tied``: ``tie_word_embeddings`` as the config states it, or the family's default
    (``from_default``); None when the family is unknown.
    """

    model_type: str | None
    architectures: tuple[str, ...]
    family: Family | None
    tied: bool | None
    from_default: bool

    def applies(self, pair: TiedPair) -> bool:
        """Whether the pair is tied under this config."""
        return not pair.by_config or bool(self.tied)

    def expects(self, pair: TiedPair) -> bool:
        """Whether the config's architecture holds the pair's target."""
        return bool(pair.classes.intersection(self.architectures))

    def note(self) -> str:
        """One sentence: the family, the tie, and where its value comes from."""
        if self.family is None:
            kind = repr(self.model_type) if self.model_type else "no model_type"
            return (
                f"config.json declares {kind}, a family whose tied tensors weighttie does not "
                "know (docs/huggingface.md lists those it does): no declared tie is checked; "
                "metadata aliases are still followed"
            )
        value = "true" if self.tied else "false"
        source = (
            f"transformers' default for {self.model_type}, config.json having no {KEY} key"
            if self.from_default
            else "as config.json states"
        )
        pairs = "; ".join(
            f"{p.target} ← {p.source}{'' if p.by_config else ' (always)'}"
            for p in self.family.pairs
        )
        arch = ", ".join(self.architectures) if self.architectures else "no architecture"
        return (
            f"{self.family.title} checkpoint ({arch}): {KEY}={value} ({source}); the family "
            f"ties {pairs}"
        )


def declared_ties(config: Mapping[str, Any], where: str) -> Declared:
    """What ``config`` (a ``config.json``) declares.

    Raises:
        FileFormatError: ``tie_word_embeddings``, ``model_type`` or ``architectures``
            are not what transformers writes (a boolean, a string, a list of strings).
    """
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise FileFormatError(f"{where}: model_type is {model_type!r}; expected a string")
    architectures = config.get("architectures")
    if architectures is None:
        architectures = []
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise FileFormatError(
            f"{where}: architectures is {architectures!r}; expected a list of class names"
        )
    value = config.get(KEY)
    if value is not None and not isinstance(value, bool):
        raise FileFormatError(f"{where}: {KEY} is {value!r}; expected true or false")
    family = FAMILIES.get(model_type) if model_type is not None else None
    if family is None:
        tied = value
        from_default = False
    else:
        tied = family.tie_default if value is None else value
        from_default = value is None
    return Declared(model_type, tuple(architectures), family, tied, from_default)
