"""Rendering a whole interpolation path (N rows of embeddings/latents) into N frames, in batches.

Introduced in notebook 01_diffusion_basics. One pipeline call per *chunk* of frames (not per frame), a
progress bar over frames, and frames that do not depend on how the path was chunked:

* the initial noise is fixed per frame (given, or drawn once from the seed and shared by every frame);
* stochastic samplers (unCLIP's scheduler adds fresh noise at every step; DDIM with ``eta > 0``; ancestral
  samplers) get one generator *per frame*, every one in the same state. diffusers draws row i's step noise
  from generator i (``randn_tensor`` with a list), so frame i sees the same noise sequence whether it is
  rendered alone or in a batch — and every frame sees the same sequence, so a walk does not flicker from
  frame to frame because of sampler noise.

"Equal" means equal up to float rounding: a UNet gives results that differ by ~1e-6 between batch sizes.
Noise-predicting unCLIP models divide that by sqrt(alpha_bar_999) = 5e-5 in their first x0 estimate, so
after clipping a few pixels can move by up to ~1e-2 between batch sizes (measured on a tiny random model);
the bulk of each frame agrees to ~1e-6.

Speed: classifier-free guidance runs in the same UNet batch as the frames and the VAE decodes a whole chunk
at once (diffusers does both inside one call); attention is PyTorch SDPA (diffusers' default processors,
checked by :func:`uses_sdpa`); :func:`speed_options` adds ``torch.compile`` and channels-last on CUDA.

Long walks: :func:`helpers.walks.render_walk` writes the frames into a folder with a manifest and resumes after any
interruption; ``python -m helpers.walks WALK.yaml`` does the same from a walk file (:mod:`helpers.walks.spec`),
also split across processes under ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from helpers.checks import check_eta, check_guidance, check_kwargs, check_real, check_steps
from helpers.devices import clone_generator, free_memory_bytes, make_generator
from helpers.embeddings import pack_latents
from helpers.pipeline_info import (
    execution_device,
    latent_shape,
    min_steps,
    model_dtype,
    negative_guidance,
    output_size,
    pooled_width,
    render_kind,
    text_tokens,
    token_width,
)

#: Most frames per pipeline call when nothing else limits it.
MAX_AUTO_BATCH = 8
#: Rough activation memory per frame and output pixel, in elements (peak of UNet + VAE decode, SD 1.5).
_ELEMENTS_PER_PIXEL = 2048

_RESERVED = {
    "prompt",
    "negative_prompt",
    "image",
    "generator",
    "latents",
    "decoder_latents",
    "super_res_latents",
    "output_type",
    "return_dict",
    "num_images_per_prompt",
    "prompt_embeds",
    "negative_prompt_embeds",
    "pooled_prompt_embeds",
    "negative_pooled_prompt_embeds",
    "image_embeddings",
}


def auto_batch_size(
    free_bytes: int | None, per_frame_bytes: int, *, cap: int = MAX_AUTO_BATCH, reserve: float = 0.25
) -> int:
    """How many frames fit in one call: ``(1 - reserve) * free_bytes / per_frame_bytes``, clipped to [1, cap].

    ``free_bytes=None`` (memory unknown, e.g. on the CPU) gives ``cap``. Pure function.

    Introduced in notebook 01_diffusion_basics.
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    if free_bytes is None:
        return cap
    if per_frame_bytes <= 0:
        raise ValueError(f"per_frame_bytes must be > 0, got {per_frame_bytes}")
    fits = int((1.0 - reserve) * max(free_bytes, 0) // per_frame_bytes)
    return max(1, min(cap, fits))


def _check_pipe_kwargs(pipe: Any, kind: str, pipe_kwargs: dict[str, Any]) -> None:
    """Refuse what diffusers would swallow or misread, before any work: arguments that render_frames sets itself,
    keyword arguments the pipeline does not name (its ``**kwargs`` takes typos silently), and numbers out of range
    (steps, guidance, eta, height/width against the model's native size, anything non-finite): the shared gate of
    :mod:`helpers.checks`."""
    clash = sorted(set(pipe_kwargs) & _RESERVED)
    if clash:
        raise TypeError(f"render_frames sets {clash} itself; pass per-frame tensors as its own arguments instead")
    params = inspect.signature(pipe).parameters
    named = [k for k, v in params.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and k not in _RESERVED]
    check_kwargs(type(pipe).__name__, pipe_kwargs, named)
    for key, value in pipe_kwargs.items():
        if key.endswith("num_inference_steps"):
            low, why = min_steps(pipe)
            check_steps(key, value, low=low, hint=why)
        elif key.endswith("guidance_scale") or key == "true_cfg_scale":
            check_guidance(key, value)
        elif key == "eta":
            check_eta(key, value)
        elif key == "guidance_rescale":
            check_real(key, value, low=0.0, high=1.0)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            check_real(key, value)  # whatever else the pipeline takes: at least finite
    if kind == "text2img" and ("height" in pipe_kwargs or "width" in pipe_kwargs):
        latent_shape(pipe, height=pipe_kwargs.get("height"), width=pipe_kwargs.get("width"))  # checks the sides


def _check_embedding_width(pipe: Any, kind: str, cond: torch.Tensor) -> None:
    """The embeddings' last axis must be what the model was built for (else a deep "mat1 and mat2" error)."""
    if kind == "text2img":
        want, what = token_width(pipe), "prompt_embeds"
    else:
        want = getattr(getattr(getattr(pipe, "text_proj", None), "config", None), "clip_embeddings_dim", None)
        what = "image_embeddings"
    if isinstance(want, int) and cond.shape[-1] != want:
        raise ValueError(
            f"{what} are {cond.shape[-1]} wide but {type(pipe).__name__} takes {want}: they were made by another "
            "model. Encode with this pipeline (helpers.encode_prompts / helpers.encode_images)."
        )


def _unpack_pooled(pipe: Any, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SDXL, SD 3 and FLUX take their pooled text embeddings apart: split
    :func:`helpers.embeddings.pack_pooled`'s last token."""
    from helpers.embeddings import unpack_pooled

    width = pooled_width(pipe)
    if width is None:
        return inputs
    tokens = text_tokens(pipe)
    out = dict(inputs)
    for name, pooled_name in (("prompt_embeds", "pooled_prompt_embeds"),
                              ("negative_prompt_embeds", "negative_pooled_prompt_embeds")):
        if name in out:
            out[name], out[pooled_name] = unpack_pooled(out[name], width, tokens)
    return out


def _check_rows(name: str, x: Any, n: int | None, *, broadcast: bool = False) -> torch.Tensor:
    """Validate one per-frame tensor: a finite tensor with ``n`` rows (or 1 row when ``broadcast``)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with one row per frame, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have a leading frame axis, e.g. (N, ...); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows: a path needs at least 1 frame")
    if n is not None and x.shape[0] != n and not (broadcast and x.shape[0] == 1):
        allowed = f"{n}" + (" (or 1, shared by all frames)" if broadcast else "")
        raise ValueError(f"{name} has {x.shape[0]} rows but the path has {n} frames; it needs {allowed}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values (check the interpolation that produced it)")
    return x


def plan_batch_size(pipe: Any, n: int, batch_size: Any = None, pipe_kwargs: dict[str, Any] | None = None) -> int:
    """Frames per pipeline call for a path of ``n`` frames: ``batch_size`` when given (checked by
    :func:`check_batch_size`), else picked for the device: up to 8 on the CPU, 4 on MPS, and on CUDA as many as
    the free memory holds at the frames' size (``height``/``width`` in ``pipe_kwargs``, default the model's).

    The one batch planner of :func:`render_frames`, :func:`helpers.walks.render_walk`, the morphs and the
    benchmarks. Introduced in notebook 01_diffusion_basics.
    """
    given = check_batch_size(batch_size)
    if given is not None:
        return given
    kwargs = pipe_kwargs or {}
    device = execution_device(pipe)
    if device.type == "cuda":
        height, width = output_size(pipe, kwargs.get("height"), kwargs.get("width"))
        per_frame = frame_bytes_estimate(height, width, model_dtype(pipe))
        return min(n, auto_batch_size(free_memory_bytes(device), per_frame))
    if device.type == "mps":
        return min(n, 4)
    return min(n, MAX_AUTO_BATCH)


def _base_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    if generator is not None and seed is not None:
        raise ValueError("give either generator= or seed=, not both")
    if generator is None:
        return make_generator(0 if seed is None else seed)
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be one torch.Generator (render_frames makes the per-frame ones), "
            f"got {type(generator).__name__}; e.g. generator=helpers.make_generator(0)"
        )
    return clone_generator(generator)


@contextlib.contextmanager
def _transient_step_bars(pipe: Any) -> Iterator[None]:
    """While rendering, the pipeline's own per-step bars vanish when done (``leave=False``), as the bar over
    frames does: a finished cell shows its pictures, not finished progress bars."""
    if not hasattr(pipe, "set_progress_bar_config"):
        yield
        return
    had = hasattr(pipe, "_progress_bar_config")
    old = dict(getattr(pipe, "_progress_bar_config", {}))
    pipe.set_progress_bar_config(**{"leave": False, **old})
    try:
        yield
    finally:
        if had:
            pipe._progress_bar_config = old
        else:
            del pipe._progress_bar_config


def _collect(chunks: list[Any]) -> Any:
    first = chunks[0]
    if isinstance(first, list):
        return [frame for chunk in chunks for frame in chunk]
    if isinstance(first, np.ndarray):
        return np.concatenate(chunks)
    if isinstance(first, torch.Tensor):
        return torch.cat(chunks)
    raise TypeError(f"unexpected pipeline output type {type(first).__name__}")


def render_frames(
    pipe: Any,
    *,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
    image_embeddings: torch.Tensor | None = None,
    latents: torch.Tensor | None = None,
    super_res_latents: torch.Tensor | None = None,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    progress: bool = True,
    output_type: str = "pil",
    flags_out: list[bool] | None = None,
    **pipe_kwargs: Any,
) -> Any:
    """Render an interpolation path: row i of the per-frame tensors becomes frame i.

    Text-to-image pipelines (Stable Diffusion) take ``prompt_embeds`` (N, seq, dim) and
    ``negative_prompt_embeds`` (N or 1 rows; default: the empty prompt's); unCLIP pipelines take
    ``image_embeddings`` (N, dim). ``latents`` (and for unCLIP ``super_res_latents``) are the initial noise
    with N rows, or 1 row shared by every frame; left out, one row is drawn from the seed and shared (for
    Stable Diffusion and the unCLIP decoder exactly ``make_latents(pipe, seed)``).
    ``generator`` (one ``torch.Generator``, copied, not consumed) or ``seed`` (default 0) fixes all noise;
    every frame gets its own generator in that same state (see the module docstring), so the frames do not
    depend on ``batch_size``. ``batch_size=None`` picks one: up to 8 frames per call on the CPU, from free
    memory on CUDA. Other keyword arguments go to the pipeline (``num_inference_steps``, ``guidance_scale``,
    ``decoder_num_inference_steps``, …). Returns a list of PIL images for ``output_type="pil"``, else the
    pipeline's arrays/tensors concatenated along the first axis. A pipeline that still has a safety checker
    (see :func:`helpers.pipelines.walk_policy`) returns flagged frames black: a warning says how many, and
    ``flags_out`` (a list) receives one bool per frame.

    Introduced in notebook 01_diffusion_basics.
    """
    kind = render_kind(pipe)
    cond = check_inputs(pipe, kind, prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds,
                        image_embeddings=image_embeddings, latents=latents, super_res_latents=super_res_latents,
                        batch_size=batch_size, pipe_kwargs=pipe_kwargs)
    n = cond.shape[0]
    device, dtype = pipe._execution_device, model_dtype(pipe)
    base = _base_generator(generator, seed)
    # Step noise: every frame its own generator, all in one state, on a stream seeded apart from the initial
    # noise (derived before any draw, so giving latents= or not does not change it).
    step_seed = int(torch.randint(0, 2**62, (1,), generator=clone_generator(base), device=base.device))
    step_state = make_generator(step_seed, device=base.device).get_state()

    per_frame = _initial_noise(pipe, kind, base, n, latents, super_res_latents, pipe_kwargs)
    if kind == "unclip":
        per_frame["image_embeddings"] = cond
    else:
        per_frame["prompt_embeds"] = cond
        negative = _negative_rows(pipe, cond, negative_prompt_embeds, n, pipe_kwargs)
        if negative is not None:
            per_frame["negative_prompt_embeds"] = negative
    per_frame = {
        k: v.to(device=device, dtype=dtype).expand(n, *v.shape[1:]).contiguous() for k, v in per_frame.items()
    }
    batch_size = plan_batch_size(pipe, n, batch_size, pipe_kwargs)
    return _render_chunks(pipe, per_frame, n, batch_size, step_state, base.device, output_type, progress,
                          flags_out, pipe_kwargs)


#: What each kind of pipeline takes per frame: (its argument, that argument's layout, what the pipeline is called,
#: the arguments it refuses, where the rows come from).
_CONDITIONING = {
    "text2img": ("prompt_embeds", "(N, seq, dim)", "text-to-image", ("image_embeddings", "super_res_latents"),
                 "interpolate between rows of helpers.encode_prompts(pipe, [...])[0]"),
    "unclip": ("image_embeddings", "(N, dim)", "unCLIP", ("prompt_embeds", "negative_prompt_embeds"),
               "slerp between rows of helpers.encode_images(pipe, images)"),
}


def _conditioning_rows(kind: str, given: dict[str, Any]) -> torch.Tensor:
    """The per-frame conditioning of a ``kind`` pipeline out of ``given`` (every tensor argument by name)."""
    name, layout, what, foreign, source = _CONDITIONING[kind]
    article = "an" if what[0] in "aeiou" else "a"
    if any(given[k] is not None for k in foreign):
        raise ValueError(f"this is {article} {what} pipeline: pass {name}, not {foreign[0]}")
    if given[name] is None:
        raise ValueError(f"this {what} pipeline needs {name} {layout}, one row per frame: e.g. {source}")
    cond = _check_rows(name, given[name], None)
    if cond.ndim != layout.count(",") + 1:
        raise ValueError(f"{name} must be {layout}, got shape {tuple(cond.shape)}")
    return cond


def check_inputs(pipe: Any, kind: str, *, prompt_embeds: Any, negative_prompt_embeds: Any, image_embeddings: Any,
                 super_res_latents: Any, batch_size: Any, pipe_kwargs: dict[str, Any],
                 latents: Any = None) -> torch.Tensor:
    """Everything :func:`render_frames` refuses, checked before any work: returns the per-frame conditioning.

    ``kind`` is :func:`helpers.pipeline_info.render_kind` of ``pipe``. The one gate of every render: frames,
    walks on disk (:func:`helpers.walks.render_walk`) and walk files. Introduced in notebook 01_diffusion_basics.
    """
    given = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds,
             "image_embeddings": image_embeddings, "latents": latents, "super_res_latents": super_res_latents}
    cond = _conditioning_rows(kind, given)
    _check_pipe_kwargs(pipe, kind, pipe_kwargs)
    _check_embedding_width(pipe, kind, cond)
    if kind == "text2img":
        _unpack_pooled(pipe, {"prompt_embeds": cond})  # refuse embeddings without the pooled token, first
    check_batch_size(batch_size)
    for key in ("negative_prompt_embeds", "latents", "super_res_latents"):  # one row per frame, or one for all
        if given[key] is not None:
            _check_rows(key, given[key], cond.shape[0], broadcast=True)
    return cond


def check_batch_size(batch_size: Any) -> int | None:
    """``batch_size`` (frames per pipeline call) as an int, or None for automatic; else one ``ValueError``."""
    if batch_size is None:
        return None
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    return int(batch_size)


def _noise_rows(name: str, given: Any, shape: tuple[int, ...], base: torch.Generator, n: int) -> torch.Tensor:
    """Given initial noise (N rows or 1), or one row drawn from ``base`` and shared by every frame."""
    if given is None:
        given = torch.randn((1, *shape), generator=base, device=base.device, dtype=torch.float32)
    rows = _check_rows(name, given, n, broadcast=True)
    if tuple(rows.shape[1:]) != shape:
        raise ValueError(f"{name} must be (N, {', '.join(map(str, shape))}) for this pipeline, got {tuple(rows.shape)}")
    return rows


def _initial_noise(pipe: Any, kind: str, base: torch.Generator, n: int, latents: Any, super_res_latents: Any,
                   pipe_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The initial noise of every frame (for a seed: ``make_latents(pipe, seed)``, shared)."""
    shape = latent_shape(pipe, height=pipe_kwargs.get("height"), width=pipe_kwargs.get("width"))
    rows = _noise_rows("latents", latents, shape, base, n)
    if kind == "text2img":
        return {"latents": rows}
    sr_shape = latent_shape(pipe, kind="super_res")
    return {"decoder_latents": rows, "super_res_latents": _noise_rows("super_res_latents", super_res_latents,
                                                                     sr_shape, base, n)}


def _negative_rows(pipe: Any, cond: torch.Tensor, negative: Any, n: int, pipe_kwargs: dict[str, Any]) -> Any:
    """The negative prompt's rows: given, or the empty prompt's when guidance needs them (diffusers does)."""
    name, turn_on = negative_guidance(pipe)
    default = inspect.signature(pipe).parameters.get(name)
    guidance = pipe_kwargs.get(name, default.default if default is not None else 1.0)
    if turn_on and guidance <= 1:
        return None  # a scale that must be turned on is off (FLUX without true CFG): no negative branch at all
    if negative is None and guidance > 1:
        from helpers.embeddings import encode_prompts

        if getattr(pipe, "tokenizer", None) is None:
            raise ValueError("guidance_scale > 1 needs negative_prompt_embeds (this pipeline has no tokenizer)")
        negative = encode_prompts(pipe, [""])[1]
    if negative is None:
        return None
    rows = _check_rows("negative_prompt_embeds", negative, n, broadcast=True)
    if rows.shape[1:] != cond.shape[1:]:
        raise ValueError(
            f"negative_prompt_embeds rows are {tuple(rows.shape[1:])} but prompt_embeds rows are "
            f"{tuple(cond.shape[1:])}; encode both with the same pipeline"
        )
    return rows


def _render_chunks(pipe: Any, per_frame: dict[str, torch.Tensor], n: int, batch_size: int, step_state: Any,
                   generator_device: Any, output_type: str, progress: bool, flags_out: list[bool] | None,
                   pipe_kwargs: dict[str, Any]) -> Any:
    """One pipeline call per chunk, every frame with its own step-noise generator in the same state."""
    from diffusers.utils import numpy_to_pil
    from tqdm.auto import tqdm

    chunks, flagged = [], 0
    bar = tqdm(total=n, desc="frames", unit="frame", disable=not progress, leave=False)
    with bar, _transient_step_bars(pipe):
        for start in range(0, n, batch_size):
            rows = slice(start, min(start + batch_size, n))
            count = rows.stop - rows.start
            generators = [torch.Generator(device=generator_device) for _ in range(count)]
            for g in generators:
                g.set_state(step_state)
            inputs = _unpack_pooled(pipe, {k: v[rows] for k, v in per_frame.items()})
            if "latents" in inputs:  # FLUX: latents packed into tokens
                inputs["latents"] = pack_latents(pipe, inputs["latents"])
            # PIL frames are made here from the pipeline's arrays (as diffusers makes them), so that NaN pixels
            # are refused instead of turning black in the cast to uint8.
            out = pipe(**inputs, generator=generators, output_type="np" if output_type == "pil" else output_type,
                       return_dict=True, **pipe_kwargs)
            check_finite_frames(out.images, first=start)
            chunks.append(numpy_to_pil(out.images) if output_type == "pil" else out.images)
            marks = [bool(f) for f in (getattr(out, "nsfw_content_detected", None) or [False] * count)]
            flagged += sum(marks)
            if flags_out is not None:
                flags_out.extend(marks)
            bar.update(count)
    if flagged:
        warnings.warn(f"the safety checker blacked out {flagged} of {n} frames", stacklevel=3)
    return _collect(chunks)


class NonFiniteFramesError(RuntimeError):
    """The model's output held NaN or inf for some frames; ``frames`` lists their indices in the call."""

    def __init__(self, message: str, frames: list[int]) -> None:
        super().__init__(message)
        self.frames = frames


def check_finite_frames(images: Any, *, first: int = 0) -> None:
    """Raise :class:`NonFiniteFramesError` naming the frames (numbered from ``first``) of a pipeline's array or
    tensor output that hold NaN or inf: such frames would otherwise be saved black, or as garbage."""
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    if not (isinstance(images, np.ndarray) and np.issubdtype(images.dtype, np.floating)):
        return  # PIL images or integer arrays hold no NaN
    rows = (~np.isfinite(images.reshape(len(images), -1))).any(axis=1)
    bad = [first + int(i) for i in np.flatnonzero(rows)]
    if bad:
        raise NonFiniteFramesError(
            f"the model returned NaN or inf pixels for frame(s) {bad}, so no frames were returned: usually a "
            "half-precision overflow (load the model in float32) or extreme settings (lower guidance_scale)", bad)


def frame_bytes_estimate(height: int, width: int, dtype: torch.dtype) -> int:
    """Rough peak activation bytes of one SD-style frame of ``height`` x ``width`` (for auto_batch_size)."""
    return int(height * width * _ELEMENTS_PER_PIXEL * (torch.finfo(dtype).bits // 8))


# ------------------------------------------------------------------------------------------ speed options


def attention_processors(pipe: Any) -> dict[str, int]:
    """How many attention layers of each processor class the pipeline's denoiser and VAE use.

    diffusers (>= 0.20 with torch 2) gives every layer a PyTorch scaled-dot-product-attention processor
    (``AttnProcessor2_0``, ``AttnAddedKVProcessor2_0`` for unCLIP, ``JointAttnProcessor2_0`` for SD 3,
    ``FluxAttnProcessor`` for FLUX): the fused flash/memory-efficient kernels.
    :func:`render_frames` keeps whatever is set; this is how a notebook (or a test) checks it.

    Introduced in notebook 04_prompt_walks.
    """
    counts: dict[str, int] = {}
    for name in ("unet", "transformer", "decoder", "super_res_first", "super_res_last", "vae"):
        module = getattr(pipe, name, None)
        for proc in (getattr(module, "attn_processors", None) or {}).values():
            key = type(proc).__name__
            counts[key] = counts.get(key, 0) + 1
    return counts


#: diffusers' processors that call ``scaled_dot_product_attention`` without saying so in their names (FLUX's).
_SDPA_PROCESSORS = ("FluxAttnProcessor", "FluxAttnProcessor2_0")


def uses_sdpa(pipe: Any) -> bool:
    """True when every attention layer runs through ``torch.nn.functional.scaled_dot_product_attention``."""
    counts = attention_processors(pipe)
    return bool(counts) and all(name.endswith("2_0") or name in _SDPA_PROCESSORS for name in counts)


def speed_options(pipe: Any, *, compile: bool = False, channels_last: bool = False) -> list[str]:
    """Opt-in speed-ups for CUDA; returns one line per option saying what was done (or why not).

    ``channels_last`` stores the UNet/decoder and VAE weights in NHWC order (faster convolutions on tensor
    cores); ``compile`` wraps the denoiser in ``torch.compile`` (minutes of compilation on the first call,
    and again for each new batch size, then faster steps). Both are no-ops elsewhere (a note says so): on the
    CPU compilation costs more than it saves for a walk. SDPA attention is diffusers' default and is kept.

    Introduced in notebook 04_prompt_walks.
    """
    notes: list[str] = []
    device = getattr(pipe, "_execution_device", torch.device("cpu"))
    denoiser_name = next((n for n in ("unet", "transformer") if getattr(pipe, n, None) is not None), "decoder")
    denoiser = getattr(pipe, denoiser_name, None)
    notes.append(
        "attention: PyTorch SDPA (diffusers' default processors)"
        if uses_sdpa(pipe)
        else f"attention: {attention_processors(pipe) or 'none found'} (not all SDPA; left as set)"
    )
    if not (compile or channels_last):
        return notes
    if device.type != "cuda":
        wanted = [n for n, on in (("compile", compile), ("channels_last", channels_last)) if on]
        notes.append(f"{' and '.join(wanted)}: skipped on {device.type} (only worth it on a CUDA GPU)")
        return notes
    if channels_last:
        for name in (denoiser_name, "vae"):
            module = getattr(pipe, name, None)
            if module is not None:
                module.to(memory_format=torch.channels_last)
        notes.append("channels_last: denoiser and VAE weights in NHWC order")
    if compile and denoiser is not None:
        setattr(pipe, denoiser_name, torch.compile(denoiser, fullgraph=False))
        notes.append(f"compile: pipe.{denoiser_name} wrapped in torch.compile (first call compiles)")
    return notes


if __name__ == "__main__":
    raise SystemExit("walk files are rendered by `python -m helpers.walks WALK.yaml` (helpers.walks)")
