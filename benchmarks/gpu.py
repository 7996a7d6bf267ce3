"""The prepared GPU check (issue: real models on a GPU): ``bash benchmarks/gpu_check.sh`` on a CUDA machine.

After ``make bench`` (Stable Diffusion 1.5's architecture in fp16, batched against one call per frame, with the
fraction of the GPU's peak), this renders one SDXL walk at 1024x1024 and one Karlo morph at 256x256 with the
published architectures and random weights (nothing is downloaded; speed and memory do not depend on weight
values), through the public API, and records the time per frame and the peak GPU memory in ``--out``.

The flow models the same way, in bfloat16: an SD 3.5 medium walk (its card's 40 steps at guidance 4.5) and a
FLUX.1 [schnell] walk (4 steps, no guidance) at 1024x1024, every component at its published size (T5-XXL
included; :func:`benchmarks.fullsize.build_flow`), each with the memory options ``helpers.pipelines.memory_plan``
picks for the GPU's free memory, then again under a 24 GiB cap (a 24 GB card: SD 3.5 medium whole, FLUX.1
sequentially offloaded, by the plan), so the plan's estimates (``helpers.models.FLOW_FOOTPRINTS``) meet a
measured peak. Without CUDA it says so and exits 2: nothing here runs in CI.

    python -m benchmarks.gpu --out benchmarks/GPU.md [--frames 4] [--steps 25] [--models sdxl,karlo,sd35,flux]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

import torch


def _sdxl_walk(frames: int, steps: int) -> dict[str, Any]:
    from benchmarks.fullsize import build
    from helpers import encode_prompts, render_frames, slerp

    pipe = build("sdxl").to("cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = encode_prompts(pipe, ["a lighthouse at dawn", "a lighthouse at night"])
    path = slerp(embeds[0], embeds[1], [i / (frames - 1) for i in range(frames)])
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = render_frames(pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1], seed=0, height=1024,
                        width=1024, num_inference_steps=steps, guidance_scale=5.0, output_type="np", progress=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    black = int((out.reshape(len(out), -1).max(axis=1) == 0).sum())
    return {"model": "SDXL base (random weights, fp16)", "size": "1024x1024", "frames": len(out), "steps": steps,
            "s_per_frame": seconds / len(out), "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "black_frames": black}


def _karlo_morph(frames: int, steps: int) -> dict[str, Any]:
    from PIL import Image

    from benchmarks.fullsize import build
    from helpers import encode_images, slerp
    from helpers.unclip import decode

    pipe = build("karlo").to("cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    images = [Image.new("RGB", (256, 256), c) for c in ((200, 120, 40), (40, 90, 200))]
    embeds = encode_images(pipe, images)
    g = torch.Generator().manual_seed(0)
    fracs = [i / (frames - 1) for i in range(frames)]
    walk = slerp(embeds[0], embeds[1], fracs, dim=-1)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = decode(pipe, walk, torch.randn(1, 3, 64, 64, generator=g), torch.randn(1, 3, 256, 256, generator=g),
                 num_inference_steps=steps, super_res_num_inference_steps=7, output_type="np")
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"model": "Karlo image variations (random weights, fp16)", "size": "256x256", "frames": len(out),
            "steps": f"{steps} + 7", "s_per_frame": seconds / len(out),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30, "black_frames": 0}


#: What ``--models`` may name, in the order they run.
MODELS_RUN: dict[str, Any] = {"sdxl": _sdxl_walk, "karlo": _karlo_morph, "sd35": None, "flux": None}


def _models(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS_RUN]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"--models takes names from {', '.join(MODELS_RUN)}, got {text!r}")
    return [n for n in MODELS_RUN if n in names]


#: The flow walks: our name -> the registry name whose card (steps, guidance) and memory footprint they use.
FLOW_MODELS = {"sd35": "sd35-medium", "flux": "flux-schnell"}
#: The memory cap of the second run of each flow walk: a 24 GB card.
CAP_GIB = 24.0


def build_flow_on(model: str, device: torch.device, dtype: torch.dtype, configs: dict | None = None) -> Any:
    """:func:`benchmarks.fullsize.build_flow` initialised directly on ``device`` in ``dtype`` (seconds on a GPU
    instead of minutes on the CPU; in bfloat16 FLUX.1's 11.9 B parameters take 23.8 GB instead of 47.6)."""
    from benchmarks.fullsize import build_flow

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            pipe = build_flow(model, configs=configs)
    finally:
        torch.set_default_dtype(before)
    from helpers.devices import quiet_libraries

    with quiet_libraries():  # diffusers warns on every cast, even with no module to keep in float32
        pipe.to(device=device, dtype=dtype)  # buffers made in float32 on purpose, too
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _flow_walk(model: str, frames: int, steps: int | None, *, device: str | torch.device = "cuda",
               dtype: torch.dtype = torch.bfloat16, configs: dict | None = None, size: int = 1024,
               cap_gib: float | None = CAP_GIB) -> list[dict[str, Any]]:
    """One walk of ``frames`` frames between two prompts with ``model`` ("sd35" / "flux") at ``size``: one row
    with the memory plan for the free memory, one under ``cap_gib`` (when the GPU has more than that; fewer
    frames: sequential offload is slow). ``configs``/``device``/``size`` let the smoke test rehearse this on the
    CPU with tiny components."""
    from helpers import encode_prompts, render_frames, slerp
    from helpers.devices import free_memory_bytes
    from helpers.models import MODELS
    from helpers.pipelines import apply_memory_options, memory_plan

    device = torch.device(device)
    cuda = device.type == "cuda"
    name = FLOW_MODELS[model]
    card = MODELS[name]
    steps = steps or card.steps
    start = time.perf_counter()
    pipe = build_flow_on(model, device, dtype, configs)
    built = time.perf_counter() - start
    print(f"{name}: built in {built:.1f} s", flush=True)
    embeds, negative = encode_prompts(pipe, ["a lighthouse at dawn", "a lighthouse at night"])
    kwargs: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": card.guidance, "height": size,
                              "width": size}
    label = f"{card.title} (random weights, {str(dtype).removeprefix('torch.')})"
    rows: list[dict[str, Any]] = []
    total = torch.cuda.get_device_properties(device).total_memory if cuda else 0
    caps: list[float | None] = [None] + ([cap_gib] if cap_gib and cuda and cap_gib * 2**30 < total else [])
    for cap in caps:
        n = frames if cap is None else min(frames, 2)
        path = slerp(embeds[0], embeds[1], [i / (n - 1) for i in range(n)])
        budget = free_memory_bytes(device) if cap is None else int(cap * 2**30)
        row_name = label + ("" if cap is None else f", {cap:g} GiB cap")
        try:
            options = apply_memory_options(pipe, memory_plan(budget, device, name), device)
            print(f"{row_name}: {n} frames, memory options {options or 'none'}", flush=True)
            if cuda:
                torch.cuda.empty_cache()
                if cap is not None:
                    torch.cuda.set_per_process_memory_fraction(cap * 2**30 / total, device)
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            out = render_frames(pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1], seed=0,
                                output_type="np", progress=False, **kwargs)
            if cuda:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - out of memory under the cap must not lose the uncapped row
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            rows.append({"model": row_name, "error": f"{type(exc).__name__}: {first}"})
            continue
        finally:
            if cuda and cap is not None:
                torch.cuda.set_per_process_memory_fraction(1.0, device)
        black = int((out.reshape(len(out), -1).max(axis=1) == 0).sum())
        rows.append({"model": row_name, "size": f"{size}x{size}",
                     "frames": len(out), "steps": f"{steps}, guidance {card.guidance:g}",
                     "s_per_frame": seconds / len(out),
                     "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan"),
                     "black_frames": black, "options": ", ".join(options) or "none", "build_s": built})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/GPU.md"))
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25, help="SDXL and Karlo steps (the flow models: their cards')")
    parser.add_argument("--models", type=_models, default=list(MODELS_RUN),
                        help=f"which walks, comma-separated, from {','.join(MODELS_RUN)} (default: all)")
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error("--frames must be at least 2 (a walk has two ends)")
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the GPU check needs one (nothing was measured)", file=sys.stderr)
        return 2
    rows = []
    for model in args.models:
        try:
            if model in FLOW_MODELS:
                rows += _flow_walk(model, args.frames, None)
            else:
                rows.append(MODELS_RUN[model](args.frames, args.steps))
        except Exception as exc:  # noqa: BLE001  # one model failing must not lose the other's figures
            rows.append({"model": model, "error": f"{type(exc).__name__}: {exc}"})
        gc.collect()
        torch.cuda.empty_cache()
    device = torch.cuda.get_device_name()
    lines = [f"# GPU walks at native size ({device}, torch {torch.__version__})", "",
             "Written by `python -m benchmarks.gpu` (see `benchmarks/gpu_check.sh`).", "",
             "| model | size | frames | steps | s / frame | peak GPU memory (GiB) | black frames | memory options |",
             "|---|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | | | |")
        else:
            lines.append(f"| {r['model']} | {r['size']} | {r['frames']} | {r['steps']} | {r['s_per_frame']:.2f} | "
                         f"{r['peak_gib']:.2f} | {r['black_frames']} | {r.get('options', 'none')} |")
    lines += ["", "Flow models: every component at its published size (T5-XXL included) with random weights, built on "
              "the GPU in bfloat16; memory options from `helpers.pipelines.memory_plan` for the free memory, then "
              f"for a {CAP_GIB:g} GiB cap enforced with `torch.cuda.set_per_process_memory_fraction`; their "
              "estimates are `helpers.models.FLOW_FOOTPRINTS`."]
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
