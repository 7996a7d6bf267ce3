"""``make bench-morph``: morphing image pairs, naive DDIM slerp against each added technique (notebook 08).

A fixed set of image pairs from the teaching world (two emoji scenes on the same background, each inverted with
its caption, :func:`helpers.morph.invert_images`) is morphed by every method in the same run, from the same
inversions, with the same frames and steps:

1. **naive** — slerp of the DDIM-inverted noises and of the caption embeddings, then DDIM (the baseline every
   morphing paper beats);
2. **+ AdaIN** — the noises' per-channel statistics interpolated linearly (DiffMorpher);
3. **+ attention** — self-attention keys and values mixed from the two endpoint trajectories ("inner", AID);
4. **+ re-timing (full)** — the frames' fractions λ chosen by :func:`helpers.retime` for equal steps (DiffMorpher,
   IMPUS), within a render budget;

and, beside them, the other attention modes ("outer", "fused") and the chained img2img ("contextual") morph.

Reported per method, as means over the pairs: path length (sum of adjacent RMSE), PDV (their variance),
1 − Gini (AID's smoothness), the jump ratio, the endpoint error (MSE of the first and last frames against the
inputs) and the seconds per morph; and per pair, whether the full method beats naive on PDV and on 1 − Gini
with an endpoint error no worse. All distances are RMSE in [0, 1] pixel units, which need no network weights.
LPIPS is left out: its weights cannot be downloaded on this project's machines.

``python -m benchmarks.morph --out benchmarks/MORPH.md`` writes the report atomically. One torch thread by
default (``--threads``), as in ``make bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: (object A, object B, background): within-family morphs of every family, and two across families.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("red apple", "green apple", "white"),
    ("cat face", "dog face", "white"),
    ("grinning face", "crying face", "white"),
    ("sun", "moon", "blue"),
    ("red heart", "blue heart", "white"),
    ("car", "bus", "yellow"),
    ("lion face", "tiger face", "green"),
    ("lemon", "orange", "pink"),
    ("rocket", "airplane", "white"),
    ("strawberry", "red heart", "white"),
)


@dataclass
class Method:
    name: str
    describe: str
    run: Callable[[Any, Any, np.ndarray], np.ndarray]


def methods(frames: int, coarse: int, budget: int) -> list[Method]:
    """The methods in the order notebook 08 builds them, then the alternatives."""
    from helpers import morph, retime

    def plain(**kw: Any) -> Callable[[Any, Any, np.ndarray], np.ndarray]:
        return lambda pipe, inv, ts: morph.render_morph(pipe, inv, ts, progress=False, **kw)

    def full(pipe: Any, inv: Any, ts: np.ndarray) -> np.ndarray:
        result = retime(lambda t: morph.render_morph(pipe, inv, t, noise="adain", attention="inner",
                                                     progress=False), frames, coarse=coarse, budget=budget)
        return np.stack(result.frames)

    return [
        Method("naive", "slerp noises + embeddings, DDIM", plain()),
        Method("+ AdaIN", "noise statistics interpolated linearly", plain(noise="adain")),
        Method("+ attention", "AdaIN + inner self-attention K/V interpolation", plain(noise="adain",
                                                                                       attention="inner")),
        Method("+ re-timing (full)", f"the above, re-timed (coarse {coarse}, budget {budget})", full),
        Method("alt: outer attention", "AdaIN + outer (mixed outputs)", plain(noise="adain", attention="outer")),
        Method("alt: fused attention", "AdaIN + fused (own + mixed K/V)", plain(noise="adain", attention="fused")),
        Method("alt: img2img chain", "each frame img2img of the previous, strength 0.5",
               lambda pipe, inv, ts: morph.chained_img2img(pipe, inv, ts, strength=0.5, progress=False)),
    ]


def load(model: str) -> tuple[Any, int, str]:
    """The pipeline, its steps and a description: the teaching model, or tiny random components (smoke)."""
    from helpers.backends import choose_backend

    backend = choose_backend(model, "text2img", device="cpu")
    return backend.pipe, backend.steps, f"{backend.model} ({type(backend.pipe).__name__}, {backend.width} px)"


def inversions(pipe: Any, steps: int, pairs: tuple[tuple[str, str, str], ...]) -> list[tuple[str, Any]]:
    from helpers import morph
    from helpers.media import to_pil
    from helpers.teaching import scenes

    out = []
    for i, (a, b, background) in enumerate(pairs):
        images = [to_pil(x) for x in scenes.example_scenes([a, b], seed=i, background=background).images]
        captions = [scenes.caption(n, "big", background) for n in (a, b)]
        out.append((f"{a} → {b} ({background})", morph.invert_images(pipe, images, captions,
                                                                   num_inference_steps=steps)))
    return out


def measure(pipe: Any, pairs: list[tuple[str, Any]], all_methods: list[Method], frames: int) -> dict[str, list[dict]]:
    """Every method on every pair: a list of per-pair results per method."""
    from helpers import morph, walk_report

    ts = np.linspace(0.0, 1.0, frames)
    results: dict[str, list[dict]] = {m.name: [] for m in all_methods}
    for label, inv in pairs:
        print(f"morphing {label} ...", flush=True)
        for m in all_methods:
            start = time.perf_counter()
            out = m.run(pipe, inv, ts)
            seconds = time.perf_counter() - start
            report = walk_report(list(out))
            results[m.name].append({"pair": label, "path_length": report.path_length, "pdv": report.pdv,
                                    "smoothness": report.smoothness, "jump": report.jump_ratio,
                                    "endpoint": morph.endpoint_error(out, inv), "seconds": seconds})
    return results


def render_report(results: dict[str, list[dict]], all_methods: list[Method], *, command: str, model: str,
                  settings: str) -> str:
    from benchmarks.bench import _device_line, _versions

    naive, full = results["naive"], results["+ re-timing (full)"]
    lines = [
        "# Morph benchmark: naive DDIM slerp against each added technique",
        "",
        f"- Command: `{command}` (`make bench-morph`)",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Device: {_device_line()}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        f"- Model: {model}",
        f"- Settings: {settings}",
        "",
        f"## Means over the {len(naive)} pairs",
        "",
        "| method | what | path length | PDV | 1 − Gini | jump ratio | endpoint MSE | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in all_methods:
        rows = results[m.name]

        def mean(key: str, rows: list[dict] = rows) -> float:
            return float(np.mean([r[key] for r in rows]))

        lines.append(f"| {m.name} | {m.describe} | {mean('path_length'):.3f} | {mean('pdv'):.2e} | "
                     f"{mean('smoothness'):.3f} | {mean('jump'):.2f} | {mean('endpoint'):.4f} | "
                     f"{mean('seconds'):.2f} |")
    wins = [(f["pdv"] < n["pdv"], f["smoothness"] > n["smoothness"], f["endpoint"] <= n["endpoint"] + 1e-6)
            for n, f in zip(naive, full)]
    lines += [
        "",
        "## Full method against naive, pair by pair",
        "",
        "| pair | PDV naive → full | 1 − Gini naive → full | endpoint MSE naive → full | beats naive |",
        "|---|---:|---:|---:|---|",
    ]
    for n, f, w in zip(naive, full, wins):
        verdict = "yes" if all(w) else "no (" + ", ".join(k for k, ok in zip(("PDV", "1 − Gini", "endpoint"), w)
                                                        if not ok) + ")"
        lines.append(f"| {n['pair']} | {n['pdv']:.2e} → {f['pdv']:.2e} | {n['smoothness']:.3f} → "
                     f"{f['smoothness']:.3f} | {n['endpoint']:.4f} → {f['endpoint']:.4f} | {verdict} |")
    lines.append("")
    for i, m in enumerate(all_methods[1:3], start=1):  # what AdaIN and attention add on their own
        prev, rows = results[all_methods[i - 1].name], results[m.name]
        better = sum(r["smoothness"] > p["smoothness"] for p, r in zip(prev, rows))
        lines.append(f"- **{m.name}** raises 1 − Gini over the step before it on {better} of {len(rows)} pairs.")
    lines += [
        "",
        f"**Goal** (issue 15): the full method beats naive on PDV and on 1 − Gini with an endpoint error no worse. "
        f"Met on {sum(all(w) for w in wins)} of {len(wins)} pairs.",
        "",
        "## What is measured",
        "",
        "Each pair is inverted once (DDIM inversion with its caption) and every method starts from that inversion.",
        "Distances are the RMSE between consecutive frames in [0, 1] pixel units (`helpers.walk_report`); the",
        "path length is their sum, PDV their variance, 1 − Gini their evenness (1: all steps equal), the jump ratio",
        "the largest step over the mean step. The endpoint error is the mean squared error of the first and last",
        "frames against the fitted inputs. The re-timed method renders more frames than it returns (its budget);",
        "its seconds include them. The img2img chain never sees the second image, only its caption, so its",
        "endpoint error measures how far the chain ends from it. LPIPS is not reported: its weights cannot be",
        "downloaded here.",
        "",
    ]
    return "\n".join(lines)


def run(out: str | Path, *, model: str = "teaching", frames: int = 9, coarse: int = 9, budget: int = 27,
        pairs: tuple[tuple[str, str, str], ...] = PAIRS,
        command: str = "python -m benchmarks.morph --out benchmarks/MORPH.md") -> tuple[Path, dict[str, list[dict]]]:
    """Run the morph benchmark and write the report to ``out`` atomically. Returns (path, results)."""
    from helpers.media import atomic_write

    pipe, steps, description = load(model)
    all_methods = methods(frames, coarse, budget)
    results = measure(pipe, inversions(pipe, steps, pairs), all_methods, frames)
    settings = (f"{len(pairs)} pairs, {frames} frames per morph, {steps} DDIM steps for inversion and "
                f"rendering, guidance 1")
    text = render_report(results, all_methods, command=command, model=description, settings=settings)
    target = Path(out)
    with atomic_write(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text)
    return target, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.morph", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/MORPH.md", help="Markdown report to write")
    parser.add_argument("--model", default="teaching", choices=("teaching", "tiny-random"))
    parser.add_argument("--frames", type=int, default=9, help="frames per morph")
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help=f"how many of the {len(PAIRS)} pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    command = "python -m benchmarks.morph " + " ".join(sys.argv[1:] if argv is None else argv)
    run(args.out, model=args.model, frames=args.frames, coarse=args.frames, budget=3 * args.frames,
        pairs=PAIRS[: max(1, args.pairs)], command=command.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
