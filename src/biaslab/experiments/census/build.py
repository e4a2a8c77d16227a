"""One ``transformers`` model type, built offline at a tiny size, with an example input it accepts.

* :func:`tiny_overrides` shrinks a configuration generically, by the names of its fields: layers to
  2, heads to 2, widths to 32, feed-forward widths to 64, experts to 4, vocabularies to 512, channel
  lists scaled down, per-layer lists cut to the new depth; sub-configurations (``text_config``,
  ``vision_config``, ...) are shrunk the same way.
* :func:`build_tiny` tries the shrunk configuration, then milder ones, counting parameters on the
  meta device first, so nothing large is ever allocated; the model gets random weights.
* :func:`example_inputs` proposes inputs by the model's ``main_input_name`` (token ids, pixels,
  audio samples or features); :class:`Call` turns the model into ``module(*tensors) -> tensors``,
  the form the audit reads.
* :func:`default_bias_counts` builds the configuration's *default* model (the released size) on
  the meta device, which allocates nothing, to read each bias parameter's size.

``transformers`` is imported inside the functions; nothing is downloaded (the caller sets
``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["MAX_TINY_PARAMS", "CensusSkip", "tiny_overrides", "tiny_models", "build_tiny", "build_with_input",
           "pick_input", "Call", "example_inputs",
           "default_bias_counts", "uses_rotary", "rotary_for", "config_class_name"]

#: Most parameters a "tiny" build may have; a configuration that does not shrink below this is skipped.
MAX_TINY_PARAMS = 20_000_000

LAYERS, HEADS, WIDTH, FFN, EXPERTS, VOCAB, IMAGE = 2, 2, 32, 64, 4, 512, 64
_WIDTH_FIELDS = {"hidden_size", "d_model", "n_embd", "embed_dim", "dim", "hidden_dim", "emb_dim", "embedding_dim",
                 "d_embed", "model_dim", "embedding_size", "projection_dim", "encoder_hidden_size",
                 "decoder_hidden_size", "out_hidden_size", "projector_hidden_size", "word_embed_proj_dim",
                 "output_hidden_size", "encoder_hidden_dim", "query_dim", "hidden_size_per_layer_input",
                 "memory_attention_hidden_size", "memory_encoder_hidden_size", "fpn_hidden_size", "latent_dim",
                 "pooler_output_size", "codevector_dim", "proj_codevector_dim", "classifier_proj_size",
                 "xvector_output_dim", "mask_downsampler_embed_dim", "memory_fuser_embed_dim"}
_HEAD_DIM_FIELDS = {"head_dim", "d_kv", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "kv_lora_rank",
                    "q_lora_rank", "qk_head_dim", "linear_key_head_dim", "linear_value_head_dim", "mamba_d_head",
                    "index_head_dim", "swa_head_dim", "linear_head_dim"}
_FFN_FIELDS = {"ffn_dim", "d_ff", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "ff_dim", "mlp_dim",
               "memory_fuser_intermediate_dim"}
_LAYER_FIELDS = {"depth", "n_layer", "n_layers", "num_blocks", "num_encoder_blocks"}
_KEEP_LAYER_FIELDS = {"num_feat_extract_layers", "vision_feature_layer", "insert_layer_id", "max_window_layers",
                      "first_k_dense_replace", "num_nextn_predict_layers", "num_kv_shared_layers"}
_CHANNEL_LISTS = {"hidden_sizes", "neck_hidden_sizes", "backbone_channel_list", "stage_in_channels", "conv_dim",
                  "embedding_dimension", "tdnn_dim", "encoder_in_channels", "decoder_in_channels"}
_DEPTH_LISTS = {"depths", "stage_num_blocks"}
_HEADS = re.compile(r"(^|_)heads?(_|$)")
_HEAD_LISTS = {"num_heads", "num_attention_heads"}


class CensusSkip(Exception):
    """A model type that cannot be audited offline; the message is the one-line reason."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _round8(x: int, top: int, cap: int = FFN) -> int:
    return max(8, (x * cap // max(top, 1)) // 8 * 8)


def tiny_overrides(values: dict[str, Any], image: bool = True, widths: bool = True) -> dict[str, Any]:
    """Fields to change in a configuration (``config.to_dict()``) to make its model tiny.

    ``image`` also caps image sizes at :data:`IMAGE`; ``widths`` also caps widths, heads and
    feed-forward sizes (without it only depths, experts and vocabularies shrink).
    """
    out: dict[str, Any] = {}
    layer_counts = set()
    for k, v in values.items():
        low = k.lower()
        if isinstance(v, dict) and v and all(str(i).isdigit() for i in v):  # per-layer settings by layer index
            kept = {i: x for i, x in v.items() if int(i) < LAYERS}
            if len(kept) < len(v):
                out[k] = kept
            continue
        if isinstance(v, dict) and (low.endswith("config") or "model_type" in v):
            sub = tiny_overrides(v, image, widths)
            if sub:
                out[k] = {**v, **sub}
            continue
        if _is_int(v):
            new = v
            if (low.endswith("layers") and low not in _KEEP_LAYER_FIELDS) or low in _LAYER_FIELDS:
                new = min(v, LAYERS)
                if new != v:
                    layer_counts.add(v)
            elif "experts" in low and "per_tok" not in low and "shared" not in low:
                new = min(v, EXPERTS)
            elif low in ("num_experts_per_tok", "moe_topk", "top_k", "moe_k"):
                new = min(v, 2)
            elif low in ("n_group", "topk_group"):
                new = 1
            elif "vocab_size" in low and low != "type_vocab_size":
                new = min(v, VOCAB)
            elif not widths:
                pass
            elif low in _HEAD_DIM_FIELDS:
                new = min(v, 16)
            elif low == "rotary_dim":
                new = min(v, 8)
            elif _HEADS.search(low) and not low.endswith(("dim", "size")):
                new = min(v, HEADS)
            elif low in _WIDTH_FIELDS:
                new = min(v, WIDTH)
            elif "intermediate" in low or low in _FFN_FIELDS or low.endswith("ffn_dim"):
                new = min(v, FFN)
            elif image and low in ("image_size", "img_size") and v > IMAGE:
                new = IMAGE
            if new != v:
                out[k] = new
        elif isinstance(v, list) and v and all(_is_int(x) for x in v):
            if widths and low in _CHANNEL_LISTS:
                out[k] = [_round8(x, max(v)) for x in v]
            elif low in _DEPTH_LISTS:
                out[k] = [1] * len(v)
            elif widths and low in _HEAD_LISTS:
                out[k] = [min(x, HEADS) for x in v]
            elif image and low == "image_size" and max(v) > IMAGE:
                out[k] = [IMAGE] * len(v)
    # per-layer lists (layer_types, mlp_only_layers, ...) follow the new depth
    for k, v in values.items():
        if isinstance(v, list) and len(v) in layer_counts and "layer" in k.lower():
            out[k] = v[:LAYERS]
    vocab = out.get("vocab_size", values.get("vocab_size"))
    if _is_int(vocab):
        for k, v in values.items():
            if k.endswith("token_id") and _is_int(v) and v >= vocab:
                out[k] = min(v, vocab - 1) if v < 2 * vocab else (v % (vocab - 1)) + 1
    return out


def config_class_name(model_type: str) -> str:
    from transformers import CONFIG_MAPPING

    return CONFIG_MAPPING[model_type].__name__


def _config(model_type: str, **fields: Any):
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type, **fields)


def _meta_model(cfg: Any) -> nn.Module:
    from transformers import AutoModel

    with torch.device("meta"):
        return AutoModel.from_config(cfg)


def _one_line(exc: BaseException) -> str:
    from ...infra.io import first_line

    text = first_line(exc)
    return f"{type(exc).__name__}: {text[:200]}"


def tiny_models(model_type: str, seed: int = 0, reasons: list[str] | None = None) -> Iterator[tuple[nn.Module, Any, str]]:
    """Small models of ``model_type`` with random weights, the tiniest first: ``(model, configuration,
    which shrink)``. Each shrink that fails (or stays above :data:`MAX_TINY_PARAMS` parameters)
    appends its reason to ``reasons``.

    Raises :class:`CensusSkip` when the configuration itself cannot be created.
    """
    from transformers import AutoModel

    try:
        default = _config(model_type)
    except Exception as exc:  # noqa: BLE001 - any configuration class may refuse
        raise CensusSkip(f"its configuration cannot be created: {_one_line(exc)}") from None
    values = default.to_dict()
    attempts = [("tiny", tiny_overrides(values)), ("tiny, default image size", tiny_overrides(values, image=False)),
                ("default widths, 2 layers", tiny_overrides(values, image=False, widths=False))]
    reasons = [] if reasons is None else reasons
    seen = []
    for label, fields in attempts:
        if fields in seen:
            continue
        seen.append(fields)
        try:
            cfg = _config(model_type, **fields)
            n = sum(p.numel() for p in _meta_model(cfg).parameters())
        except Exception as exc:  # noqa: BLE001 - a shrunk configuration may be inconsistent
            reasons.append(f"{label}: {_one_line(exc)}")
            continue
        if n > MAX_TINY_PARAMS:
            reasons.append(f"{label}: {n:,} parameters")
            continue
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = AutoModel.from_config(cfg)
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"{label}: {_one_line(exc)}")
            continue
        yield model.eval(), cfg, label


