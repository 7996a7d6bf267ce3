"""Morphing your own images with a Stable Diffusion or flow-matching (SD 3, FLUX) pipeline, without training (notebook 08).

The lesson's data flow, one function per stage:

1. :func:`prepare_images` — the user's pictures (files, PIL images of any mode and size) as RGB at the model's
   size: transparent pixels over white, centre-cropped to the aspect ratio, then resized (never stretched).
2. :func:`invert_images` — DDIM inversion (diffusers' ``DDIMInverseScheduler``) of each image, conditioned on its
   caption or on the empty prompt: the initial noise that DDIM turns back into the image.
3. :func:`morph_inputs` — the path between the two endpoints: slerp (or AdaIN, :func:`helpers.adain_interpolate`)
   of the inverted noises and slerp of the caption embeddings.
4. :func:`render_morph` — DDIM from those inputs, optionally with **attention interpolation**
   (:func:`attention_interpolation`): while the frame at fraction λ is denoised, every self-attention layer
   attends to keys and values mixed from the two endpoint trajectories, which are denoised in the same batch
   (AID's inner/outer interpolation, FreeMorph's use of the endpoints' keys and values). Re-timing is :func:`helpers.retime` with a
   ``render_morph`` call as its render function.
5. :func:`chained_img2img` — the "contextual" alternative: each frame is an img2img of the previous frame.

Flow-matching pipelines (SD 3 / 3.5, FLUX.1) take the same steps: inversion runs the flow ODE upwards with a
second-order solver (:mod:`helpers.flow`, FireFlow's one evaluation per step by default), the morph integrates it
back down with the same solver, and attention interpolation uses :class:`JointAttentionInterpolation`, which mixes
the **image tokens only** of the transformer's joint (text + image) attention.

Metrics (:func:`endpoint_error`, :func:`helpers.walk_report`) need no network weights.

Introduced in notebook 08_morph_your_own_images.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from helpers.checks import MAX_SIDE, check_guidance, check_int, check_real, check_steps
from helpers.devices import check_seed
from helpers.pipeline_info import output_size
from helpers.render import plan_batch_size

#: How the self-attention layers mix the endpoints' keys and values (see :class:`AttentionInterpolation`).
ATTENTION_MODES = ("inner", "outer", "fused")
#: How the inverted noises are interpolated.
NOISE_PATHS = ("slerp", "adain")


# --------------------------------------------------------------------------------------------------
# 1. Images in
# --------------------------------------------------------------------------------------------------


def _one_image(item: Any) -> Any:
    from PIL import Image

    from helpers import media

    if isinstance(item, (str, os.PathLike)):
        return media.load_image(item, mode="RGBA")
    if isinstance(item, Image.Image):
        return item
    return media.to_pil(item)  # arrays and tensors; its errors name what was wrong


def prepare_images(images: Any, size: int | tuple[int, int]) -> list[Any]:
    """Images as the model sees them: RGB PIL images of exactly ``size`` (an int or ``(width, height)``).

    ``images`` is a list of file paths, PIL images (any mode: greyscale, palette, RGBA, 16-bit), arrays or
    tensors. Transparent pixels are put on white, then each image is centre-cropped to the target aspect ratio
    and resized with Lanczos (``PIL.ImageOps.fit``): a 640x480 photo loses a band on its long side, it is never
    stretched.

    Introduced in notebook 08_morph_your_own_images.
    """
    from PIL import Image, ImageOps

    from helpers.media import alpha_on_white

    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, Sequence) or not images:
        raise ValueError(f"images must be a non-empty list of images or file paths, got {type(images).__name__}")
    pair = size if isinstance(size, (tuple, list)) and len(size) == 2 else (size, size)
    w, h = (check_int("size", s, low=1, high=MAX_SIDE, hint="an int, or a (width, height) pair of ints")
            for s in pair)
    out = []
    for item in images:
        im = alpha_on_white(_one_image(item))
        out.append(ImageOps.fit(im.convert("RGB"), (w, h), method=Image.Resampling.LANCZOS))
    return out


def images_to_array(images: Any) -> np.ndarray:
    """PIL images → (N, H, W, 3) float64 in [0, 1], the layout :func:`render_morph` returns."""
    return np.stack([np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0 for im in images])


# --------------------------------------------------------------------------------------------------
# 2. DDIM inversion
# --------------------------------------------------------------------------------------------------


def _check_sd(pipe: Any, what: str) -> None:
    for part in ("vae", "unet", "scheduler", "text_encoder"):
        if getattr(pipe, part, None) is None:
            raise TypeError(
                f"{what} needs a Stable-Diffusion-style text-to-image pipeline (VAE, UNet, text encoder, "
                f"scheduler); {type(pipe).__name__} has no {part}. Use choose_backend(BACKEND, 'text2img')."
            )


def _is_flow(pipe: Any) -> bool:
    """True for the flow-matching families (SD 3, FLUX), whose morphs integrate :mod:`helpers.flow`'s ODE."""
    from helpers.flow import FLOW_FAMILIES
    from helpers.pipeline_info import family

    try:
        return family(pipe) in FLOW_FAMILIES
    except TypeError:
        return False


