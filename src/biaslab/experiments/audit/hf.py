"""Hugging Face ``transformers`` models, built offline from a configuration with random weights.

``biaslab audit hf:bert --config '{"num_hidden_layers": 12}'`` builds ``AutoModel.from_config``
of the model type's configuration: nothing is downloaded, no pretrained weights are read. Each
type starts from a tiny configuration (:data:`TINY`) so that the default audit is fast; ``--config``
overrides any field (``{"hidden_size": 768, "num_hidden_layers": 12, ...}`` gives BERT-base's
shape). Text models take random token ids (``--input-ids N,L``); vision models random pixels.

``transformers`` is an optional dependency (the ``transformers`` extra); it is imported here only.
"""

from __future__ import annotations

import json
from typing import Any

from ...infra.io import BiaslabError

__all__ = ["PREFIX", "TINY", "SIZE_FIELDS", "is_hf", "build_hf", "hf_example_shape", "check_sequence_length"]

PREFIX = "hf:"

_SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

#: The starting configuration of each model type; ``--config`` overrides fields.
TINY: dict[str, dict[str, Any]] = {
    "bert": {**_SMALL, "vocab_size": 128, "max_position_embeddings": 64},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "vocab_size": 128,
                   "max_position_embeddings": 64},
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 128, "n_positions": 64, "bos_token_id": 0,
             "eos_token_id": 0},
    "vit": {**_SMALL, "image_size": 16, "patch_size": 4, "num_channels": 3},
    "llama": {**_SMALL, "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 64,
              "attention_bias": True},
    "qwen2": {**_SMALL, "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 64},
}

#: Model types whose input is an image (``pixel_values``) rather than token ids.
_VISION = {"vit"}


#: Upper bounds of ``--config`` size fields: above the largest published models of these types
#: (GPT-3 has 96 layers and 96 heads, vocabularies stay under 2**20), so that a typo such as
#: ``1e6`` layers is refused before anything is built.
MAX_LAYERS = 256
MAX_HEADS = 256
MAX_WIDTH = 65_536
MAX_VOCAB = 2**20
MAX_POSITIONS = 2**17
MAX_IMAGE_SIZE = 4096
MAX_CHANNELS = 64

#: Each size field of the configurations in :data:`TINY` (and GPT-2's ``n_inner``) → its upper bound;
#: ``--config`` values of these fields must be integers in [1, bound].
SIZE_FIELDS: dict[str, int] = {
    **dict.fromkeys(("num_hidden_layers", "n_layers", "n_layer"), MAX_LAYERS),
    **dict.fromkeys(("num_attention_heads", "n_heads", "n_head", "num_key_value_heads"), MAX_HEADS),
    **dict.fromkeys(("hidden_size", "intermediate_size", "dim", "hidden_dim", "n_embd", "n_inner"), MAX_WIDTH),
    "vocab_size": MAX_VOCAB,
    **dict.fromkeys(("max_position_embeddings", "n_positions"), MAX_POSITIONS),
    **dict.fromkeys(("image_size", "patch_size"), MAX_IMAGE_SIZE),
    "num_channels": MAX_CHANNELS,
}
#: Size fields that ``null`` leaves to the model's own rule (GPT-2: 4 * n_embd; Llama: one per head).
_NULLABLE = {"n_inner", "num_key_value_heads"}


def is_hf(target: str) -> bool:
    """Is ``target`` a Hugging Face model spec (``hf:TYPE``)?"""
    return target.startswith(PREFIX)


def _config_overrides(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BiaslabError(f"`config` must be a JSON object such as '{{\"num_hidden_layers\": 2}}' ({exc.msg} at "
                           f"character {exc.pos})") from None
    if not isinstance(value, dict):
        raise BiaslabError(f"`config` must be a JSON object of configuration fields (got {type(value).__name__})")
    for field, size in value.items():
        bound = SIZE_FIELDS.get(field)
        if bound is None or (size is None and field in _NULLABLE):
            continue
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= bound:
            raise BiaslabError(f"`config` {field} must be an integer from 1 to {bound} (got {json.dumps(size)})")
    return value


def build_hf(target: str, config: str | None = None) -> Any:
    """``AutoModel.from_config`` of the type named by ``target`` (``hf:bert``), random weights, offline.

    Raises
    ------
    BiaslabError
        for an unknown type, a bad ``config``, or when ``transformers`` is not installed.
    """
    kind = target[len(PREFIX):]
    if kind not in TINY:
        raise BiaslabError(f"unknown Hugging Face model type {kind!r}; choose one of: "
                           f"{', '.join(PREFIX + k for k in TINY)}")
    overrides = _config_overrides(config)
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError:
        raise BiaslabError("hf: models need the transformers package: pip install 'biaslab[transformers]'") from None
    try:
        cfg = AutoConfig.for_model(kind, **{**TINY[kind], **overrides})
        return AutoModel.from_config(cfg)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        from ...infra.io import first_line

        raise BiaslabError(f"cannot build {target} with `config` {json.dumps(overrides)}: {first_line(exc)}") from None


def hf_example_shape(model: Any) -> tuple[str, tuple[int, ...]]:
    """What the model reads: ``("ids", (vocab_size,))`` for text, ``("pixels", (C, H, W))`` for images."""
    cfg = model.config
    if cfg.model_type in _VISION:
        return "pixels", (cfg.num_channels, cfg.image_size, cfg.image_size)
    return "ids", (cfg.vocab_size,)


def check_sequence_length(model: Any, length: int) -> None:
    """Refuse token sequences longer than the model's position table, naming the ``--config`` field to raise."""
    cfg = model.config
    for field in ("max_position_embeddings", "n_positions"):
        limit = getattr(cfg, field, None)
        if isinstance(limit, int) and length > limit:
            raise BiaslabError(f"`input_ids` asks for {length} tokens, more than this configuration's {field} = "
                               f"{limit}; pass fewer tokens or `config` '{{\"{field}\": {length}}}'")