def build_tiny(model_type: str, seed: int = 0) -> tuple[nn.Module, Any, str]:
    """The first of :func:`tiny_models`; :class:`CensusSkip` with the reasons when none builds."""
    reasons: list[str] = []
    for built in tiny_models(model_type, seed, reasons):
        return built
    raise CensusSkip("cannot build a small model from its configuration (" + "; ".join(reasons)[:300] + ")")


def build_with_input(model_type: str, seed: int = 0) -> tuple[nn.Module, Any, str, "Call", tuple, str]:
    """The tiniest model of ``model_type`` that runs on one of its example inputs:
    ``(model, configuration, shrink, Call wrapper, input tensors, input description)``."""
    reasons: list[str] = []
    for model, cfg, label in tiny_models(model_type, seed, reasons):
        try:
            call, args, desc = pick_input(model, cfg, seed)
        except CensusSkip as exc:
            reasons.append(f"{label}: {exc}")
            continue
        return model, cfg, label, call, args, desc
    if reasons and all("fails on every example input" in r or "an input the census" in r for r in reasons):
        raise CensusSkip(reasons[0].split(": ", 1)[1][:400])
    raise CensusSkip("cannot build a small model that runs (" + "; ".join(reasons)[:400] + ")")


class Call(nn.Module):
    """``model(**dict(zip(names, args)), **extra)`` as ``module(*args)``, returning its floating tensors."""

    def __init__(self, model: nn.Module, names: list[str], extra: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)
        self.extra = dict(extra)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        import random

        import numpy as np
        from torch.utils._pytree import tree_leaves

        # Some models draw training-mode masks from NumPy or ``random`` (wav2vec2's SpecAugment):
        # the same draws on every call, so that a perturbed run differs from the base run by the
        # perturbation alone. The callers' generator states are restored.
        np_state, py_state = np.random.get_state(), random.getstate()
        np.random.seed(0)
        random.seed(0)
        try:
            out = self.model(**dict(zip(self.names, args)), **self.extra)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        if hasattr(out, "to_tuple"):
            out = out.to_tuple()
        return tuple(t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.is_floating_point())