def _check_morphable(pipe: Any, what: str) -> None:
    if not _is_flow(pipe):
        _check_sd(pipe, what)


@dataclass(frozen=True, eq=False)
class ImageInversion:
    """What :func:`invert_images` found: the inputs as the model saw them and the noises that rebuild them.

    ``latents`` (N, C, h, w) are the inverted initial noises, ``prompt_embeds`` (N, seq, dim) the caption
    embeddings each image was inverted with, ``negative_prompt_embeds`` (1, seq, dim) the empty prompt's (for
    guidance). Render with the same ``steps`` and guidance 1 to reconstruct the images. ``solver`` is the ODE
    solver the inversion ran backwards: ``"ddim"`` for the Stable Diffusion families, one of
    :data:`helpers.flow.SOLVERS` for flow-matching pipelines (the morph samples with the same one).

    Introduced in notebook 08_morph_your_own_images.
    """

    images: list[Any]
    prompts: list[str]
    latents: torch.Tensor
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    steps: int
    height: int
    width: int
    solver: str = "ddim"


@torch.no_grad()
def invert_images(
    pipe: Any,
    images: Any,
    prompts: str | Sequence[str] | None = None,
    *,
    num_inference_steps: int = 20,
    height: int | None = None,
    width: int | None = None,
    solver: str | None = None,
) -> ImageInversion:
    """DDIM-invert ``images`` (see :func:`prepare_images`) with ``pipe``'s VAE and UNet.

    Each image is encoded by the VAE (the mean of its latent distribution), then ``DDIMInverseScheduler`` runs
    the DDIM update upwards, from the clean latent at t = 0 towards noise, with the UNet conditioned on the
    image's caption (``prompts``: one per image, one for all, or ``None`` for the empty prompt) and no
    guidance. The one approximation is DDIM inversion's own: the noise predicted at the lower timestep is used
    for the step up. ``height``/``width`` default to the model's size.

    Flow-matching pipelines (SD 3, FLUX): the latents are integrated up the flow ODE on the pipeline's σ grid
    with ``solver`` (default ``"fireflow"``: second order for one evaluation per step; ``"midpoint"`` or
    ``"euler"``, see :mod:`helpers.flow`), conditioned on the caption without guidance (FLUX: distilled guidance 1).

    Introduced in notebook 08_morph_your_own_images.
    """
    from diffusers import DDIMInverseScheduler

    from helpers.embeddings import encode_prompts
    from helpers.inversion import ddim_inversion

    _check_morphable(pipe, "invert_images")
    flow_model = _is_flow(pipe)
    if flow_model:
        from helpers.flow import SOLVERS

        solver = "fireflow" if solver is None else solver
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS} for a flow-matching pipeline, got {solver!r}")
    elif solver not in (None, "ddim"):
        raise ValueError(f"{type(pipe).__name__} is inverted with DDIM; leave solver out (the flow solvers "
                         f"{solver!r} serve SD 3 and FLUX pipelines)")
    steps = check_steps("num_inference_steps", num_inference_steps)
    height, width = output_size(pipe, height, width)  # checked by the gate every pipeline call uses
    pil = prepare_images(images, (width, height))
    if prompts is None:
        prompts = [""] * len(pil)
    elif isinstance(prompts, str):
        prompts = [prompts] * len(pil)
    prompts = list(prompts)
    if len(prompts) != len(pil) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be one string, or one string per image ({len(pil)}), got {prompts!r}")

    pixels = pipe.image_processor.preprocess(pil, height=height, width=width)
    embeds, negative = encode_prompts(pipe, prompts)
    if flow_model:
        from helpers import flow

        velocity = flow.velocity_fn(pipe, embeds)
        grid = flow.sigmas(pipe, steps, height=height, width=width).flip(0)  # σ from 0 up to 1
        noise = cast(torch.Tensor, flow.integrate(velocity, flow.encode_image_latents(pipe, pixels), grid, str(solver)))
        return ImageInversion(images=pil, prompts=prompts, latents=noise.float().cpu(),
                              prompt_embeds=embeds.float().cpu(), negative_prompt_embeds=negative[:1].float().cpu(),
                              steps=steps, height=height, width=width, solver=str(solver))
    device, dtype = pipe._execution_device, pipe.unet.dtype
    pixels = pixels.to(device=device, dtype=pipe.vae.dtype)
    latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
    cond = embeds.to(device=device, dtype=dtype)
    inverse = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    latents = ddim_inversion(lambda x, t, _i: pipe.unet(x, t, encoder_hidden_states=cond).sample, inverse,
                             latents.to(dtype), steps)
    return ImageInversion(images=pil, prompts=prompts, latents=latents.float().cpu(),
                          prompt_embeds=embeds.float().cpu(), negative_prompt_embeds=negative[:1].float().cpu(),
                          steps=steps, height=height, width=width)


