"""``make bench``: helpers' batched rendering (A) against the cookbook's one pipeline call per frame (B).

Both approaches render the same walk in the same run: the same pipeline object, the same per-frame
embeddings, the same initial latents, the same steps and guidance. (A) is
:func:`helpers.render.render_frames` with its automatic batch size (classifier-free guidance and VAE decoding
batched, SDPA attention); (B) calls the pipeline once per frame, as the original cookbook did.

* CPU: the tiny random Stable Diffusion and unCLIP pipelines, and the teaching model ``teaching`` (32x32 emoji
  scenes) when its weights are in the package (otherwise that row is skipped, with the reason).
* CUDA (when present): the full-size Stable Diffusion 1.5 architecture built from its published
  configuration with random weights (speed does not depend on weight values) at 512x512, 25 steps, guidance
  7.5, fp16; the fraction of the GPU's dense fp16 peak reached (one frame ≈ 42.7 TFLOP); the same walk with
  ``torch.compile`` + channels-last; and under 16 GiB and 6 GiB memory caps with the automatic memory options.

``python -m benchmarks.bench --out benchmarks/RESULTS.md`` writes the report atomically. Timings are
wall-clock (``time.perf_counter``) after one warm-up call of each approach. On the CPU torch runs one thread
by default (``--threads``): measured here, two threads on a shared 2-core machine made both approaches
5-40x slower (spinning), which says nothing about rendering.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Approximate dense work of one SD 1.5 frame at 512x512: 25 CFG steps x 1.61 TFLOP + one VAE decode 2.48.
SD15_TFLOP_PER_STEP = 1.61
SD15_TFLOP_DECODE = 2.48
#: Dense (no sparsity) fp16/bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s.
GPU_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,  # unknown variant: the lower (PCIe) figure
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
    "A10": 125.0,
    "L4": 121.0,
    "V100": 125.0,
    "T4": 65.0,
}
GIB = 1024**3


def tflop_per_frame(steps: int) -> float:
    """SD 1.5 at 512x512 with classifier-free guidance: ``steps x 1.61 + 2.48`` TFLOP (42.7 at 25 steps)."""
    return steps * SD15_TFLOP_PER_STEP + SD15_TFLOP_DECODE


def gpu_peak_tflops(name: str) -> float | None:
    """The dense fp16/bf16 peak for a GPU name as CUDA reports it (longest matching key), or ``None``."""
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in name.lower():
            return GPU_PEAK_TFLOPS[key]
    return None


# --------------------------------------------------------------------------------------------- SD 1.5


def sd15_configs() -> dict[str, dict[str, Any]]:
    """Stable Diffusion 1.5's published component configurations (UNet, VAE, CLIP ViT-L/14 text encoder)."""
    return {
        "unet": dict(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
            center_input_sample=False, downsample_padding=1, flip_sin_to_cos=True, freq_shift=0,
            mid_block_scale_factor=1,
        ),
        "vae": dict(
            in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, act_fn="silu", norm_num_groups=32, scaling_factor=0.18215,
        ),
        "text_encoder": dict(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
        ),
        "scheduler": dict(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            clip_sample=False, set_alpha_to_one=False, steps_offset=1,
        ),
    }  # fmt: skip


def build_sd15_random(device: str | torch.device, dtype: torch.dtype) -> Any:
    """A ``StableDiffusionPipeline`` with SD 1.5's architecture and random weights (no download)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = sd15_configs()
    with torch.device(device):  # initialise directly on the GPU: seconds instead of minutes
        torch.manual_seed(0)
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=None, unet=unet, scheduler=DDIMScheduler(**cfg["scheduler"]),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------------- measuring


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


def _heap_reader() -> tuple[str, Callable[[], int]]:
    """(what, reader): glibc's heap bytes in use (``mallinfo2``: small blocks + mmapped blocks), which torch's
    CPU tensors come from; elsewhere the resident set size from /proc/self/statm."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.mallinfo2()
    except (OSError, AttributeError):
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

        def rss() -> int:
            try:
                with open("/proc/self/statm") as fh:
                    return int(fh.read().split()[1]) * page
            except (OSError, ValueError, IndexError):
                return 0

        return "resident set size", rss

    def heap() -> int:
        info = libc.mallinfo2()
        return int(info.uordblks + info.hblkhd)

    return "heap in use (glibc mallinfo2)", heap


