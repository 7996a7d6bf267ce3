"""The prepared GPU check (issue: real models on a GPU): ``bash benchmarks/gpu_check.sh`` on a CUDA machine.

After ``make bench`` (Stable Diffusion 1.5's architecture in fp16, batched against one call per frame, with the
fraction of the GPU's peak), this renders one SDXL walk at 1024x1024 and one Karlo morph at 256x256 with the
published architectures and random weights (nothing is downloaded; speed and memory do not depend on weight
values), through the public API, and records the time per frame and the peak GPU memory in ``--out``. Without
CUDA it says so and exits 2: nothing here runs in CI.

    python -m benchmarks.gpu --out benchmarks/GPU.md [--frames 4] [--steps 25]
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/GPU.md"))
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the GPU check needs one (nothing was measured)", file=sys.stderr)
        return 2
    rows = []
    for run in (_sdxl_walk, _karlo_morph):
        try:
            rows.append(run(args.frames, args.steps))
        except Exception as exc:  # noqa: BLE001  # one model failing must not lose the other's figures
            rows.append({"model": run.__name__, "error": f"{type(exc).__name__}: {exc}"})
        torch.cuda.empty_cache()
    device = torch.cuda.get_device_name()
    lines = [f"# GPU walks at native size ({device}, torch {torch.__version__})", "",
             "Written by `python -m benchmarks.gpu` (see `benchmarks/gpu_check.sh`).", "",
             "| model | size | frames | steps | s / frame | peak GPU memory (GiB) | black frames |",
             "|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} | | | | | |")
        else:
            lines.append(f"| {r['model']} | {r['size']} | {r['frames']} | {r['steps']} | {r['s_per_frame']:.2f} | "
                         f"{r['peak_gib']:.2f} | {r['black_frames']} |")
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
