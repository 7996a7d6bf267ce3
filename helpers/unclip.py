"""unCLIP (DALL-E 2 / Karlo) helpers: deterministic DDIM decoding and DDIM inversion of images.

Introduced in notebook 03_unclip_image_interpolation. Everything here works on any diffusers
``UnCLIPImageVariationPipeline`` — Karlo, the teaching unCLIP, or ``helpers.tiny_pipeline("unclip")``.
Embeddings come from :func:`helpers.embeddings.encode_images` / :func:`helpers.embeddings.encode_text`.

DALL-E 2 describes an image by a *bipartite latent*: its CLIP image embedding ``z_i`` (what it shows) and the
decoder's DDIM-inverted noise ``x_T`` (how exactly it is drawn). :func:`invert` computes ``x_T`` (and the same
for the super-resolution stage); :func:`decode` renders ``(z_i, x_T)`` back with deterministic DDIM, through
the stock pipeline, so decoding the inversion reconstructs the image and a slerp of both parts morphs one
image into another. Karlo's decoder also predicts a variance (twice the image channels); DDIM keeps only the
noise channels.

Stage one, the diffusion prior from a caption to an image embedding, lives in the text-to-image
``UnCLIPPipeline`` (the teaching ``"teaching-unclip-text"``; Karlo's image-variation checkpoint has none):
:func:`prior_embeddings` samples it on its own, so prompts can be walked between in image-embedding space
and decoded here.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from helpers.checks import check_eta, check_guidance, check_kwargs, check_prompts, check_steps
from helpers.interpolation import check_fractions
from helpers.pipeline_info import is_unclip, model_dtype

DEFAULT_STEPS = 25  # decoder steps of both decode and invert: keep them equal for exact round trips


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) images → (N, C, size, size), bilinear with antialiasing (how the decoder sees an image).

    Introduced in notebook 03_unclip_image_interpolation.
    """
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def upsample_like_pipeline(images: torch.Tensor, size: int) -> torch.Tensor:
    """The bicubic, antialiased upsample ``UnCLIPImageVariationPipeline`` feeds its super-resolution stage.

    Introduced in notebook 03_unclip_image_interpolation.
    """
    kwargs = {"antialias": True} if "antialias" in inspect.signature(F.interpolate).parameters else {}
    return F.interpolate(images, size=[size, size], mode="bicubic", align_corners=False, **kwargs)


def _check_unclip(pipe: Any) -> None:
    if not is_unclip(pipe):
        raise TypeError(
            f"{type(pipe).__name__} is not an unCLIP pipeline; use load_pipeline('teaching-unclip'), "
            "load_pipeline('karlo') or tiny_pipeline('unclip')"
        )


def _ddim_class():
    from diffusers import DDIMScheduler

    class UnCLIPDDIMScheduler(DDIMScheduler):
        """``DDIMScheduler`` that fits the loops of ``UnCLIPImageVariationPipeline``.

        The pipeline calls ``step(noise_pred, t, sample, prev_timestep=..., generator=...)``: DDIM knows its
        own previous timestep, so ``prev_timestep`` is ignored; a learned-variance output (2x channels, as
        Karlo's decoder has) keeps only its noise channels; ``eta`` is the scheduler's attribute.
        """

        eta = 0.0

        def step(self, model_output, timestep, sample, prev_timestep=None, generator=None, return_dict=True,
                 **kwargs):
            del prev_timestep
            kwargs.setdefault("eta", self.eta)
            return super().step(model_output[:, : sample.shape[1]], timestep, sample, generator=generator,
                                return_dict=return_dict, **kwargs)

    return UnCLIPDDIMScheduler


def ddim_scheduler(unclip_scheduler: Any, *, eta: float = 0.0, inverse: bool = False) -> Any:
    """A DDIM (or, with ``inverse=True``, a ``DDIMInverseScheduler``) on the same noise schedule.

    Introduced in notebook 03_unclip_image_interpolation. Built from the unCLIP scheduler's config (training
    timesteps, squared-cosine betas, prediction type), with "leading" timestep spacing so a DDIM pass and its
    inverse visit the same timesteps.
    """
    from diffusers import DDIMInverseScheduler

    eta = check_eta("eta", eta)
    cls = DDIMInverseScheduler if inverse else _ddim_class()
    config = {k: v for k, v in dict(unclip_scheduler.config).items() if not k.startswith("_")}
    config.pop("variance_type", None)
    # No clipping of the image estimate (clipping is not invertible, so inversion would not round-trip), and
    # the clean end at alpha_bar[0] rather than 1, where a sample-predicting model's noise is defined too.
    scheduler = cls.from_config(
        config, timestep_spacing="leading", set_alpha_to_one=False, steps_offset=0, clip_sample=False
    )
    if not inverse:
        scheduler.eta = float(eta)
    return scheduler