def _sub(cfg: Any, *names: str) -> Any:
    for name in names:
        sub = getattr(cfg, name, None)
        if sub is not None:
            return sub
    return cfg


def _image_size(cfg: Any) -> tuple[int, int]:
    size = getattr(cfg, "image_size", None)
    if isinstance(size, (list, tuple)) and len(size) >= 2:
        return int(size[0]), int(size[1])
    if _is_int(size):
        return size, size
    return IMAGE, IMAGE


def _vocab(model: nn.Module, cfg: Any) -> int:
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    vocab = getattr(text, "vocab_size", None)
    try:
        emb = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        emb = None
    if isinstance(emb, nn.Embedding):
        vocab = min(vocab or emb.num_embeddings, emb.num_embeddings)
    return max(2, min(int(vocab or VOCAB), VOCAB))


def example_inputs(model: nn.Module, cfg: Any, seed: int = 0) -> list[tuple[str, list[str], tuple, dict]]:
    """Candidate inputs for ``model``: ``(description, argument names, tensors, extra keywords)``,
    the likeliest first."""
    g = torch.Generator().manual_seed(seed)
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    extra: dict[str, Any] = {}
    if "use_cache" in params:
        extra["use_cache"] = False
    if "return_dict" in params:
        extra["return_dict"] = True
    main = getattr(model, "main_input_name", "input_ids")
    out = []
    vocab = _vocab(model, cfg)

    def ids(n: int = 2, length: int = 8) -> torch.Tensor:
        return torch.randint(3, vocab, (n, length), generator=g) if vocab > 3 else torch.randint(0, vocab, (n, length),
                                                                                                 generator=g)

    if main in ("input_ids",) or "input_ids" in params:
        x = ids()
        if "decoder_input_ids" in params:
            out.append(("input_ids (2, 8) and decoder_input_ids (2, 8)", ["input_ids", "decoder_input_ids"],
                        (x, ids()), extra))
        out.append(("input_ids (2, 8)", ["input_ids"], (x,), extra))
    if main == "pixel_values" or "pixel_values" in params:
        vcfg = _sub(cfg, "vision_config", "backbone_config")
        h, w = _image_size(vcfg)
        c = getattr(vcfg, "num_channels", None) or getattr(cfg, "num_channels", None) or 3
        x = torch.randn((2, c, h, w), generator=g)
        out.append((f"pixel_values (2, {c}, {h}, {w})", ["pixel_values"], (x,), extra))
        frames = getattr(vcfg, "num_frames", None)
        if _is_int(frames):
            video = torch.randn((2, frames, c, h, w), generator=g)
            out.append((f"pixel_values (2, {frames}, {c}, {h}, {w})", ["pixel_values"], (video,), extra))
        if "decoder_input_ids" in params:
            out.append((f"pixel_values (2, {c}, {h}, {w}) and decoder_input_ids (2, 8)",
                        ["pixel_values", "decoder_input_ids"], (x, ids()), extra))
    if "input_ids" in params and "pixel_values" in params:  # dual encoders (CLIP-like) want both
        vcfg = _sub(cfg, "vision_config")
        h, w = _image_size(vcfg)
        c = getattr(vcfg, "num_channels", None) or 3
        out.append((f"input_ids (2, 8) and pixel_values (2, {c}, {h}, {w})", ["input_ids", "pixel_values"],
                    (ids(), torch.randn((2, c, h, w), generator=g)), extra))
    if main == "input_values" or "input_values" in params:
        for shape in ((2, 4000), (2, 16000), (2, 1, 4000)):
            out.append((f"input_values {shape}", ["input_values"], (torch.randn(shape, generator=g),), extra))
    if main == "input_features" or "input_features" in params:
        acfg = _sub(cfg, "audio_config", "encoder_config")
        mels = getattr(acfg, "num_mel_bins", None) or getattr(acfg, "feature_size", None) or 80
        src = getattr(acfg, "max_source_positions", None)
        lengths = [2 * src] if _is_int(src) else []
        for t in dict.fromkeys([*lengths, 64, 3000]):
            x = torch.randn((2, mels, t), generator=g)
            out.append((f"input_features (2, {mels}, {t})", ["input_features"], (x,), extra))
            if "decoder_input_ids" in params:
                out.append((f"input_features (2, {mels}, {t}) and decoder_input_ids (2, 8)",
                            ["input_features", "decoder_input_ids"], (x, ids()), extra))
    return out


