"""Inputs → embeddings and latents: prompts, images and seeds turned into the tensors a walk interpolates.

Introduced in notebooks 01_diffusion_basics (prompts and seeds) and 03_unclip_image_interpolation (images,
CLIP text embeddings). Every function runs the pipeline's own tokenizer and encoders under
``torch.no_grad()``; noise is drawn on the CPU, one seeded generator per row, so a seed gives the same
latents on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from helpers.checks import check_prompts
from helpers.devices import make_generator
from helpers.pipeline_info import (
    FLUX_T5_TOKENS,
    execution_device,
    family,
    is_unclip,
    latent_shape,
    t5_tokens,
)


def pack_pooled(embeds: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """The token and pooled text embeddings (SDXL, SD 3, FLUX) as one tensor: the pooled row, zero-padded to the token width, appended as a
    last token. ``(N, seq, dim)`` and ``(N, p)`` with ``p <= dim`` → ``(N, seq + 1, dim)``.

    Every walk (slerp, lerp, paths, walk files, widgets) then interpolates the token embeddings of both encoders
    and the pooled embedding together, and :func:`unpack_pooled` splits them again: linear combinations keep
    the padding zero. Introduced in notebook 04_prompt_walks.
    """
    if pooled.shape[-1] > embeds.shape[-1]:
        raise ValueError(f"the pooled embedding ({pooled.shape[-1]}) is wider than the tokens ({embeds.shape[-1]})")
    row = torch.zeros(embeds.shape[0], 1, embeds.shape[-1], dtype=embeds.dtype, device=embeds.device)
    row[:, 0, : pooled.shape[-1]] = pooled.to(embeds.dtype)
    return torch.cat([embeds, row], dim=1)


def unpack_pooled(packed: torch.Tensor, width: int, tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_embeds, pooled_prompt_embeds)`` from :func:`pack_pooled`'s layout: the last token's first
    ``width`` values are the pooled embedding, the rest of it is padding and dropped (a walk that moves in every
    direction, such as :func:`helpers.walk_around`, may have moved it). ``tokens`` is the encoders' sequence
    length: ``packed`` must have one more, else it was not packed (one clear error)."""
    if packed.ndim != 3 or packed.shape[1] < 2 or (tokens is not None and packed.shape[1] != tokens + 1):
        raise ValueError(
            f"these prompt_embeds ({tuple(packed.shape)}) do not carry a pooled embedding as their last token"
            f"{f' (want {tokens} + 1 tokens)' if tokens else ''}; encode the prompts with "
            "helpers.encode_prompts(pipe, prompts) on this pipeline (SDXL, SD 3 and FLUX take a pooled embedding)"
        )
    return packed[:, :-1], packed[:, -1, :width]


def _device_of(pipe: Any, device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else execution_device(pipe)


def _text_parts(pipe: Any, purpose: str) -> tuple[Any, Any]:
    """The pipeline's tokenizer and text encoder, or one ``TypeError`` (``purpose`` ends its sentence)."""
    tokenizer, text_encoder = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
    if tokenizer is None or text_encoder is None:
        raise TypeError(f"{type(pipe).__name__} has no tokenizer/text encoder{purpose}")
    return tokenizer, text_encoder


def _run_text_encoder(tokenizer: Any, text_encoder: Any, texts: list[str], device: torch.device) -> Any:
    """The text encoder's output for ``texts``, padded to the tokenizer's length, without gradients."""
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids.to(device))