# --------------------------------------------------------------------------------------------------
# 3. The path between the endpoints
# --------------------------------------------------------------------------------------------------


def _check_ts(ts: Any) -> np.ndarray:
    from helpers.interpolation import check_fractions

    return check_fractions("ts", ts, "0 = the first image, 1 = the second")


def _check_pair(inversion: Any) -> None:
    if not isinstance(inversion, ImageInversion):
        raise TypeError(f"expected the ImageInversion of invert_images(pipe, [image_a, image_b]), got "
                        f"{type(inversion).__name__}")
    if inversion.latents.shape[0] != 2:
        raise ValueError(f"a morph needs exactly 2 images, this inversion has {inversion.latents.shape[0]}; "
                         "invert them as invert_images(pipe, [image_a, image_b])")


def morph_inputs(inversion: ImageInversion, ts: Any, *, noise: str = "slerp") -> tuple[torch.Tensor, torch.Tensor]:
    """The initial noises (T, C, h, w) and caption embeddings (T, seq, dim) of the frames at ``ts``.

    Noises: ``noise="slerp"`` (:func:`helpers.slerp`) or ``"adain"`` (slerp, then each channel given the mean and
    standard deviation interpolated linearly between the endpoints', :func:`helpers.adain_interpolate`).
    Embeddings: slerp of the two captions' embeddings, token by token (lerp for a token that is zero in either,
    as SD 3's T5 tokens are when the pipeline has no T5).

    Introduced in notebook 08_morph_your_own_images.
    """
    from helpers.interpolation import slerp
    from helpers.smooth import adain_interpolate

    _check_pair(inversion)
    fracs = _check_ts(ts).tolist()
    if noise not in NOISE_PATHS:
        raise ValueError(f"noise must be one of {NOISE_PATHS}, got {noise!r}")
    a, b = inversion.latents[0], inversion.latents[1]
    latents = slerp(a, b, fracs, dim=(-3, -2, -1)) if noise == "slerp" else adain_interpolate(a, b, fracs)
    ea, eb = inversion.prompt_embeds[0].float(), inversion.prompt_embeds[1].float()
    live = (ea.norm(dim=-1) > 0) & (eb.norm(dim=-1) > 0)  # SD 3 without T5 feeds all-zero tokens: lerp keeps them 0
    w = torch.as_tensor(fracs, dtype=torch.float32).view(-1, 1, 1)
    embeds = (1 - w) * ea + w * eb
    if bool(live.any()):
        embeds[:, live] = torch.as_tensor(slerp(ea[live], eb[live], fracs, dim=-1)).float()
    return torch.as_tensor(latents).float(), embeds


# --------------------------------------------------------------------------------------------------
# 4. Attention interpolation
# --------------------------------------------------------------------------------------------------