class _PeakSampler:
    """Peak growth of the CPU memory in use while active, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.what, self._read = _heap_reader()
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakSampler:
        gc.collect()
        self.base = self.peak = self._read()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._read())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def _measure(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, int]:
    """(result, seconds, peak bytes): CUDA peak allocated, or CPU peak RSS growth."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        return out, time.perf_counter() - t0, int(torch.cuda.max_memory_allocated(device))
    with _PeakSampler() as rss:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return out, seconds, rss.growth


@dataclass
class Row:
    """One measured (or skipped) line of the report."""

    case: str
    approach: str
    frames: int = 0
    seconds: float = float("nan")
    batch: str = ""
    peak_bytes: int | None = None
    ratio: float | None = None
    physical: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Case:
    """A walk to render both ways: a pipeline, its per-frame inputs and its settings."""

    name: str
    pipe: Any
    inputs: dict[str, torch.Tensor]
    kwargs: dict[str, Any]
    describe: str
    seed: int = 0


def _frames_to_array(frames: list[Any]) -> np.ndarray:
    return np.stack([np.asarray(f, dtype=np.float32) for f in frames])


def cookbook_loop(case: Case, n: int | None = None) -> list[Any]:
    """(B) The cookbook's approach: one pipeline call per frame, a fresh seeded generator each time."""
    from helpers.devices import make_generator
    from helpers.pipeline_info import model_dtype

    # as a cookbook user would hold them: on the pipeline's device, in its dtype (diffusers moves given
    # latents to the device but does not cast them, so fp32 latents would fail in an fp16 UNet)
    device, dtype = case.pipe._execution_device, model_dtype(case.pipe)
    inputs = {k: v.to(device=device, dtype=dtype) for k, v in case.inputs.items()}
    per_frame_key = "prompt_embeds" if "prompt_embeds" in inputs else "image_embeddings"
    total = inputs[per_frame_key].shape[0] if n is None else n
    frames = []
    for i in range(total):
        call = {}
        for key, value in inputs.items():
            call[key] = value[i : i + 1] if value.shape[0] > 1 else value
        if "latents" in call:
            call["decoder_latents" if per_frame_key == "image_embeddings" else "latents"] = call.pop("latents")
        out = case.pipe(**call, generator=make_generator(case.seed), output_type="pil", **case.kwargs)
        frames.append(out.images[0])
    return frames


def helpers_render(case: Case, n: int | None = None, batch_size: int | None = None) -> list[Any]:
    """(A) :func:`helpers.render.render_frames` with the automatic batch size."""
    from helpers.render import render_frames

    inputs = case.inputs if n is None else {k: v[:n] if v.shape[0] > 1 else v for k, v in case.inputs.items()}
    return render_frames(case.pipe, **inputs, seed=case.seed, batch_size=batch_size, progress=False, **case.kwargs)


def _auto_batch_of(case: Case) -> int:
    """The batch size :func:`helpers.render.render_frames` picks for ``case`` (its one batch planner)."""
    from helpers.render import plan_batch_size

    key = "prompt_embeds" if "prompt_embeds" in case.inputs else "image_embeddings"
    return plan_batch_size(case.pipe, case.inputs[key].shape[0], None, case.kwargs)