def encode_prompts(
    pipe: Any,
    prompts: str | Sequence[str],
    *,
    negative_prompt: str | Sequence[str] = "",
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text embeddings ``(prompt_embeds, negative_prompt_embeds)``, each ``(N, seq, dim)``, for N prompts.

    Uses the pipeline's own tokenizer and text encoders (``pipe.encode_prompt``). For SDXL, SD 3 and FLUX the
    token embeddings (SDXL: both CLIPs'; SD 3: both CLIPs' then T5's; FLUX: T5's) come with the pooled embedding
    packed in as a last token (:func:`pack_pooled`), so every walk interpolates all of them with one fraction;
    :func:`helpers.render_frames` unpacks them. The negative embeddings are what classifier-free guidance pushes
    away from; pass both to :func:`~helpers.render.render_frames` (with guidance > 1 diffusers needs both once
    you give embeddings). FLUX.1 is guidance-distilled: its negatives act only through true classifier-free
    guidance, ``true_cfg_scale`` > 1 (twice the transformer evaluations), and are left out otherwise.

    Introduced in notebook 01_diffusion_basics.
    """
    if is_unclip(pipe):
        raise TypeError(
            "encode_prompts is for text-to-image pipelines; an unCLIP pipeline is conditioned on CLIP image "
            "embeddings: use encode_images(pipe, images) (and encode_text(pipe, prompts) for text diffs)"
        )
    prompts = check_prompts(prompts)
    negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else negative_prompt
    negatives = check_prompts(negatives, "negative_prompt")
    if len(negatives) != len(prompts):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(negatives)} negative prompts; give one or one each"
        )
    device = _device_of(pipe, device)
    fam = family(pipe)
    with torch.no_grad():
        if fam == "sdxl":  # two encoders' tokens and the pooled embedding, packed (see pack_pooled)
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                prompts, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                negative_prompt=negatives)
            return pack_pooled(embeds, pooled), pack_pooled(negative, negative_pooled)
        if fam == "sd3":  # CLIP-L ‖ CLIP-G tokens, then T5's (zeros without T5); both CLIPs' pooled
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                prompts, None, None, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                negative_prompt=negatives, max_sequence_length=t5_tokens(pipe))
            return pack_pooled(embeds, pooled), pack_pooled(negative, negative_pooled)
        if fam == "flux":  # T5's tokens and CLIP's pooled output; the negatives act only with true_cfg_scale > 1
            embeds, pooled, _ = pipe.encode_prompt(prompts, None, device=device, max_sequence_length=FLUX_T5_TOKENS)
            negative, negative_pooled, _ = pipe.encode_prompt(negatives, None, device=device,
                                                              max_sequence_length=FLUX_T5_TOKENS)
            return pack_pooled(embeds, pooled), pack_pooled(negative, negative_pooled)
        if hasattr(pipe, "encode_prompt"):
            embeds, negative = pipe.encode_prompt(
                prompts, device, 1, True, negative_prompt=negatives
            )  # (prompt, device, num_images_per_prompt, do_classifier_free_guidance)
            return embeds, negative
        parts = _text_parts(pipe, " to encode prompts with")
        return _run_text_encoder(*parts, prompts, device)[0], _run_text_encoder(*parts, negatives, device)[0]


def encode_text(
    pipe: Any, prompts: str | Sequence[str], *, device: str | torch.device | None = None
) -> torch.Tensor:
    """CLIP text embeddings ``(N, dim)`` of an unCLIP pipeline: the projected ``text_embeds``.

    These live in the same space as :func:`encode_images`' embeddings, which is what the DALL-E 2 text diff
    (``helpers.text_diff``) needs.

    Introduced in notebook 03_unclip_image_interpolation.
    """
    prompts = check_prompts(prompts)
    tokenizer, text_encoder = _text_parts(pipe, "")
    out = _run_text_encoder(tokenizer, text_encoder, prompts, _device_of(pipe, device))
    if not hasattr(out, "text_embeds"):
        raise TypeError(
            f"{type(text_encoder).__name__} gives no projected text_embeds; encode_text needs a "
            "CLIPTextModelWithProjection (an unCLIP pipeline such as load_pipeline('karlo'))"
        )
    return out.text_embeds


def _to_pil_list(images: Any) -> list[Any]:
    """Images in any form :func:`helpers.media.to_pil_list` accepts (PIL, arrays, tensors in [0, 1], batches,
    lists), as RGB PIL images: the one image-conversion path of the package."""
    from helpers.media import to_pil_list

    return [im.convert("RGB") for im in to_pil_list(images)]


def encode_images(pipe: Any, images: Any, *, device: str | torch.device | None = None) -> torch.Tensor:
    """CLIP image embeddings ``(N, dim)`` of an unCLIP pipeline (feature extractor + image encoder).

    ``images``: a PIL image or a list of them, uint8 arrays (H, W, C) / (N, H, W, C), float arrays in [0, 1],
    or tensors (C, H, W) / (N, C, H, W) in [0, 1].

    Introduced in notebook 03_unclip_image_interpolation.
    """
    extractor, encoder = getattr(pipe, "feature_extractor", None), getattr(pipe, "image_encoder", None)
    if extractor is None or encoder is None:
        raise TypeError(
            f"{type(pipe).__name__} has no CLIP image encoder; encode_images needs an unCLIP pipeline "
            "(load_pipeline('karlo'), load_pipeline('teaching-unclip') or tiny_pipeline('unclip'))"
        )
    pil = _to_pil_list(images)
    device = _device_of(pipe, device)
    pixels = extractor(images=pil, return_tensors="pt").pixel_values
    with torch.no_grad():
        return encoder(pixels.to(device=device, dtype=encoder.dtype)).image_embeds


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return [int(seeds)]
    if isinstance(seeds, torch.Tensor | np.ndarray):
        seeds = seeds.tolist()
    if not isinstance(seeds, Sequence) or isinstance(seeds, str):
        raise TypeError(f"seeds must be an int or a list of ints, got {seeds!r}")
    if len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed")
    return list(seeds)


def pack_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Latents as the pipeline's denoiser takes them: unchanged, except for FLUX, whose ``(N, C, h, w)`` latents
    travel as ``(N, h/2 · w/2, 4C)`` tokens, one per 2x2 patch (channel-major within a token, patches in
    row-major order, as FLUX's own pipeline packs them). A slerp's norms and angles are the same before and after:
    packing only reorders the numbers.

    Introduced in notebook 05_circular_noise_walks."""
    if family(pipe) != "flux":
        return latents
    n, c, h, w = latents.shape
    patches = latents.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(n, (h // 2) * (w // 2), c * 4)


def make_latents(
    pipe: Any,
    seeds: int | Sequence[int],
    *,
    height: int | None = None,
    width: int | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    kind: str = "decoder",
) -> torch.Tensor:
    """Initial noise ``(len(seeds), C, h, w)``: row i is standard Gaussian noise drawn from ``seeds[i]``.

    Drawn in float32 on a CPU generator (:func:`~helpers.devices.make_generator`), then moved to ``device``
    (default: the pipeline's) in ``dtype`` (default: the pipeline's), so the same seed gives the same latents
    on every device. Shape from :func:`latent_shape`; for unCLIP use ``kind="super_res"`` for the
    super-resolution stage's noise.

    Introduced in notebook 01_diffusion_basics.
    """
    shape = latent_shape(pipe, height=height, width=width, kind=kind)
    rows = [
        torch.randn((1, *shape), generator=make_generator(s), dtype=torch.float32) for s in _seed_list(seeds)
    ]
    device = _device_of(pipe, device)
    dtype = dtype or getattr(pipe, "dtype", torch.float32)
    return torch.cat(rows).to(device=device, dtype=dtype)