class AttentionInterpolation:
    """A diffusers attention processor for self-attention layers that mixes two endpoint trajectories.

    The UNet batch holds ``n = len(weights)`` rows per guidance group (1 group, or 2 with classifier-free
    guidance: diffusers stacks the unconditional rows first). Row ``anchors[0]`` is the first endpoint's
    trajectory (weight 0) and row ``anchors[1]`` the second's (weight 1); for every other row i with weight
    (interpolation fraction) λ = ``weights[i]`` and its own query Q_i:

    * ``"inner"`` — attend to mixed keys and values:
      softmax(Q_i K_λ^T / √d) V_λ with K_λ = (1−λ) K_A + λ K_B and V_λ = (1−λ) V_A + λ V_B;
    * ``"outer"`` — mix the two attention outputs: (1−λ) Attn(Q_i, K_A, V_A) + λ Attn(Q_i, K_B, V_B);
    * ``"fused"`` — attend to the row's own keys and values and the mixed ones together (the two sets
      concatenated along the sequence), so the frame keeps some of its own structure.

    At λ = 0 every mode reduces to the first endpoint's self-attention (and at λ = 1 to the second's), so the
    endpoint rows render exactly as without the processor. ``enabled = False`` turns every row back into
    plain self-attention (PyTorch SDPA, as diffusers' ``AttnProcessor2_0``).

    Introduced in notebook 08_morph_your_own_images.
    """

    def __init__(self, weights: Any, *, mode: str = "inner", anchors: tuple[int, int] = (0, 1)) -> None:
        if mode not in ATTENTION_MODES:
            raise ValueError(f"mode must be one of {ATTENTION_MODES}, got {mode!r}")
        w = torch.as_tensor(_check_ts(weights), dtype=torch.float32)
        a, b = anchors
        if not (0 <= a < len(w) and 0 <= b < len(w) and a != b) or w[a] != 0 or w[b] != 1:
            raise ValueError(f"anchors {anchors} must be two different rows with weights 0 and 1")
        self.weights, self.mode, self.anchors, self.enabled = w, mode, (a, b), True

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise RuntimeError("AttentionInterpolation is a self-attention processor; it was installed on a "
                               "cross-attention layer (install it with attention_interpolation())")
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, seq, _ = hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, seq, heads*d) -> (B, heads, seq, d)
            return x.view(batch, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)

        query, key, value = (heads(f(hidden_states)) for f in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if self.enabled:
            out = self._mixed(query, key, value, attention_mask)
        else:
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        out = out.transpose(1, 2).reshape(batch, -1, out.shape[1] * out.shape[-1]).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _mixed(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               tokens: slice = slice(None)) -> torch.Tensor:
        """Attention of every row's queries (B, heads, seq, d) to keys and values whose ``tokens`` positions are
        taken from the endpoint rows (all positions: self-attention; the image tokens: joint attention)."""
        n = len(self.weights)
        if q.shape[0] % n:
            raise RuntimeError(f"the denoiser's batch has {q.shape[0]} rows, not a multiple of the {n} rows this "
                               "processor was made for; render through render_morph()")
        g = q.shape[0] // n
        shape = (g, n) + q.shape[1:]
        kv_shape = (g, n) + k.shape[1:]
        q, k, v = q.reshape(shape), k.reshape(kv_shape), v.reshape(kv_shape)
        a, b = self.anchors
        w = self.weights.to(device=q.device, dtype=q.dtype).view(1, n, 1, 1, 1)
        m = None if mask is None else mask.reshape((g, n) + mask.shape[1:])

        def taking(own: torch.Tensor, part: torch.Tensor) -> torch.Tensor:  # own's rows, ``tokens`` from part
            out = own.clone()
            out[..., tokens, :] = part[..., tokens, :].expand_as(out[..., tokens, :])
            return out

        def sdpa(k_: torch.Tensor, v_: torch.Tensor, m_: torch.Tensor | None) -> torch.Tensor:
            flat = (g * n,) + q.shape[2:]
            out = F.scaled_dot_product_attention(
                q.reshape(flat), k_.reshape((g * n,) + k_.shape[2:]), v_.reshape((g * n,) + v_.shape[2:]),
                attn_mask=None if m_ is None else m_.reshape((g * n,) + m_.shape[2:]))
            return out.reshape(shape)

        ka, kb, va, vb = k[:, a : a + 1], k[:, b : b + 1], v[:, a : a + 1], v[:, b : b + 1]
        if self.mode == "outer":
            out = (1 - w) * sdpa(taking(k, ka), taking(v, va), m) + w * sdpa(taking(k, kb), taking(v, vb), m)
        else:
            k_mix, v_mix = taking(k, (1 - w) * ka + w * kb), taking(v, (1 - w) * va + w * vb)
            if self.mode == "inner":
                out = sdpa(k_mix, v_mix, m)
            else:  # fused: own keys/values and the mixed ones, side by side
                m2 = None if m is None else torch.cat([m, m], dim=-1)
                out = sdpa(torch.cat([k, k_mix], dim=-2), torch.cat([v, v_mix], dim=-2), m2)
        return out.reshape((g * n,) + q.shape[2:])


class JointAttentionInterpolation(AttentionInterpolation):
    """:class:`AttentionInterpolation` for the joint attention of an MMDiT (SD 3 / 3.5, FLUX.1).

    Those transformers attend over the text tokens and the image tokens together. The processor mixes the
    endpoints' keys and values of the **image tokens only**: each row keeps its own text tokens' keys and values,
    so a frame still reads its own (interpolated) caption, and borrows the endpoints' picture structure, with the
    same modes and endpoint guarantees as the UNet processor. SD 3 puts the image tokens first (its second,
    image-only attention layers in SD 3.5 are mixed whole); FLUX puts the text tokens first, and its single-stream
    blocks hand the processor both as one sequence, so ``image_tokens`` (how many there are, the last ones) must
    be given for FLUX. ``enabled = False`` is the stock joint attention.

    Introduced in notebook 10_flow_matching.
    """

    def __init__(self, weights: Any, *, mode: str = "inner", anchors: tuple[int, int] = (0, 1),
                 image_tokens: int | None = None) -> None:
        super().__init__(weights, mode=mode, anchors=anchors)
        self.image_tokens = image_tokens

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: slice) -> torch.Tensor:
        if self.enabled:
            return self._mixed(q, k, v, None, tokens)
        return F.scaled_dot_product_attention(q, k, v)

    def __call__(  # type: ignore[override]  # diffusers passes image_rotary_emb by name; joint layers return pairs
            self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
            attention_mask: torch.Tensor | None = None, image_rotary_emb: Any = None, *args: Any, **kwargs: Any) -> Any:
        if attention_mask is not None:
            raise RuntimeError("JointAttentionInterpolation does not take an attention mask; render through "
                               "render_morph()")
        if hasattr(attn, "head_dim"):  # FLUX's FluxAttention
            return self._flux(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        return self._sd3(attn, hidden_states, encoder_hidden_states)

    def _sd3(self, attn: Any, hidden: torch.Tensor, context: torch.Tensor | None) -> Any:
        batch, n_image = hidden.shape[:2]

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, seq, heads*d) -> (B, heads, seq, d)
            return x.view(batch, -1, attn.heads, x.shape[-1] // attn.heads).transpose(1, 2)

        q, k, v = (heads(f(hidden)) for f in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:
            q, k = attn.norm_q(q), attn.norm_k(k)
        if context is not None:  # the text tokens follow the image tokens
            cq, ck, cv = (heads(f(context)) for f in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
            if attn.norm_added_q is not None:
                cq, ck = attn.norm_added_q(cq), attn.norm_added_k(ck)
            q, k, v = torch.cat([q, cq], dim=2), torch.cat([k, ck], dim=2), torch.cat([v, cv], dim=2)
        out = self._attend(q, k, v, slice(0, n_image))
        out = out.transpose(1, 2).reshape(batch, -1, out.shape[1] * out.shape[-1]).to(q.dtype)
        image_out = attn.to_out[1](attn.to_out[0](out[:, :n_image]))
        if context is None:
            return image_out
        text_out = out[:, n_image:]
        return image_out, (text_out if attn.context_pre_only else attn.to_add_out(text_out))

    def _flux(self, attn: Any, hidden: torch.Tensor, context: torch.Tensor | None, rotary: Any) -> Any:
        from diffusers.models.embeddings import apply_rotary_emb

        if self.image_tokens is None:
            raise RuntimeError("FLUX's single-stream blocks see text and image tokens as one sequence: give "
                               "image_tokens (helpers.flow.image_tokens(pipe, height, width))")

        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, seq, heads*d) -> (B, seq, heads, d)
            return x.unflatten(-1, (-1, attn.head_dim))

        q, k, v = (heads(f(hidden)) for f in (attn.to_q, attn.to_k, attn.to_v))
        q, k = attn.norm_q(q), attn.norm_k(k)
        if context is not None and attn.added_kv_proj_dim is not None:  # the text tokens come first
            cq, ck, cv = (heads(f(context)) for f in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
            cq, ck = attn.norm_added_q(cq), attn.norm_added_k(ck)
            q, k, v = torch.cat([cq, q], dim=1), torch.cat([ck, k], dim=1), torch.cat([cv, v], dim=1)
        if rotary is not None:
            q = cast(torch.Tensor, apply_rotary_emb(q, rotary, sequence_dim=1))
            k = cast(torch.Tensor, apply_rotary_emb(k, rotary, sequence_dim=1))
        seq = q.shape[1]
        out = self._attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                           slice(seq - self.image_tokens, seq))
        out = out.transpose(1, 2).flatten(2, 3).to(q.dtype)
        if context is None:
            return out
        text_out, image_out = out.split_with_sizes([context.shape[1], seq - context.shape[1]], dim=1)
        return attn.to_out[1](attn.to_out[0](image_out.contiguous())), attn.to_add_out(text_out.contiguous())


def _is_mmdit(model: Any) -> bool:
    """An MMDiT (SD 3, FLUX transformer): joint attention blocks and no UNet down path."""
    return hasattr(model, "transformer_blocks") and not hasattr(model, "down_blocks")


def self_attention_layers(unet: Any) -> list[str]:
    """The names (as in ``unet.attn_processors``) of the UNet's self-attention layers.

    Introduced in notebook 08_morph_your_own_images.
    """
    modules = dict(unet.named_modules())
    names = []
    for name in getattr(unet, "attn_processors", {}):
        module = modules.get(name.removesuffix(".processor"))
        if module is not None and not getattr(module, "is_cross_attention", True):
            names.append(name)
    return names


def attention_layers(model: Any) -> list[str]:
    """The layers (names as in ``model.attn_processors``) that attention interpolation takes over: a UNet's
    self-attention layers (:func:`self_attention_layers`), or every attention layer of an SD 3 / FLUX transformer,
    whose joint attention is mixed on the image tokens only (:class:`JointAttentionInterpolation`).

    Introduced in notebook 08_morph_your_own_images."""
    if _is_mmdit(model):
        return list(getattr(model, "attn_processors", {}))
    return self_attention_layers(model)


@contextlib.contextmanager
def attention_interpolation(unet: Any, weights: Any, *, mode: str = "inner", anchors: tuple[int, int] = (0, 1),
                            image_tokens: int | None = None) -> Iterator[AttentionInterpolation]:
    """Install :class:`AttentionInterpolation` on every self-attention layer of ``unet``; restore on exit.

    ``weights`` holds one interpolation weight per row of the UNet batch (per guidance group), with the two
    endpoint trajectories at ``anchors`` (weights 0 and 1). The cross-attention layers keep their processors,
    and every processor the UNet had is put back when the block ends, also after an error. A UNet without
    self-attention layers is refused. An SD 3 or FLUX transformer gets :class:`JointAttentionInterpolation` on
    all its (joint) attention layers instead; FLUX needs ``image_tokens``.

    Introduced in notebook 08_morph_your_own_images.
    """
    names = attention_layers(unet)
    if not names:
        raise ValueError(f"{type(unet).__name__} has no self-attention layers to interpolate (it needs diffusers "
                         "Attention modules that are not cross-attention, as in Stable Diffusion's UNet); "
                         "morph without attention=")
    processor: AttentionInterpolation
    if _is_mmdit(unet):
        processor = JointAttentionInterpolation(weights, mode=mode, anchors=anchors, image_tokens=image_tokens)
    else:
        processor = AttentionInterpolation(weights, mode=mode, anchors=anchors)
    saved = dict(unet.attn_processors)
    unet.set_attn_processor({name: processor if name in names else proc for name, proc in saved.items()})
    try:
        yield processor
    finally:
        unet.set_attn_processor(saved)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _ddim(pipe: Any) -> Iterator[None]:
    """Render with DDIM (eta 0) from the pipeline's scheduler config: the sampler the inversion ran backwards."""
    from diffusers import DDIMScheduler

    saved = pipe.scheduler
    if not isinstance(saved, DDIMScheduler):
        pipe.scheduler = DDIMScheduler.from_config(saved.config)
    try:
        yield
    finally:
        pipe.scheduler = saved


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


@torch.no_grad()
def render_morph(
    pipe: Any,
    inversion: ImageInversion,
    ts: Any,
    *,
    noise: str = "slerp",
    attention: str | None = None,
    attention_steps: float = 1.0,
    guidance_scale: float = 1.0,
    num_inference_steps: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """The morph's frames at the fractions λ = ``ts`` (0 = first image, 1 = second): an (T, H, W, 3) float array in [0, 1].

    DDIM (eta 0) from :func:`morph_inputs` (``noise="slerp"`` or ``"adain"``), with the inversion's steps unless
    ``num_inference_steps`` is given. ``attention="inner"|"outer"|"fused"`` turns on
    :class:`AttentionInterpolation` for the first ``attention_steps`` fraction of the steps (1.0: all of them);
    the endpoint trajectories are then rendered in every chunk beside the frames (two extra UNet rows per call)
    and dropped. ``guidance_scale`` 1 reconstructs the endpoints best; above 1 the captions are enforced against
    the empty prompt. Deterministic: no noise is drawn, so the frames depend neither on a seed nor on
    ``batch_size`` (frames per pipeline call, default all).

    Flow-matching pipelines: the flow ODE is integrated down with the inversion's solver (see
    :func:`invert_images`) and attention interpolation mixes the joint attention's image tokens only
    (:class:`JointAttentionInterpolation`). ``guidance_scale`` is SD 3's classifier-free guidance, FLUX's
    distilled guidance.

    Introduced in notebook 08_morph_your_own_images.
    """
    from tqdm.auto import tqdm

    _check_morphable(pipe, "render_morph")
    _check_pair(inversion)
    flow_model = _is_flow(pipe)
    if flow_model != (inversion.solver != "ddim"):
        raise ValueError(f"this inversion was made with {inversion.solver!r} for a "
                         f"{'Stable Diffusion' if inversion.solver == 'ddim' else 'flow-matching'} pipeline; "
                         f"invert the images with this {type(pipe).__name__} (invert_images(pipe, ...))")
    denoiser = pipe.transformer if flow_model else pipe.unet
    fracs = _check_ts(ts)
    if attention is not None and attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be None or one of {ATTENTION_MODES}, got {attention!r}")
    if attention is not None and not attention_layers(denoiser):
        raise ValueError(f"{type(denoiser).__name__} has no self-attention layers to interpolate; use "
                         "attention=None")
    attention_steps = check_real("attention_steps", attention_steps, low=0.0, high=1.0,
                                 hint="the fraction of the steps with attention interpolation")
    guidance_scale = check_guidance("guidance_scale", guidance_scale)
    steps = inversion.steps if num_inference_steps is None else check_steps("num_inference_steps",
                                                                            num_inference_steps)
    size = plan_batch_size(pipe, len(fracs), len(fracs) if batch_size is None else batch_size)  # default: all

    latents, embeds = morph_inputs(inversion, fracs, noise=noise)
    if flow_model:
        return _render_flow_morph(pipe, inversion, fracs, latents, embeds, attention=attention,
                                  cutoff=attention_steps * steps, steps=steps, guidance_scale=guidance_scale,
                                  size=size, progress=progress)
    device, dtype = pipe._execution_device, pipe.unet.dtype
    ends = inversion.latents.to(latents.dtype), inversion.prompt_embeds.to(embeds.dtype)
    cutoff = attention_steps * steps
    frames = []
    bar = tqdm(total=len(fracs), desc="morph frames", unit="frame", disable=not progress, leave=False)
    with _ddim(pipe):
        for rows in _chunks(len(fracs), size):
            x, e, w = latents[rows.start:rows.stop], embeds[rows.start:rows.stop], fracs[rows.start:rows.stop]
            if attention is not None:  # the two endpoint trajectories ride along as rows 0 and 1
                x, e = torch.cat([ends[0], x]), torch.cat([ends[1], e])
                w = np.concatenate([[0.0, 1.0], w])
            with contextlib.ExitStack() as stack:
                callback = None
                if attention is not None:
                    proc = stack.enter_context(attention_interpolation(pipe.unet, w, mode=attention))
                    proc.enabled = cutoff > 0

                    def callback(_pipe, i, _t, kwargs, proc=proc):
                        proc.enabled = (i + 1) < cutoff
                        return kwargs
                out = pipe(prompt_embeds=e.to(device, dtype),
                           negative_prompt_embeds=inversion.negative_prompt_embeds.expand(len(e), -1, -1)
                           .to(device, dtype),
                           latents=x.to(device, dtype), num_inference_steps=steps, guidance_scale=guidance_scale,
                           height=inversion.height, width=inversion.width, output_type="np",
                           callback_on_step_end=callback)
            images = np.asarray(out.images, dtype=np.float64)
            flagged = getattr(out, "nsfw_content_detected", None)
            if flagged and any(flagged):
                raise RuntimeError(f"the pipeline's safety checker blacked out {sum(map(bool, flagged))} frame(s); "
                                   "load the pipeline as helpers.load_pipeline does (no safety checker) or "
                                   "choose other images")
            frames.append(images[2:] if attention is not None else images)
            bar.update(len(rows))
    bar.close()
    return np.concatenate(frames)


def _render_flow_morph(pipe: Any, inversion: ImageInversion, fracs: np.ndarray, latents: torch.Tensor,
                       embeds: torch.Tensor, *, attention: str | None, cutoff: float, steps: int,
                       guidance_scale: float, size: int, progress: bool) -> np.ndarray:
    """:func:`render_morph` on an SD 3 / FLUX pipeline: the flow ODE down from the morph's noises, chunk by chunk."""
    from tqdm.auto import tqdm

    from helpers import flow

    grid = flow.sigmas(pipe, steps, height=inversion.height, width=inversion.width)
    tokens = flow.image_tokens(pipe, inversion.height, inversion.width)
    negative = inversion.negative_prompt_embeds
    frames = []
    bar = tqdm(total=len(fracs), desc="morph frames", unit="frame", disable=not progress, leave=False)
    for rows in _chunks(len(fracs), size):
        x, e, w = latents[rows.start:rows.stop], embeds[rows.start:rows.stop], fracs[rows.start:rows.stop]
        if attention is not None:  # the two endpoint trajectories ride along as rows 0 and 1
            x, e = torch.cat([inversion.latents.float(), x]), torch.cat([inversion.prompt_embeds.float(), e])
            w = np.concatenate([[0.0, 1.0], w])
        velocity = flow.velocity_fn(pipe, e, negative, guidance_scale=guidance_scale)
        with contextlib.ExitStack() as stack:
            callback = None
            if attention is not None:
                proc = stack.enter_context(attention_interpolation(pipe.transformer, w, mode=attention,
                                                                   image_tokens=tokens))

                def callback(i: int, proc: AttentionInterpolation = proc) -> None:
                    proc.enabled = i < cutoff
            x0 = flow.integrate(velocity, x, grid, inversion.solver, callback=callback)
        images = flow.decode_latents(pipe, torch.as_tensor(x0)).permute(0, 2, 3, 1).double().numpy()
        frames.append(images[2:] if attention is not None else images)
        bar.update(len(rows))
    bar.close()
    return np.concatenate(frames)


def endpoint_error(frames: Any, inversion: ImageInversion) -> float:
    """Mean squared pixel error (in [0, 1] units) of a morph's first and last frames against the two inputs.

    Introduced in notebook 08_morph_your_own_images.
    """
    arr = np.asarray(frames, dtype=np.float64)
    target = images_to_array(inversion.images)
    if arr.ndim != 4 or arr.shape[1:] != target.shape[1:]:
        raise ValueError(f"frames must be (T, H, W, 3) like render_morph's output at "
                         f"{inversion.height}x{inversion.width}, got {arr.shape}")
    return float(np.mean([(arr[0] - target[0]) ** 2, (arr[-1] - target[-1]) ** 2]))


# --------------------------------------------------------------------------------------------------
# 5. Chained img2img
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def chained_img2img(
    pipe: Any,
    inversion: ImageInversion,
    ts: Any,
    *,
    strength: float = 0.4,
    guidance_scale: float = 1.0,
    num_inference_steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """The "contextual" morph: frame 0 is the first image, and each later frame is an img2img of the frame
    before it with the captions' embeddings slerped at its fraction λ (diffusers'
    ``StableDiffusionImg2ImgPipeline`` built from ``pipe``'s components). ``strength`` is the fraction of the steps that are re-noised and
    re-denoised per frame. The chain never looks at the second image, only at its caption, so its last frame
    need not match it: :func:`endpoint_error` says by how much. Frame i draws its noise from ``seed + i``.

    Introduced in notebook 08_morph_your_own_images.
    """
    from diffusers import StableDiffusionImg2ImgPipeline
    from tqdm.auto import tqdm

    from helpers.devices import make_generator

    _check_sd(pipe, "chained_img2img")
    _check_pair(inversion)
    fracs = _check_ts(ts)
    strength = check_real("strength", strength, low=0.0, high=1.0, low_open=True)
    guidance_scale = check_guidance("guidance_scale", guidance_scale)
    steps = inversion.steps if num_inference_steps is None else check_steps("num_inference_steps",
                                                                            num_inference_steps)
    check_seed(check_seed(seed) + len(fracs))  # every frame's seed (seed + i), before any work
    wanted = inspect.signature(StableDiffusionImg2ImgPipeline.__init__).parameters
    parts = {k: v for k, v in pipe.components.items() if k in wanted}
    parts["requires_safety_checker"] = parts.get("safety_checker") is not None  # no notice when there is none
    img2img: Any = StableDiffusionImg2ImgPipeline(**parts)  # a pipeline, like `pipe` (mypy sees a dummy class)
    img2img.set_progress_bar_config(disable=True)
    _, embeds = morph_inputs(inversion, fracs)
    device, dtype = pipe._execution_device, pipe.unet.dtype
    negative = inversion.negative_prompt_embeds.to(device, dtype)
    frames = [images_to_array(inversion.images[:1])[0]]
    with _ddim(img2img):
        for i in tqdm(range(1, len(fracs)), desc="img2img chain", unit="frame", disable=not progress, leave=False):
            out = img2img(prompt_embeds=embeds[i : i + 1].to(device, dtype), negative_prompt_embeds=negative,
                          image=torch.from_numpy(frames[-1]).permute(2, 0, 1)[None].float(), strength=strength,
                          num_inference_steps=steps, guidance_scale=guidance_scale, output_type="np",
                          generator=make_generator(seed + i))
            frames.append(np.asarray(out.images[0], dtype=np.float64))
    return np.stack(frames)