def compare(case: Case, *, warmup: bool = True, repeats: int = 1) -> list[Row]:
    """Render ``case`` both ways in this run; rows for A and B, with A/B and the pictures' difference.

    With ``repeats > 1`` A and B alternate and each keeps its fastest run (a shared machine's noise only
    ever slows a run down)."""
    device = case.pipe._execution_device
    n = next(v.shape[0] for k, v in case.inputs.items() if k in ("prompt_embeds", "image_embeddings"))
    batch = _auto_batch_of(case)
    if warmup:  # first calls pay for lazy initialisation (allocator, kernels): keep them out of both timings
        helpers_render(case, n=min(n, batch))
        cookbook_loop(case, n=1)
    a_s = b_s = float("inf")
    a_mem = b_mem = 0
    for _ in range(max(1, repeats)):
        a_frames, secs, mem = _measure(partial(helpers_render, case), device)
        a_s, a_mem = min(a_s, secs), max(a_mem, mem)
        b_frames, secs, mem = _measure(partial(cookbook_loop, case), device)
        b_s, b_mem = min(b_s, secs), max(b_mem, mem)
    diff = float(np.abs(_frames_to_array(a_frames) - _frames_to_array(b_frames)).max()) / 255
    a = Row(case.name, "A helpers.render_frames", n, a_s, str(batch), a_mem, extra={"describe": case.describe})
    b = Row(case.name, "B one call per frame", n, b_s, "1", b_mem, extra={"describe": case.describe})
    a.ratio = b_s / a_s if a_s > 0 else None
    a.note = f"max pixel difference A vs B: {diff:.3f}"
    b.note = "cookbook loop"
    return [a, b]


# ---------------------------------------------------------------------------------------------- cases


def _text_case(name: str, pipe: Any, prompts: list[str], frames: int, kwargs: dict[str, Any], describe: str,
               negative_prompt: str = "") -> Case:  # fmt: skip
    from helpers.embeddings import encode_prompts, make_latents
    from helpers.interpolation import interpolation_path

    embeds, negative = encode_prompts(pipe, prompts, negative_prompt=negative_prompt)
    path = interpolation_path(list(embeds), frames)
    size = {k: kwargs[k] for k in ("height", "width") if k in kwargs}
    latents = make_latents(pipe, 0, **size)
    return Case(name, pipe, {"prompt_embeds": path, "negative_prompt_embeds": negative[:1], "latents": latents},
                kwargs, describe)


def tiny_cases(frames: int, steps: int, which: tuple[str, ...] = ("text2img", "unclip")) -> list[Case]:
    """The tiny random pipelines (CPU, float32)."""
    from helpers.embeddings import encode_images, make_latents
    from helpers.interpolation import interpolation_path
    from helpers.pipelines import tiny_pipeline

    cases = []
    if "text2img" in which:
        sd = tiny_pipeline("text2img")
        kwargs = {"num_inference_steps": steps, "guidance_scale": 3.0}
        describe = f"tiny StableDiffusionPipeline, 32x32, {steps} DDIM steps, guidance 3, fp32"
        prompts = ["a photo of a red house", "a sketch of a blue boat"]
        cases.append(_text_case("tiny-sd (random)", sd, prompts, frames, kwargs, describe))
    if "unclip" not in which:
        return cases
    from helpers.unclip import with_ddim

    unclip = with_ddim(tiny_pipeline("unclip"))  # deterministic, so A and B must draw the same frames
    rng = np.random.default_rng(0)
    from PIL import Image

    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(2)]
    embeds = encode_images(unclip, images)
    inputs = {
        "image_embeddings": interpolation_path(list(embeds), frames),
        "latents": make_latents(unclip, 0),
        "super_res_latents": make_latents(unclip, 1, kind="super_res"),
    }
    ukw = {"decoder_num_inference_steps": max(2, steps), "super_res_num_inference_steps": 2}
    cases.append(Case("tiny-unclip (random)", unclip, inputs, ukw,
                      f"tiny UnCLIPImageVariationPipeline (DDIM), 16->32 px, {max(2, steps)}+2 steps, fp32"))
    return cases