def with_ddim(pipe: Any, *, eta: float = 0.0) -> Any:
    """The same unCLIP pipeline (shared weights) with DDIM schedulers in both stages.

    Introduced in notebook 03_unclip_image_interpolation. ``eta`` applies to the decoder (0: deterministic,
    > 0: variations); the super-resolution stage always runs deterministic DDIM. The result is a plain
    ``UnCLIPImageVariationPipeline``, so ``helpers.render_frames`` drives it like any other.
    """
    _check_unclip(pipe)
    components = dict(pipe.components)
    components["decoder_scheduler"] = ddim_scheduler(pipe.decoder_scheduler, eta=eta)
    components["super_res_scheduler"] = ddim_scheduler(pipe.super_res_scheduler, eta=0.0)
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # the constructor warns that the unCLIP pipelines are deprecated
    try:
        new = type(pipe)(**components)
    finally:
        logging.set_verbosity(level)
    new.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return new


def _check_numbers(steps: Any, super_res_steps: Any, guidance_scale: Any, eta: Any = 0.0
                   ) -> tuple[int, int, float, float]:
    """The step counts, guidance and eta of :func:`decode` / :func:`invert`, through the shared gate."""
    return (check_steps("num_inference_steps", steps), check_steps("super_res_num_inference_steps", super_res_steps),
            check_guidance("guidance_scale", guidance_scale), check_eta("eta", eta))


def _rows(name: str, x: Any, n: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if n is not None and x.shape[0] not in (1, n):
        raise ValueError(f"{name} has {x.shape[0]} rows but there are {n} frames (give 1 or {n} rows)")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def decode(
    pipe: Any,
    image_embeddings: torch.Tensor,
    decoder_latents: torch.Tensor,
    super_res_latents: torch.Tensor,
    *,
    num_inference_steps: int = DEFAULT_STEPS,
    super_res_num_inference_steps: int = 7,
    guidance_scale: float = 1.0,
    eta: float = 0.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    output_type: str = "pt",
    batch_size: int | None = None,
) -> Any:
    """Render ``(image_embeddings, decoder_latents, super_res_latents)`` with DDIM through the stock pipeline.

    Introduced in notebook 03_unclip_image_interpolation. With ``eta=0`` the result is a deterministic
    function of the inputs (the same inputs give identical frames, in any batch); ``eta > 0`` adds fresh
    noise in the decoder (drawn from ``generator``), which makes variations. ``guidance_scale > 1`` applies
    the pipeline's classifier-free guidance with its learned null embedding. Latent rows broadcast (1 row for
    all frames). Frames go through the pipeline ``batch_size`` at a time (default: up to 8, on CUDA as many as
    the free memory holds at Karlo's measured 0.59 GiB per frame, :data:`helpers.models.FOOTPRINTS`), so a
    long morph fits a small GPU; a single ``generator`` with ``eta > 0`` keeps all frames in one call (its noise
    is drawn for the whole batch). Returns (N, 3, H, W) float32 in [0, 1] on the CPU for ``output_type="pt"``,
    else what the pipeline returns for ``"np"`` / ``"pil"``.
    """
    from helpers.render import check_batch_size, check_finite_frames

    _check_unclip(pipe)
    if output_type not in ("pt", "np", "pil"):
        raise ValueError(f"output_type must be 'pt', 'np' or 'pil', got {output_type!r}")
    steps, sr_steps, guidance_scale, eta = _check_numbers(num_inference_steps, super_res_num_inference_steps,
                                                          guidance_scale, eta)
    batch_size = check_batch_size(batch_size)
    emb = _rows("image_embeddings", image_embeddings)
    if emb.ndim != 2:
        raise ValueError(f"image_embeddings must be (N, dim), got shape {tuple(emb.shape)}")
    n = emb.shape[0]
    device, dtype = pipe._execution_device, model_dtype(pipe)
    lat = _rows("decoder_latents", decoder_latents, n)
    sr = _rows("super_res_latents", super_res_latents, n)
    expected = {"decoder_latents": (lat, pipe.decoder.config), "super_res_latents": (sr, pipe.super_res_first.config)}
    for name, (x, cfg) in expected.items():
        channels = cfg.in_channels if name == "decoder_latents" else cfg.in_channels // 2
        want = (channels, cfg.sample_size, cfg.sample_size)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"{name} rows must have shape {want} for this pipeline, got {tuple(x.shape[1:])}")
    lat = lat.to(device=device, dtype=dtype).expand(n, -1, -1, -1).contiguous()
    sr = sr.to(device=device, dtype=dtype).expand(n, -1, -1, -1).contiguous()
    emb = emb.to(device=device, dtype=dtype)
    if isinstance(generator, torch.Generator) and eta > 0:
        batch_size = n  # one generator draws the step noise of the whole batch: splitting it would change frames
    elif batch_size is None:
        from helpers.models import FOOTPRINTS
        from helpers.render import MAX_AUTO_BATCH, auto_batch_size, free_memory_bytes

        free = free_memory_bytes(device) if torch.device(device).type == "cuda" else None
        batch_size = min(n, auto_batch_size(free, FOOTPRINTS["unclip"][1], cap=MAX_AUTO_BATCH))
    sampler = with_ddim(pipe, eta=eta)
    chunks = []
    for start in range(0, n, batch_size):
        rows = slice(start, min(start + batch_size, n))
        chunks.append(sampler(
            image_embeddings=emb[rows],
            decoder_latents=lat[rows],
            super_res_latents=sr[rows],
            decoder_num_inference_steps=steps,
            super_res_num_inference_steps=sr_steps,
            decoder_guidance_scale=guidance_scale,
            generator=generator[rows] if isinstance(generator, list) else generator,
            output_type="np",
        ).images)
        check_finite_frames(chunks[-1], first=start)
    out = np.concatenate(chunks)
    if output_type == "pil":
        from diffusers.utils import numpy_to_pil

        return numpy_to_pil(out)
    if output_type == "pt":
        return torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).float()
    return out


