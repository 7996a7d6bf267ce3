"""What a loaded pipeline is: its family, what it is conditioned on, its latent and output sizes, dtype, device.

Introduced in notebook 01_diffusion_basics. The one place that reads these facts off a diffusers pipeline, so
that rendering, walks on disk, morphs, backends and benchmarks agree on them. A leaf: it imports no other
module of the package but :mod:`helpers.checks`. Every function is pure (it only reads the pipeline).

Families: ``"sd"`` (Stable Diffusion 1.x/2.x and any UNet + VAE text-to-image pipeline), ``"sdxl"``,
``"sd3"`` (Stable Diffusion 3 / 3.5: an MMDiT transformer on a flow-matching schedule), ``"flux"`` (FLUX.1: a
transformer whose latents travel packed into 2x2-patch tokens) and ``"unclip"``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from helpers.checks import check_side

FAMILIES = ("sd", "sdxl", "sd3", "flux", "unclip")

#: The per-frame conditioning each family's pipeline call takes (the pooled parts of SDXL, SD 3 and FLUX travel
#: packed as a last token, see :func:`helpers.embeddings.pack_pooled`). FLUX's negative parts only act through
#: true classifier-free guidance (``true_cfg_scale`` > 1): FLUX.1-dev is guidance-distilled.
CONDITIONING = {
    "sd": ("prompt_embeds", "negative_prompt_embeds"),
    "sdxl": ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"),
    "sd3": ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"),
    "flux": ("prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds"),
    "unclip": ("image_embeddings",),
}

#: FLUX.1's true classifier-free guidance scale where a negative prompt must act (:func:`negative_guidance`).
FLUX_TRUE_CFG = 4.0


@dataclass(frozen=True)
class PipelineInfo:
    """The facts of one pipeline at its native size (see :func:`pipeline_info`)."""

    family: str
    kind: str
    conditioning: tuple[str, ...]
    latent_shape: tuple[int, int, int]
    size: tuple[int, int]
    dtype: torch.dtype
    device: torch.device


def _class_names(pipe: Any) -> list[str]:
    return [cls.__name__ for cls in type(pipe).__mro__]


def is_unclip(pipe: Any) -> bool:
    """True for unCLIP-style pipelines (a decoder conditioned on CLIP image embeddings, then super-res).

    Introduced in notebook 03_unclip_image_interpolation."""
    return hasattr(pipe, "decoder") and hasattr(pipe, "super_res_first")


def is_sdxl(pipe: Any) -> bool:
    """Whether ``pipe`` is SDXL-like: a UNet, a second text encoder and pooled text embeddings
    (``StableDiffusionXLPipeline``).

    Introduced in notebook 04_prompt_walks."""
    return (getattr(pipe, "unet", None) is not None and getattr(pipe, "text_encoder_2", None) is not None
            and callable(pipe) and "pooled_prompt_embeds" in inspect.signature(pipe).parameters)


def family(pipe: Any) -> str:
    """One of :data:`FAMILIES` (SD 3 and FLUX are told by their class names only), else ``TypeError``.

    Introduced in notebook 01_diffusion_basics."""
    if is_unclip(pipe):
        return "unclip"
    names = _class_names(pipe)
    if any(n.startswith("StableDiffusion3") for n in names):
        return "sd3"
    if any(n.startswith("Flux") for n in names):
        return "flux"
    if is_sdxl(pipe):
        return "sdxl"
    if getattr(pipe, "unet", None) is not None:
        return "sd"
    raise TypeError(f"{type(pipe).__name__} is none of the pipeline families {', '.join(FAMILIES)}")


def negative_guidance(pipe: Any) -> tuple[str, dict[str, float]]:
    """How a negative prompt acts on ``pipe``: (the keyword whose value > 1 makes the pipeline evaluate it, the
    keyword arguments that turn that on where it is off by default).

    FLUX.1 is guidance-distilled (its ``guidance_scale`` is an input of the transformer, with no negative
    branch): a negative acts only through true classifier-free guidance, ``true_cfg_scale`` > 1, which
    ``{"true_cfg_scale": FLUX_TRUE_CFG}`` turns on (twice the transformer evaluations); without it the pipeline
    never evaluates the negative. The other families' ``guidance_scale`` already pushes away from the negative
    prompt: nothing to turn on."""
    if family(pipe) == "flux":
        return "true_cfg_scale", {"true_cfg_scale": FLUX_TRUE_CFG}
    return "guidance_scale", {}


def render_kind(pipe: Any) -> str:
    """How :func:`helpers.render.render_frames` drives ``pipe``, read from its call's signature: ``"text2img"``
    (it takes ``prompt_embeds``) or ``"unclip"`` (it takes ``image_embeddings``); else ``TypeError``.

    Introduced in notebook 01_diffusion_basics."""
    params = inspect.signature(pipe).parameters if callable(pipe) else {}
    if "image_embeddings" in params:
        return "unclip"
    if "prompt_embeds" in params:
        return "text2img"
    raise TypeError(
        f"render_frames does not know how to drive {type(pipe).__name__}: it takes neither prompt_embeds "
        "(text-to-image) nor image_embeddings (unCLIP)"
    )


def min_steps(pipe: Any) -> tuple[int, str]:
    """The fewest sampling steps ``pipe``'s scheduler can take, and why when it is more than one: unCLIP's
    scheduler cannot take a single step, and a flow-matching scheduler with ``shift_terminal`` stretches its σ
    grid to end there, which divides by zero on a one-step grid (the teaching flow model's)."""
    if is_unclip(pipe):
        return 2, "UnCLIPScheduler cannot take a single step"
    config = getattr(getattr(pipe, "scheduler", None), "config", None) or {}
    if config.get("shift_terminal"):
        return 2, (f"{type(pipe.scheduler).__name__} stretches its σ grid to end at shift_terminal "
                   f"{config['shift_terminal']}, which takes at least two steps")
    return 1, ""


def vae_scale(pipe: Any) -> int:
    """Pixels per latent cell along a side: the VAE's scale factor, 1 for a pixel-space model without VAE.

    Introduced in notebook 01_diffusion_basics."""
    return int(getattr(pipe, "vae_scale_factor", 1)) if getattr(pipe, "vae", None) is not None else 1


def latent_shape(
    pipe: Any, *, height: int | None = None, width: int | None = None, kind: str = "decoder"
) -> tuple[int, int, int]:
    """(channels, h, w) of one row of initial noise for ``pipe``.

    Stable Diffusion: ``(unet.in_channels, height / vae_scale, width / vae_scale)``; SD 3 the same with the
    transformer's channels; FLUX the latents *before* packing, ``(transformer.in_channels / 4, ...)``, with sides
    that are multiples of twice the VAE's scale (see :func:`helpers.embeddings.pack_latents`). unCLIP: the decoder's
    ``(in_channels, sample_size, sample_size)`` for ``kind="decoder"``, or the super-resolution stage's for
    ``kind="super_res"`` (its size is fixed, so ``height``/``width`` must be left out). A pixel-space UNet
    without VAE: ``(in_channels, sample_size, sample_size)``. ``height``/``width`` must be multiples of the VAE's
    scale, at most :data:`helpers.checks.MAX_SIZE_FACTOR` times the model's native size.

    Introduced in notebook 01_diffusion_basics.
    """
    if kind not in ("decoder", "super_res"):
        raise ValueError(f"kind must be 'decoder' or 'super_res', got {kind!r}")
    if is_unclip(pipe):
        if height is not None or width is not None:
            raise ValueError("unCLIP pipelines have a fixed image size; leave height and width out")
        if kind == "super_res":
            cfg = pipe.super_res_first.config
            return cfg.in_channels // 2, cfg.sample_size, cfg.sample_size
        cfg = pipe.decoder.config
        return cfg.in_channels, cfg.sample_size, cfg.sample_size
    if kind != "decoder":
        raise ValueError("kind='super_res' only exists for unCLIP pipelines")
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is None:
        raise TypeError(f"cannot tell the latent shape of {type(pipe).__name__}: it has no unet, transformer or "
                        "decoder")
    cfg, scale = denoiser.config, vae_scale(pipe)
    if getattr(pipe, "unet", None) is None:  # SD 3 / FLUX: the pipeline's default_sample_size, in latent cells
        sizes = (int(getattr(pipe, "default_sample_size", getattr(cfg, "sample_size", 128))),) * 2
    else:
        sizes = (cfg.sample_size,) * 2 if isinstance(cfg.sample_size, int) else tuple(cfg.sample_size)
    flux = family(pipe) == "flux"
    multiple = scale * 2 if flux else scale  # FLUX packs 2x2 latent cells into one token
    native_h, native_w = sizes[0] * scale, sizes[-1] * scale
    height = native_h if height is None else check_side("height", height, native=native_h, multiple=multiple)
    width = native_w if width is None else check_side("width", width, native=native_w, multiple=multiple)
    channels = cfg.in_channels // 4 if flux else cfg.in_channels
    return channels, height // scale, width // scale


def output_size(pipe: Any, height: int | None = None, width: int | None = None) -> tuple[int, int]:
    """The frames' ``(height, width)`` in pixels: the model's native size unless ``height``/``width`` are given
    (checked as :func:`latent_shape` checks them). unCLIP: the super-resolution stage's fixed size.

    Introduced in notebook 01_diffusion_basics."""
    if is_unclip(pipe):
        h, w = latent_shape(pipe, kind="super_res")[-2:]
        return int(h), int(w)
    scale = vae_scale(pipe)
    h, w = latent_shape(pipe, height=height, width=width)[-2:]
    return int(h) * scale, int(w) * scale


def native_size(pipe: Any) -> tuple[int, int]:
    """The model's own ``(height, width)`` in pixels, what it was trained at.

    Introduced in notebook 01_diffusion_basics."""
    return output_size(pipe)


def model_dtype(pipe: Any) -> torch.dtype:
    """The dtype of the pipeline's denoiser (UNet, transformer, or unCLIP's decoder), which its inputs are cast to.

    Introduced in notebook 01_diffusion_basics."""
    for name in ("unet", "transformer", "decoder"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module.dtype
    return getattr(pipe, "dtype", torch.float32)


def execution_device(pipe: Any) -> torch.device:
    """The device the pipeline computes on (diffusers' ``_execution_device``), the CPU when it says nothing.

    Introduced in notebook 01_diffusion_basics."""
    found = getattr(pipe, "_execution_device", None) or getattr(pipe, "device", None)
    return torch.device(found) if found is not None else torch.device("cpu")


#: T5 tokens in the prompt embeddings of SD 3 (its pipeline's default ``max_sequence_length``; zeros when the
#: pipeline has no T5) and of FLUX (its pipeline's default).
SD3_T5_TOKENS = 256
FLUX_T5_TOKENS = 512


def text_tokens(pipe: Any) -> int:
    """How many tokens long one prompt's embeddings are (before the pooled token that
    :func:`helpers.embeddings.pack_pooled` appends): CLIP's 77 for SD and SDXL, CLIP's 77 plus T5's for SD 3,
    T5's for FLUX.

    Introduced in notebook 04_prompt_walks."""
    fam = family(pipe)
    if fam == "flux":
        return FLUX_T5_TOKENS
    clip = int(pipe.tokenizer.model_max_length)
    return clip + t5_tokens(pipe) if fam == "sd3" else clip


def t5_tokens(pipe: Any) -> int:
    """How many T5 tokens an SD 3 pipeline's prompt embeddings hold: :data:`SD3_T5_TOKENS`, or fewer when its
    T5 tokenizer is shorter (the teaching flow model has no T5 and a one-token tokenizer: one zero token).

    Introduced in notebook 04_prompt_walks."""
    tokenizer = getattr(pipe, "tokenizer_3", None)
    return min(SD3_T5_TOKENS, int(tokenizer.model_max_length)) if tokenizer is not None else SD3_T5_TOKENS


def pooled_width(pipe: Any) -> int | None:
    """The width of the pooled text embedding that SDXL, SD 3 and FLUX take beside the tokens; None for the
    families without one. SDXL: the second encoder's projection; SD 3 and FLUX: what the transformer takes.

    Introduced in notebook 04_prompt_walks."""
    fam = family(pipe)
    if fam == "sdxl":
        return int(pipe.text_encoder_2.config.projection_dim)
    if fam in ("sd3", "flux"):
        return int(pipe.transformer.config.pooled_projection_dim)
    return None


def token_width(pipe: Any) -> int | None:
    """The width of one token of the prompt embeddings the denoiser attends to (the UNet's cross-attention
    width, the transformer's joint-attention width); None for unCLIP.

    Introduced in notebook 04_prompt_walks."""
    if is_unclip(pipe):
        return None
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        width = getattr(unet.config, "cross_attention_dim", None)
    else:
        width = getattr(getattr(getattr(pipe, "transformer", None), "config", None), "joint_attention_dim", None)
    return width if isinstance(width, int) else None


def pipeline_info(pipe: Any) -> PipelineInfo:
    """All the facts above at once, at the native size (:class:`PipelineInfo`).

    Introduced in notebook 01_diffusion_basics."""
    fam = family(pipe)
    return PipelineInfo(family=fam, kind=render_kind(pipe), conditioning=CONDITIONING[fam],
                        latent_shape=latent_shape(pipe), size=native_size(pipe), dtype=model_dtype(pipe),
                        device=execution_device(pipe))


__all__ = ["CONDITIONING", "FAMILIES", "FLUX_T5_TOKENS", "FLUX_TRUE_CFG", "PipelineInfo", "SD3_T5_TOKENS",
           "execution_device", "family", "is_sdxl", "is_unclip", "latent_shape", "min_steps", "model_dtype",
           "native_size", "negative_guidance", "output_size", "pipeline_info", "pooled_width", "render_kind",
           "t5_tokens", "text_tokens", "token_width", "vae_scale"]
