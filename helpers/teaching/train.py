"""Retrain the teaching models from scratch: ``python -m helpers.teaching.train`` (``make teaching-models``).

Introduced in notebook 01_diffusion_basics (the model cards in ``helpers/teaching/README.md`` quote it).

    python -m helpers.teaching.train [--smoke] [--only toy2d|text2img|unclip] [--out DIR] [--seed N]

Fixed seeds, tqdm progress bars, and the same folders that ship (default ``--out``: the package's
``weights/``). ``--smoke`` runs the same code for a few steps (CI uses it so the training code cannot rot);
it never writes into the package unless ``--out`` says so.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MODELS = ("toy2d", "text2img", "unclip")
FOLDERS = {"toy2d": "toy-s-curve", "text2img": "teaching-digits", "unclip": "teaching-unclip"}


def _train_toy2d(out: Path, *, smoke: bool, seed: int, progress: bool) -> None:
    from helpers.teaching.toy2d import save_toy, train_toy

    model, scheduler, losses = train_toy(steps=20 if smoke else 2000, seed=seed, progress=progress)
    save_toy(model, scheduler, out)


def _train_text2img(out: Path, *, smoke: bool, seed: int, progress: bool) -> None:
    from helpers.teaching.text2img import train_text2img

    train_text2img(out, smoke=smoke, seed=seed, progress=progress)


def _unclip_trainer() -> Callable[..., object] | None:
    try:
        module = importlib.import_module("helpers.teaching.unclip_model")
    except ModuleNotFoundError as err:
        if err.name != "helpers.teaching.unclip_model":
            raise
        return None
    return getattr(module, "train_teaching_unclip", None)


def train_models(
    only: str | None = None, *, out: str | Path | None = None, smoke: bool = False, seed: int = 0,
    progress: bool = True, threads: int | None = None,
) -> dict[str, float]:
    """Train ``only`` one model (or all) into ``out``/<folder>; return the seconds each one took."""
    import torch

    from helpers.teaching import WEIGHTS_DIR

    if only is not None and only not in MODELS:
        raise ValueError(f"--only must be one of {', '.join(MODELS)}, got {only!r}")
    out_root = Path(out) if out is not None else WEIGHTS_DIR
    torch.set_flush_denormal(True)
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be ≥ 1, got {threads}")
        torch.set_num_threads(threads)
    times: dict[str, float] = {}
    for name in MODELS if only is None else (only,):
        target = out_root / FOLDERS[name]
        print(f"[{name}] training{' (smoke)' if smoke else ''} → {target}", flush=True)
        t0 = time.perf_counter()
        if name == "toy2d":
            _train_toy2d(target, smoke=smoke, seed=seed, progress=progress)
        elif name == "text2img":
            _train_text2img(target, smoke=smoke, seed=seed, progress=progress)
        else:
            trainer = _unclip_trainer()
            if trainer is None:
                print("[unclip] skipped: helpers.teaching.unclip_model.train_teaching_unclip is not available yet")
                continue
            trainer(target, smoke=smoke, seed=seed, progress=progress)
        times[name] = time.perf_counter() - t0
        print(f"[{name}] done in {times[name]:.1f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.teaching.train", description="Retrain the teaching models from scratch."
    )
    parser.add_argument("--smoke", action="store_true", help="a few steps of the same code (CI)")
    parser.add_argument("--only", choices=MODELS, help="train one model only")
    parser.add_argument("--out", type=Path, help="output folder (default: the package weights; "
                        "with --smoke: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (use 1 on a machine shared with "
                        "other jobs: oversubscribed threads slow training down many times over)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    out = args.out
    tmp = None
    if args.smoke and out is None:
        tmp = tempfile.TemporaryDirectory(prefix="teaching-smoke-")
        out = Path(tmp.name)
    try:
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