#: The keyword arguments of :func:`decode`, which :func:`morph` passes on.
_DECODE_OPTIONS = tuple(k for k, v in inspect.signature(decode).parameters.items() if v.kind == v.KEYWORD_ONLY)


@dataclass
class UnCLIPInversion:
    """The bipartite latent of a batch of images: CLIP embeddings and DDIM-inverted noises of both stages."""

    image_embeddings: torch.Tensor
    decoder_latents: torch.Tensor
    super_res_latents: torch.Tensor


def morph(
    pipe: Any,
    inversion: UnCLIPInversion,
    t: Any,
    *,
    pair: tuple[int, int] = (0, 1),
    noise: Any = None,
    **decode_kwargs: Any,
) -> Any:
    """Decode the walk from image ``pair[0]`` to ``pair[1]`` of ``inversion`` at the fractions λ = ``t``.

    Introduced in notebook 03_unclip_image_interpolation. Both parts of the bipartite latent move: the CLIP
    embeddings are slerped (per row) and the inverted noises of both stages are interpolated with ``noise``
    (default :func:`helpers.interpolation.slerp`; e.g. :func:`helpers.smooth.adain_interpolate`), so λ = 0 and
    λ = 1 reconstruct the two images. ``decode_kwargs`` go to :func:`decode` (use the inversion's steps).
    """
    from helpers.interpolation import slerp

    noise = slerp if noise is None else noise
    check_kwargs("morph", decode_kwargs, _DECODE_OPTIONS)
    i, j = _check_pair(pair, inversion.image_embeddings.shape[0])
    ts = check_fractions("t", t, "0 = image pair[0], 1 = image pair[1]").tolist()
    return decode(
        pipe,
        slerp(inversion.image_embeddings[i], inversion.image_embeddings[j], ts, dim=-1),
        noise(inversion.decoder_latents[i], inversion.decoder_latents[j], ts),
        noise(inversion.super_res_latents[i], inversion.super_res_latents[j], ts),
        **decode_kwargs,
    )