def teaching_case(frames: int, steps: int | None) -> tuple[Case | None, str]:
    """The teaching model on the CPU, or ``(None, reason)`` when its weights are not in the package."""
    from helpers.teaching import WEIGHTS_DIR

    folder = WEIGHTS_DIR / "teaching"
    if not (folder / "model_index.json").is_file():
        root = Path(__file__).resolve().parents[1]
        where = folder.relative_to(root) if folder.is_relative_to(root) else folder
        return None, f"no weights in {where}/ yet (they come with `make teaching-models`)"
    try:
        from helpers.backends import choose_backend

        backend = choose_backend("teaching", "text2img", device="cpu", dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any loading failure becomes a skipped row with its reason
        return None, f"could not load it: {type(exc).__name__}: {exc}"
    kwargs = backend.render_kwargs(steps=steps)
    describe = (f"teaching StableDiffusionPipeline, {backend.width}x{backend.height}, "
                f"{kwargs['num_inference_steps']} steps, guidance {kwargs['guidance_scale']:g}, fp32")
    case = _text_case("teaching", backend.pipe, list(backend.prompts[:2]), frames, kwargs, describe)
    return case, ""


def _reset_memory_options(pipe: Any) -> None:
    vae = pipe.vae
    vae.disable_slicing()
    vae.disable_tiling()
    if hasattr(pipe, "disable_attention_slicing"):
        pipe.disable_attention_slicing()
    if hasattr(pipe, "remove_all_hooks"):
        pipe.remove_all_hooks()


def sd15_rows(
    frames: int,
    steps: int,
    *,
    device: str | torch.device = "cuda",
    dtype: torch.dtype = torch.float16,
    build: Callable[[torch.device, torch.dtype], Any] = build_sd15_random,
    size: int = 512,
    compile: bool = True,
    caps_gib: tuple[float, ...] = (16, 6),
) -> list[Row]:
    """SD 1.5 architecture (random weights) at 512x512 on the GPU: A vs B, compiled A, memory caps.

    ``build``/``device``/``size`` exist so that the smoke test can rehearse this code path on the CPU with a
    tiny pipeline (there the compile row and the memory caps are reported as skipped)."""
    from helpers.interpolation import interpolation_path
    from helpers.pipelines import apply_memory_options, memory_plan
    from helpers.render import render_frames, speed_options

    device = torch.device(device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else device.type
    pipe = build(device, dtype)
    seq, dim = 77, pipe.unet.config.cross_attention_dim
    if getattr(pipe, "tokenizer", None) is not None:
        seq = pipe.tokenizer.model_max_length
    g = torch.Generator().manual_seed(0)
    keys = torch.randn((2, seq, dim), generator=g)
    scale = int(pipe.vae_scale_factor)
    inputs = {
        "prompt_embeds": interpolation_path(list(keys), frames).to(device, dtype),
        "negative_prompt_embeds": torch.randn((1, seq, dim), generator=g).to(device, dtype),
        "latents": torch.randn((1, pipe.unet.config.in_channels, size // scale, size // scale), generator=g),
    }
    kwargs = {"num_inference_steps": steps, "guidance_scale": 7.5, "height": size, "width": size}
    dt = str(dtype).removeprefix("torch.")
    describe = f"SD 1.5 architecture (random weights), {size}x{size}, {steps} DDIM steps, guidance 7.5, {dt}, {name}"
    case = Case(f"sd15 ({name})", pipe, inputs, kwargs, describe)
    rows = compare(case)
    peak = gpu_peak_tflops(name) if cuda else None
    work = tflop_per_frame(steps) * (size / 512) ** 2
    for row in rows:
        row.physical = row.fps * work / peak if peak else None
    if compile and not cuda:
        rows.append(Row(case.name, "A + torch.compile + channels_last", note="skipped: CUDA only"))
    elif compile:
        try:
            notes = speed_options(pipe, compile=True, channels_last=True)
            batch = _auto_batch_of(case)
            helpers_render(case, n=batch)  # compile for the chunk size (and warm up)
            _, secs, mem = _measure(partial(helpers_render, case), device)
            row = Row(case.name, "A + torch.compile + channels_last", frames, secs, str(batch), mem,
                      note="; ".join(notes[1:]))
            row.ratio = rows[1].seconds / secs
            row.physical = row.fps * work / peak if peak else None
            rows.append(row)
        except Exception as exc:  # noqa: BLE001 - report, do not lose the other rows
            rows.append(Row(case.name, "A + torch.compile + channels_last", note=f"failed: {type(exc).__name__}: {exc}"))
        case.pipe = pipe = None
        gc.collect()
        pipe = case.pipe = build(device, dtype)  # un-compiled, for the memory caps
    total = torch.cuda.get_device_properties(device).total_memory if cuda else 0
    for cap in caps_gib:
        label = f"A under a {cap:g} GiB cap"
        if not cuda or cap * GIB >= total:
            why = "CUDA only" if not cuda else "the GPU has less memory than the cap"
            rows.append(Row(case.name, label, note=f"skipped: {why}"))
            continue
        _reset_memory_options(pipe)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(cap * GIB / total, device)
        try:
            options = apply_memory_options(pipe, memory_plan(int(cap * GIB), device), device)
            batch = _auto_batch_of(case)
            _, secs, mem = _measure(partial(render_frames, pipe, **inputs, seed=0, progress=False, **kwargs), device)
            row = Row(case.name, label, frames, secs, str(batch), mem,
                      note=f"memory options: {', '.join(options) or 'none'}")
            row.ratio = rows[1].seconds / secs
            rows.append(row)
        except torch.cuda.OutOfMemoryError as exc:
            rows.append(Row(case.name, label, note=f"out of memory: {str(exc).splitlines()[0]}"))
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    return rows


# ----------------------------------------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("torch", "diffusers", "transformers", "accelerate", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _device_line(load_at_start: float | None = None) -> str:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"CUDA: {props.name}, {props.total_memory / GIB:.0f} GiB, CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg") and load_at_start is not None:
        load = (f", 1-minute load average {load_at_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
                "(anything above the core count means other work shared the CPU)")
    return f"CPU only: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}{load}"


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:.0f} MiB"


def render_report(
    rows: list[Row], skipped: list[tuple[str, str]], *, command: str, settings: str, load: float | None = None
) -> str:
    """The Markdown report: command, date, device, versions, one table, skipped rows, what is measured."""
    lines = [
        "# Rendering benchmark: helpers (A) vs one pipeline call per frame (B)",
        "",
        f"- Command: `{command}` (`make bench`)",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Device: {_device_line(load)}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        f"- Settings: {settings}",
        "",
        "## Results",
        "",
        "| case | approach | frames | batch | seconds | frames/s | A/B speed-up | peak memory | of physical limit | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        measured = r.frames > 0 and r.seconds == r.seconds
        lines.append(
            "| " + " | ".join([
                r.case, r.approach, str(r.frames) if measured else "", r.batch,
                f"{r.seconds:.2f}" if measured else "", f"{r.fps:.2f}" if measured else "",
                f"{r.ratio:.2f}x" if r.ratio else "", _mib(r.peak_bytes),
                f"{100 * r.physical:.1f}%" if r.physical else "", r.note,
            ]) + " |"
        )  # fmt: skip
    cases = {r.case: r.extra.get("describe") for r in rows if r.extra.get("describe")}
    if cases:
        lines += ["", "## Cases", ""] + [f"- **{k}**: {v}" for k, v in cases.items()]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- **{k}**: {why}" for k, why in skipped]
    lines += [
        "",
        "## What is measured",
        "",
        "- Both approaches render the same frames from the same pipeline object, embeddings and initial latents, "
        "one after the other in this run, each after one untimed warm-up call. Wall-clock seconds "
        "(`time.perf_counter`, CUDA synchronised).",
        "- A/B speed-up = seconds of B / seconds of A (above 1: helpers is faster).",
        "- Peak memory: on CUDA `torch.cuda.max_memory_allocated` (tensors only, not the allocator's cache); on "
        f"the CPU the growth of the {_heap_reader()[0]} over its value before the run, sampled every "
        "millisecond in a background thread (torch's CPU tensors are malloc'ed; this counts everything else "
        "the process allocated meanwhile too, and can miss peaks shorter than a millisecond).",
        "- Of physical limit (CUDA only): frames/s x work per frame / the GPU's dense fp16 peak, with "
        f"{tflop_per_frame(25):.1f} TFLOP per SD 1.5 frame at 25 steps ({SD15_TFLOP_PER_STEP} TFLOP per "
        f"guided UNet step, {SD15_TFLOP_DECODE} TFLOP per VAE decode).",
        "- Max pixel difference A vs B: the largest difference of any pixel between the two renders "
        "(0..1). Every case uses a deterministic sampler (DDIM; unCLIP through `helpers.unclip.with_ddim`), so "
        "A and B must give the same pictures up to batch rounding.",
        "",
    ]
    return "\n".join(lines)


def run(
    out: str | os.PathLike,
    *,
    frames: int = 16,
    steps: int = 10,
    teaching_steps: int | None = None,
    cuda: bool | None = None,
    cuda_frames: int = 32,
    compile: bool = True,
    tiny: tuple[str, ...] = ("text2img", "unclip"),
    teaching: bool = True,
    repeats: int = 1,
    command: str = "python -m benchmarks.bench --out benchmarks/RESULTS.md",
) -> tuple[Path, list[Row], list[tuple[str, str]]]:
    """Run the benchmark and write the Markdown report to ``out`` (atomically). Returns (path, rows, skipped)."""
    from helpers.media import atomic_write

    rows: list[Row] = []
    skipped: list[tuple[str, str]] = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for case in tiny_cases(frames, steps, tiny) if tiny else []:
        print(f"benchmarking {case.name} ...", flush=True)
        rows += compare(case, repeats=repeats)
    if teaching:
        case, why = teaching_case(frames, teaching_steps)
        if case is None:
            print(f"skipping teaching: {why}", flush=True)
            skipped.append(("teaching", why))
        else:
            print(f"benchmarking {case.name} ...", flush=True)
            rows += compare(case, repeats=repeats)
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda and torch.cuda.is_available():
        print("benchmarking SD 1.5 architecture on CUDA ...", flush=True)
        rows += sd15_rows(cuda_frames, 25, compile=compile)
    else:
        why = "no CUDA GPU in this run" if not torch.cuda.is_available() else "turned off (--no-cuda)"
        print(f"skipping the SD 1.5 CUDA rows: {why}", flush=True)
        skipped.append(("sd15 (CUDA)", why))
    settings = f"CPU walks: {frames} frames, {steps} steps" + (
        f"; CUDA walk: {cuda_frames} frames, 25 steps" if cuda and torch.cuda.is_available() else ""
    )
    text = render_report(rows, skipped, command=command, settings=settings, load=load)
    target = Path(out)
    with atomic_write(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text)
    return target, rows, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/RESULTS.md", help="Markdown report to write")
    parser.add_argument("--frames", type=int, default=16, help="frames per CPU walk")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps of the tiny pipelines")
    parser.add_argument("--teaching-steps", type=int, default=None, help="steps of the teaching model")
    parser.add_argument("--cuda-frames", type=int, default=32, help="frames of the SD 1.5 walk on CUDA")
    parser.add_argument("--repeats", type=int, default=2, help="alternate A and B this often, keep the best")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: the small CPU models gain nothing from more, and on a shared CPU "
        "extra threads spin; 0 keeps torch's default)",
    )  # fmt: skip
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA rows")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row on CUDA")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    command = "python -m benchmarks.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    run(args.out, frames=args.frames, steps=args.steps, teaching_steps=args.teaching_steps,
        cuda=False if args.no_cuda else None, cuda_frames=args.cuda_frames, compile=not args.no_compile,
        repeats=args.repeats, command=command.strip())  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
