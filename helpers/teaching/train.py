"""Retrain the teaching models from scratch: ``python -m helpers.teaching.train`` (``make teaching-models``).

Introduced in notebook 01_diffusion_basics (the model cards in ``helpers/teaching/README.md`` quote it).

    python -m helpers.teaching.train [--smoke] [--only toy2d text2img unclip] [--out DIR] [--seed N] [--jobs 2]

Fixed seeds, tqdm progress bars, and the same folders that ship (default ``--out``: the package's
``weights/``). ``--smoke`` runs the same code for a few steps (CI uses it so the training code cannot rot);
it never writes into the package unless ``--out`` says so.

The models are tiny, so one torch thread per model beats two threads on one model: with ``--jobs 2`` (the
default for a full run) two processes of one thread each, one per core, train at the same time: the toy model
and text-to-image in one, unCLIP (CLIP, decoder, prior, super-res) in the other. Each model's result depends
only on its seed, not on the job layout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

MODELS = ("toy2d", "text2img", "unclip")
FOLDERS = {"toy2d": "toy-s-curve", "text2img": "teaching", "unclip": "teaching-unclip"}
# Two groups for two cores (measured in the run that wrote the shipped weights, one thread each: toy 3 s +
# text-to-image ≈ 2,550 s against CLIP + decoder + prior + super-res ≈ 2,600 s).
JOB_GROUPS = (("toy2d", "text2img"), ("unclip",))


def _train_toy2d(out: Path, *, smoke: bool, seed: int, progress: bool) -> None:
    from helpers.teaching.toy2d import save_toy, train_toy

    model, scheduler, losses = train_toy(steps=20 if smoke else 2000, seed=seed, progress=progress)
    save_toy(model, scheduler, out)


def _train_text2img(out: Path, *, smoke: bool, seed: int, progress: bool) -> None:
    from helpers.teaching.text2img import train_text2img

    train_text2img(out, smoke=smoke, seed=seed, progress=progress)


def _train_unclip(out: Path, *, smoke: bool, seed: int, progress: bool) -> None:
    from helpers.teaching.unclip_model import train_teaching_unclip

    train_teaching_unclip(out, smoke=smoke, seed=seed, progress=progress)


def canonical_configs(folder: Path) -> None:
    """Sort the ``_use_default_values`` lists diffusers writes into its config files (it dumps a set, whose
    order changes with Python's string hashing), so a retraining writes the same bytes every time."""
    import json

    for path in sorted(Path(folder).rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("_use_default_values"), list):
            data["_use_default_values"] = sorted(data["_use_default_values"])
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _selected(only: str | Sequence[str] | None) -> tuple[str, ...]:
    names = MODELS if only is None else (only,) if isinstance(only, str) else tuple(only)
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        raise ValueError(f"--only must name models among {', '.join(MODELS)}, got {only!r}")
    return tuple(n for n in MODELS if n in names)  # always in dependency-free canonical order


def train_models(
    only: str | Sequence[str] | None = None, *, out: str | Path | None = None, smoke: bool = False,
    seed: int = 0, progress: bool = True, threads: int | None = None,
) -> dict[str, float]:
    """Train ``only`` these models (or all) one after another into ``out``/<folder>; return seconds each took."""
    import torch

    from helpers.teaching import WEIGHTS_DIR

    names = _selected(only)
    out_root = Path(out) if out is not None else WEIGHTS_DIR
    torch.set_flush_denormal(True)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    trainers = {"toy2d": _train_toy2d, "text2img": _train_text2img, "unclip": _train_unclip}
    steps = [(name, out_root / FOLDERS[name], trainers[name]) for name in names]
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times: dict[str, float] = {}
    try:
        for label, target, train in steps:
            print(f"[{label}] training{' (smoke)' if smoke else ''} → {target}", flush=True)
            t0 = time.perf_counter()
            train(target, smoke=smoke, seed=seed, progress=progress)
            if target.is_dir():
                canonical_configs(target)
            times[label] = time.perf_counter() - t0
            print(f"[{label}] done in {times[label]:.1f} s", flush=True)
    finally:
        torch.set_num_threads(previous_threads)
    return times


def train_parallel(
    only: str | Sequence[str] | None = None, *, out: str | Path | None = None, smoke: bool = False,
    seed: int = 0, progress: bool = True, jobs: int = 2,
) -> float:
    """Train the models in ``jobs`` processes of one torch thread each (see ``JOB_GROUPS``); return wall seconds.

    Each process runs ``python -m helpers.teaching.train --only ... --threads 1`` and draws its progress bars
    on its own line. If one process fails the others are stopped and ``RuntimeError`` names the models that
    failed.
    """
    from helpers.teaching import WEIGHTS_DIR

    names = _selected(only)
    if jobs < 1:
        raise ValueError(f"jobs must be ≥ 1, got {jobs}")
    groups = [tuple(n for n in g if n in names) for g in JOB_GROUPS]
    groups = [g for g in groups if g]
    while len(groups) > jobs:  # fewer jobs than groups: merge the last two
        groups[-2:] = [groups[-2] + groups[-1]]
    out_root = Path(out) if out is not None else WEIGHTS_DIR
    t0 = time.perf_counter()
    procs = []
    try:
        for position, group in enumerate(groups):
            cmd = [sys.executable, "-m", "helpers.teaching.train", "--jobs", "1", "--threads", "1",
                   "--seed", str(seed), "--out", str(out_root), "--only", *group]
            if smoke:
                cmd.append("--smoke")
            if not progress:
                cmd.append("--no-progress")
            env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_POSITION": str(position)}
            procs.append((group, subprocess.Popen(cmd, env=env)))
        codes: list[int | None] = [None]
        while None in codes and not any(codes):  # until all have finished, or one has failed
            time.sleep(0.5)
            codes = [proc.poll() for _, proc in procs]
    finally:
        for _, proc in procs:  # a failed (or interrupted) job must not leave the other one waiting
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
    failed = [group for group, proc in procs if proc.returncode != 0]
    if failed:
        raise RuntimeError(f"training failed for {', '.join(n for g in failed for n in g)} (see the output above)")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.teaching.train", description="Retrain the teaching models from scratch."
    )
    parser.add_argument("--smoke", action="store_true", help="a few steps of the same code (CI)")
    parser.add_argument("--only", choices=MODELS, nargs="+", help="train only these models")
    parser.add_argument("--out", type=Path, help="output folder (default: the package weights; "
                        "with --smoke: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (use 1 on a machine shared with "
                        "other jobs: oversubscribed threads slow training down many times over)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes of one thread each "
                        "(default 2, one per core; 1: one process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be ≥ 1, got {args.jobs}")
    parallel = args.jobs > 1 and (args.only is None or len(args.only) > 1)
    out = args.out
    tmp = None
    if args.smoke and out is None:
        tmp = tempfile.TemporaryDirectory(prefix="teaching-smoke-")
        out = Path(tmp.name)
    try:
        if parallel:
            try:
                wall = train_parallel(args.only, out=out, smoke=args.smoke, seed=args.seed,
                                      progress=not args.no_progress, jobs=args.jobs)
            except RuntimeError as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            print(f"all models trained in {wall:.1f} s of wall time ({args.jobs} parallel jobs)")
            return 0
        times = train_models(args.only, out=out, smoke=args.smoke, seed=args.seed, progress=not args.no_progress,
                             threads=args.threads)
    finally:
        if tmp is not None:
            tmp.cleanup()
    total = sum(times.values())
    print("time per model: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) + f"; total {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