def _check_pair(pair: Any, n: int) -> tuple[int, int]:
    """Two image indices into an inversion of ``n`` images (negative ones count from the end, as in Python)."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"pair must be two image indices, e.g. (0, 1), got {pair!r}")
    for k in pair:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not -n <= int(k) < n:
            raise ValueError(f"pair names image {k!r} of {n}: the inversion holds images 0 to {n - 1}")
    return int(pair[0]), int(pair[1])


def _decoder_inputs(pipe: Any, image_embeddings: torch.Tensor, guidance_scale: float):
    """Cross-attention context, additive time embedding and mask, built exactly as the pipeline builds them."""
    do_cfg = guidance_scale > 1.0
    n = image_embeddings.shape[0]
    prompt_embeds, hidden, mask = pipe._encode_prompt([""] * n, pipe._execution_device, 1, do_cfg)
    hidden, time_embeds = pipe.text_proj(
        image_embeddings=image_embeddings, prompt_embeds=prompt_embeds, text_encoder_hidden_states=hidden,
        do_classifier_free_guidance=do_cfg,
    )
    mask = F.pad(mask, (pipe.text_proj.clip_extra_context_tokens, 0), value=True)
    return hidden, time_embeds, mask


def _decoder_noise(pipe: Any, sample: torch.Tensor, t: torch.Tensor, inputs, guidance_scale: float):
    """The decoder's noise prediction for ``sample`` at ``t`` (guided as in the pipeline, variance dropped)."""
    hidden, time_embeds, mask = inputs
    do_cfg = guidance_scale > 1.0
    model_in = torch.cat([sample] * 2) if do_cfg else sample
    out = pipe.decoder(
        sample=model_in, timestep=t, encoder_hidden_states=hidden, class_labels=time_embeds, attention_mask=mask
    ).sample[:, : sample.shape[1]]
    if do_cfg:
        uncond, cond = out.chunk(2)
        out = uncond + guidance_scale * (cond - uncond)
    return out


def images_to_tensor(images: Any, size: int) -> torch.Tensor:
    """PIL images, arrays or (N, C, H, W) tensors in [0, 1] → (N, 3, size, size) float32 in [0, 1] on the CPU.

    Introduced in notebook 03_unclip_image_interpolation.
    """
    if isinstance(images, torch.Tensor):
        x = images.detach().to("cpu", torch.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"image tensors must be (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
        if x.min() < -1e-3 or x.max() > 1 + 1e-3:
            raise ValueError("image tensors must hold pixels in [0, 1]")
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    else:
        from helpers.media import to_pil_list

        arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in to_pil_list(images)])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if x.shape[-2:] != (size, size):
        x = upsample_like_pipeline(x, size) if x.shape[-1] < size else resize_images(x, size)
    return x.clamp(0, 1).contiguous()


