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

from helpers.checks import check_side
from helpers.devices import make_generator


def is_unclip(pipe: Any) -> bool:
    """True for unCLIP-style pipelines (a decoder conditioned on CLIP image embeddings, then super-res)."""
    return hasattr(pipe, "decoder") and hasattr(pipe, "super_res_first")


def is_sdxl(pipe: Any) -> bool:
    """Whether ``pipe`` is SDXL-like: a second text encoder and pooled text embeddings (``StableDiffusionXLPipeline``)."""
    import inspect

    return (getattr(pipe, "text_encoder_2", None) is not None and callable(pipe)
            and "pooled_prompt_embeds" in inspect.signature(pipe).parameters)


def pooled_width(pipe: Any) -> int:
    """The width of an SDXL pipeline's pooled text embedding (the second encoder's projection)."""
    return int(pipe.text_encoder_2.config.projection_dim)


def pack_pooled(embeds: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """SDXL's two text embeddings as one tensor: the pooled row, zero-padded to the token width, appended as a
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
            f"these prompt_embeds ({tuple(packed.shape)}) do not carry an SDXL pooled embedding as their last token"
            f"{f' (want {tokens} + 1 tokens)' if tokens else ''}; encode the prompts with "
            "helpers.encode_prompts(pipe, prompts) on this SDXL pipeline"
        )
    return packed[:, :-1], packed[:, -1, :width]


def _device_of(pipe: Any, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    found = getattr(pipe, "_execution_device", None) or getattr(pipe, "device", None)
    return torch.device(found) if found is not None else torch.device("cpu")


def _as_prompt_list(prompts: str | Sequence[str], what: str = "prompts") -> list[str]:
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"{what} must be a string or a list of strings, got {prompts!r}")
    if len(prompts) == 0:
        raise ValueError(f"{what} is empty: give at least one prompt")
    return list(prompts)


def encode_prompts(
    pipe: Any,
    prompts: str | Sequence[str],
    *,
    negative_prompt: str | Sequence[str] = "",
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text embeddings ``(prompt_embeds, negative_prompt_embeds)``, each ``(N, seq, dim)``, for N prompts.

    Uses the pipeline's own tokenizer and text encoder (``pipe.encode_prompt`` for Stable Diffusion). For SDXL
    both encoders' token embeddings come with the pooled embedding packed in as a last token
    (:func:`pack_pooled`), so every walk interpolates all of them; :func:`helpers.render_frames` unpacks them. The
    negative embeddings are what classifier-free guidance pushes away from; pass both to
    :func:`~helpers.render.render_frames` (with guidance > 1 diffusers needs both once you give embeddings).

    Introduced in notebook 01_diffusion_basics.
    """
    if is_unclip(pipe):
        raise TypeError(
            "encode_prompts is for text-to-image pipelines; an unCLIP pipeline is conditioned on CLIP image "
            "embeddings: use encode_images(pipe, images) (and encode_text(pipe, prompts) for text diffs)"
        )
    prompts = _as_prompt_list(prompts)
    negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else negative_prompt
    negatives = _as_prompt_list(negatives, "negative_prompt")
    if len(negatives) != len(prompts):
        raise ValueError(
            f"got {len(prompts)} prompts but {len(negatives)} negative prompts; give one or one each"
        )
    device = _device_of(pipe, device)
    with torch.no_grad():
        if is_sdxl(pipe):  # two encoders' tokens and the pooled embedding, packed (see pack_pooled)
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                prompts, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                negative_prompt=negatives)
            return pack_pooled(embeds, pooled), pack_pooled(negative, negative_pooled)
        if hasattr(pipe, "encode_prompt"):
            embeds, negative = pipe.encode_prompt(
                prompts, device, 1, True, negative_prompt=negatives
            )  # (prompt, device, num_images_per_prompt, do_classifier_free_guidance)
            return embeds, negative
        tokenizer, text_encoder = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
        if tokenizer is None or text_encoder is None:
            raise TypeError(f"{type(pipe).__name__} has no tokenizer/text encoder to encode prompts with")

        def run(texts: list[str]) -> torch.Tensor:
            ids = tokenizer(
                texts,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            return text_encoder(ids.to(device))[0]

        return run(prompts), run(negatives)


def encode_text(
    pipe: Any, prompts: str | Sequence[str], *, device: str | torch.device | None = None
) -> torch.Tensor:
    """CLIP text embeddings ``(N, dim)`` of an unCLIP pipeline: the projected ``text_embeds``.

    These live in the same space as :func:`encode_images`' embeddings, which is what the DALL-E 2 text diff
    (``helpers.text_diff``) needs.

    Introduced in notebook 03_unclip_image_interpolation.
    """
    prompts = _as_prompt_list(prompts)
    tokenizer, text_encoder = getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)
    if tokenizer is None or text_encoder is None:
        raise TypeError(f"{type(pipe).__name__} has no tokenizer/text encoder")
    device = _device_of(pipe, device)
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        out = text_encoder(ids.to(device))
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


def latent_shape(
    pipe: Any, *, height: int | None = None, width: int | None = None, kind: str = "decoder"
) -> tuple[int, int, int]:
    """(channels, h, w) of one row of initial noise for ``pipe``.

    Stable Diffusion: ``(unet.in_channels, height / vae_scale, width / vae_scale)``. unCLIP: the decoder's
    ``(in_channels, sample_size, sample_size)`` for ``kind="decoder"``, or the super-resolution stage's for
    ``kind="super_res"`` (its size is fixed, so ``height``/``width`` must be left out). A pixel-space UNet
    without VAE: ``(in_channels, sample_size, sample_size)``. ``height``/``width`` must be multiples of the VAE's
    scale, at most :data:`helpers.checks.MAX_SIZE_FACTOR` times the model's native size.
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
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise TypeError(f"cannot tell the latent shape of {type(pipe).__name__}: it has no unet or decoder")
    cfg = unet.config
    sizes = (cfg.sample_size,) * 2 if isinstance(cfg.sample_size, int) else tuple(cfg.sample_size)
    scale = int(getattr(pipe, "vae_scale_factor", 1)) if getattr(pipe, "vae", None) is not None else 1
    native_h, native_w = sizes[0] * scale, sizes[-1] * scale
    height = native_h if height is None else check_side("height", height, native=native_h, multiple=scale)
    width = native_w if width is None else check_side("width", width, native=native_w, multiple=scale)
    return cfg.in_channels, height // scale, width // scale


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