def pick_input(model: nn.Module, cfg: Any, seed: int = 0) -> tuple[Call, tuple, str]:
    """The first candidate input the model runs on, as ``(Call wrapper, tensors, description)``.

    Raises :class:`CensusSkip` when none runs."""
    candidates = example_inputs(model, cfg, seed)
    if not candidates:
        main = getattr(model, "main_input_name", "?")
        raise CensusSkip(f"takes {main}, an input the census does not make")
    errors = []
    for desc, names, args, extra in candidates:
        call = Call(model, names, extra).eval()
        try:
            with torch.no_grad():
                outs = call(*args)
        except Exception as exc:  # noqa: BLE001 - try the next candidate
            errors.append(f"{desc}: {_one_line(exc)}")
            continue
        if not outs:
            errors.append(f"{desc}: no floating-point output")
            continue
        return call, args, desc
    raise CensusSkip("fails on every example input (" + "; ".join(errors)[:300] + ")")


def uses_rotary(values: dict[str, Any]) -> bool:
    """Does a configuration (``to_dict()``) ask for rotary position embeddings? A named choice of
    position embedding (``position_embeddings_type: "relative"``) wins over rotary settings that
    are merely present."""
    for k in ("position_embedding_type", "position_embeddings_type"):
        if isinstance(values.get(k), str):
            return "rotary" in values[k] or "rope" in values[k]
    for k, v in values.items():
        low = k.lower()
        if isinstance(v, dict) and low.endswith("config") and uses_rotary(v):
            return True
        if ("rope" in low or "rotary" in low) and v not in (None, False, 0, "", [], {}):
            return True
        if low == "position_embedding_type" and isinstance(v, str) and "rotary" in v:
            return True
    return False


def rotary_for(param: str, values: dict[str, Any]) -> bool:
    """Does the part of the model that holds ``param`` use rotary embeddings? A parameter under a
    tower named like a sub-configuration (``vision_tower`` → ``vision_config``) follows that
    sub-configuration; any other follows the top level and ``text_config``."""
    first = param.split(".")[0].lower()
    first = "vision" if first.startswith("visual") else first
    subs = {k[: -len("_config")]: v for k, v in values.items() if isinstance(v, dict) and k.endswith("_config")}
    for stem, sub in subs.items():
        if stem and stem != "text" and stem in first:
            return uses_rotary(sub)
    top = {k: v for k, v in values.items() if not (isinstance(v, dict) and k.endswith("_config"))}
    return uses_rotary(top) or ("text_config" in subs and uses_rotary(subs["text_config"]))


def default_bias_counts(model_type: str) -> tuple[int, dict[str, int]]:
    """``(total parameters, {bias parameter name: size})`` of the default-size model, built on the meta device."""
    from ...nets.biases import is_bias_parameter

    model = _meta_model(_config(model_type))
    total = 0
    biases: dict[str, int] = {}
    for name, p in model.named_parameters():
        total += p.numel()
        if is_bias_parameter(name):
            biases[name] = p.numel()
    return total, biases


LAYER_INDEX = re.compile(r"\.\d+(?=\.)")


def pattern(name: str) -> str:
    """``encoder.layer.3.attention.self.key.bias`` → ``encoder.layer.*.attention.self.key.bias``."""
    return LAYER_INDEX.sub(".*", name)