@torch.no_grad()
def invert(
    pipe: Any,
    images: Any,
    image_embeddings: torch.Tensor | None = None,
    *,
    num_inference_steps: int = DEFAULT_STEPS,
    super_res_num_inference_steps: int = 7,
    guidance_scale: float = 1.0,
    invert_super_res: bool | None = None,
    generator: torch.Generator | None = None,
) -> UnCLIPInversion:
    """DDIM inversion of ``images`` given their CLIP embeddings: the bipartite latent ``(z_i, x_T)``.

    Introduced in notebook 03_unclip_image_interpolation. The decoder runs diffusers' ``DDIMInverseScheduler``
    on the image resized to the decoder's size, conditioned exactly as :func:`decode` conditions it (use the
    same ``guidance_scale`` and step counts there). The super-resolution stage is inverted too, conditioned on
    the upsampled low-resolution image, when ``invert_super_res`` is true (default: when it predicts noise, as
    Karlo's does); otherwise it gets one fixed row of standard noise drawn from ``generator`` (CPU, seed 0 by
    default) — a clean-image predictor such as the teaching model's barely depends on it, and a shared row
    keeps interpolations free of super-res flicker. ``decode(pipe, inv.image_embeddings, inv.decoder_latents,
    inv.super_res_latents)`` then reconstructs the images. Embeddings default to
    :func:`helpers.embeddings.encode_images` of ``images``.
    """
    from helpers.embeddings import encode_images
    from helpers.inversion import ddim_inversion

    _check_unclip(pipe)
    num_inference_steps, super_res_num_inference_steps, guidance_scale, _ = _check_numbers(
        num_inference_steps, super_res_num_inference_steps, guidance_scale)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    device, dtype = pipe._execution_device, model_dtype(pipe)
    sr_cfg, dec_cfg = pipe.super_res_first.config, pipe.decoder.config
    x = images_to_tensor(images, sr_cfg.sample_size)
    if image_embeddings is None:
        image_embeddings = encode_images(pipe, x)
    emb = _rows("image_embeddings", image_embeddings, x.shape[0]).to(device=device, dtype=dtype)
    emb = emb.expand(x.shape[0], -1)

    # Stage 1: the decoder, from the low-resolution image up to noise.
    sample = (resize_images(x, dec_cfg.sample_size) * 2 - 1).to(device=device, dtype=dtype)
    low = sample.clamp(-1, 1)
    inputs = _decoder_inputs(pipe, emb, guidance_scale)
    decoder_latents = ddim_inversion(lambda s, t, _i: _decoder_noise(pipe, s, t, inputs, guidance_scale),
                                     ddim_scheduler(pipe.decoder_scheduler, inverse=True), sample,
                                     num_inference_steps)

    if invert_super_res is None:
        invert_super_res = pipe.super_res_scheduler.config.get("prediction_type", "epsilon") == "epsilon"
    if not invert_super_res:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        shape = (1, sr_cfg.in_channels // 2, sr_cfg.sample_size, sr_cfg.sample_size)
        fixed = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
        return UnCLIPInversion(emb.float().cpu(), decoder_latents.float().cpu(), fixed.cpu().expand(len(x), -1, -1, -1))

    # Stage 2: super-resolution, conditioned on the upsampled low-resolution image (as in decoding).
    upscaled = upsample_like_pipeline(low, sr_cfg.sample_size)

    def super_res_noise(s: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
        unet = pipe.super_res_last if i == 0 else pipe.super_res_first  # decoding's last step is the first here
        return unet(sample=torch.cat([s, upscaled], dim=1), timestep=t).sample[:, : s.shape[1]]

    sample = ddim_inversion(super_res_noise, ddim_scheduler(pipe.super_res_scheduler, inverse=True),
                            (x * 2 - 1).to(device=device, dtype=dtype), super_res_num_inference_steps)
    return UnCLIPInversion(emb.float().cpu(), decoder_latents.float().cpu(), sample.float().cpu())


@torch.no_grad()
def prior_embeddings(
    pipe: Any,
    prompts: str | list[str],
    *,
    num_inference_steps: int = 25,
    guidance_scale: float = 4.0,
    seed: int = 0,
) -> torch.Tensor:
    """The CLIP image embeddings ``(N, dim)`` an ``UnCLIPPipeline``'s diffusion prior proposes for ``prompts``.

    Introduced in ``make demo`` (its prior walk, :func:`helpers.demo.prior_walk`; the unCLIP background is in
    notebook 03_unclip_image_interpolation). DALL-E 2's stage one on its own: the prior loop of
    diffusers' ``UnCLIPPipeline.__call__`` (its text encoding, ``prior_scheduler`` steps, classifier-free
    guidance with the empty prompt when ``guidance_scale > 1``, and ``prior.post_process_latents``), written out
    so that it stops before the decoder. Each prompt gets its own CPU generator seeded with ``seed`` (start noise
    and the scheduler's step noise), so a prompt's embedding does not depend on what else is in the batch. The
    result goes to :func:`decode` of an image-variation pipeline with the same decoder (the teaching unCLIP:
    ``load_pipeline("teaching-unclip")``), e.g. slerped between two prompts.
    """
    _check_prior(pipe)
    prompts = check_prompts(prompts)
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt")
    steps, guidance_scale, seed = _check_prior_numbers(num_inference_steps, guidance_scale, seed)
    device = pipe._execution_device
    do_cfg = guidance_scale > 1.0
    rows: list[torch.Tensor] = []
    for prompt in prompts:
        embeds, hidden, mask = pipe._encode_prompt([prompt], device, 1, do_cfg)
        rows.append(_prior_sample(pipe, embeds, hidden, mask, steps, guidance_scale, seed))
    return torch.cat(rows).float().cpu()


def _check_prior_numbers(steps: Any, guidance_scale: Any, seed: Any) -> tuple[int, float, int]:
    """The prior's step count (>= 2: UnCLIPScheduler divides by steps - 1), guidance and seed, up front."""
    from helpers.devices import check_seed

    return (check_steps("num_inference_steps", steps, low=2, hint="the prior's UnCLIPScheduler needs 2 or more"),
            check_guidance("guidance_scale", guidance_scale), check_seed(seed))


def _check_prior(pipe: Any) -> None:
    if getattr(pipe, "prior", None) is None or getattr(pipe, "prior_scheduler", None) is None:
        raise TypeError(
            f"{type(pipe).__name__} has no diffusion prior; use the text-to-image unCLIP pipeline "
            "(load_pipeline('teaching-unclip-text'))"
        )


@torch.no_grad()
def _prior_sample(pipe: Any, embeds, hidden, mask, steps: int, guidance_scale: float, seed: int) -> torch.Tensor:
    """One image embedding (1, dim) from the prior for one prompt's conditioning (rows [empty, prompt] when
    guided, as ``UnCLIPPipeline._encode_prompt`` returns them)."""
    from helpers.devices import make_generator

    do_cfg = guidance_scale > 1.0
    scheduler = pipe.prior_scheduler
    scheduler.set_timesteps(steps, device=embeds.device)
    timesteps = scheduler.timesteps
    generator = make_generator(seed)
    latents = torch.randn((1, pipe.prior.config.embedding_dim), generator=generator, dtype=torch.float32)
    latents = latents.to(device=embeds.device, dtype=embeds.dtype) * scheduler.init_noise_sigma
    for i, t in enumerate(timesteps):
        model_in = torch.cat([latents] * 2) if do_cfg else latents
        pred = pipe.prior(model_in, timestep=t, proj_embedding=embeds, encoder_hidden_states=hidden,
                          attention_mask=mask).predicted_image_embedding
        if do_cfg:
            uncond, cond = pred.chunk(2)
            pred = uncond + guidance_scale * (cond - uncond)
        prev = timesteps[i + 1] if i + 1 < len(timesteps) else None
        latents = scheduler.step(pred, timestep=t, sample=latents, generator=generator, prev_timestep=prev).prev_sample
    return pipe.prior.post_process_latents(latents)


def prior_text_walk(
    pipe: Any,
    prompt_a: str,
    prompt_b: str,
    t: Any,
    *,
    num_inference_steps: int = 25,
    guidance_scale: float = 4.0,
    seed: int = 0,
) -> torch.Tensor:
    """Image embeddings ``(len(t), dim)`` for a walk between two prompts *through the prior*, at the fractions
    λ = ``t``.

    Introduced in notebook 03_unclip_image_interpolation. As diffusers' community ``unclip_text_interpolation``
    does: the two prompts' CLIP text embeddings and their per-token hidden states are slerped (per vector), the
    attention mask is the union of the two prompts' masks (so a short prompt's padding does not hide a longer
    prompt's tokens), and the prior samples one image embedding per step from that conditioning, every step
    from the same seed. Decode the result with :func:`decode` of the image-variation pipeline.
    """
    from helpers.interpolation import slerp

    _check_prior(pipe)
    for name, prompt in (("prompt_a", prompt_a), ("prompt_b", prompt_b)):
        if not isinstance(prompt, str):
            raise TypeError(f"{name} must be a string (one prompt), got {prompt!r} ({type(prompt).__name__})")
    fracs = check_fractions("t", t, "0 = prompt_a, 1 = prompt_b")
    steps, guidance_scale, seed = _check_prior_numbers(num_inference_steps, guidance_scale, seed)
    device = pipe._execution_device
    do_cfg = guidance_scale > 1.0
    (ea, ha, ma), (eb, hb, mb) = (pipe._encode_prompt([p], device, 1, do_cfg) for p in (prompt_a, prompt_b))
    mask = ma | mb  # rows [empty prompt, prompt] when guided: the union keeps every token either prompt has
    rows = []
    for x in fracs:
        embeds = slerp(ea, eb, float(x), dim=-1)
        hidden = slerp(ha, hb, float(x), dim=-1)
        if do_cfg:  # the unconditional row is the empty prompt's, the same for both
            embeds, hidden = torch.cat([ea[:1], embeds[1:]]), torch.cat([ha[:1], hidden[1:]])
        rows.append(_prior_sample(pipe, embeds, hidden, mask, steps, guidance_scale, seed))
    return torch.cat(rows).float().cpu()
