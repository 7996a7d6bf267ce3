"""Retrain the teaching models from scratch: ``python -m helpers.teaching.train`` (``make teaching-models``).

Introduced in notebook 01_diffusion_basics (the model cards in ``helpers/teaching/README.md`` quote it).

    python -m helpers.teaching.train [--smoke] [--only toy2d text2img unclip flow] [--out DIR] [--seed N] [--jobs 2]

Fixed seeds, tqdm progress bars, and the same folders that ship (default ``--out``: the package's
``weights/``). ``--smoke`` runs the same code for a few steps (CI uses it so the training code cannot rot);
it never writes into the package unless ``--out`` says so.

The training is a set of independent **stages** (``STAGES``): each reads only what the stages it needs saved,
seeds itself, and runs in one torch thread, so its result does not depend on which process runs it or when.
``--jobs N`` runs them in a pool of N worker processes (default 2, one per core: the models are tiny, and one
thread per model beats two threads on one model), the longest chain first; ``--jobs 1`` runs them one after
another here. Either way the weights come out byte for byte the same.

Stages run on the CPU's own kernels (AVX-512 where it has them: about 30% faster than AVX2 at these sizes), so
the same seed gives the same bytes on the same kind of CPU. The scene judge is the exception (``pinned``): it
is fitted in a process of its own on torch's AVX2 kernels (:func:`helpers.teaching.common.pin_cpu_kernels`), as
the tests fit it, so the shipped judge is the classifier a test fits on the CPU that fitted it, whichever
kernels it has (the Intel Xeon of 2026-12-04 fits one that reads scenes alike, not the same bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODELS = ("toy2d", "text2img", "unclip", "flow", "judge")
FOLDERS = {"toy2d": "toy-s-curve", "text2img": "teaching", "unclip": "teaching-unclip", "flow": "teaching-flow",
           "judge": "scene-judge"}


@dataclass(frozen=True)
class Stage:
    """One training job: the model it belongs to, the stages whose output it reads, the seconds it took in the
    42-minute full run of 2026-12-03 (a pool of two one-thread workers; they order the queue), and whether it
    runs on pinned AVX2 kernels in a process of its own."""

    model: str
    needs: tuple[str, ...]
    seconds: int
    pinned: bool = False


STAGES = {
    "toy2d": Stage("toy2d", (), 12),
    "autoencoder": Stage("text2img", (), 463),
    "denoiser": Stage("text2img", ("autoencoder",), 1755),
    "clip": Stage("unclip", (), 530),
    "decoder": Stage("unclip", ("clip",), 1470),
    "prior": Stage("unclip", ("clip",), 515),
    "super_res": Stage("unclip", (), 184),
    "flow": Stage("flow", ("autoencoder",), 1200),  # measured 1,310 s beside another training (2026-12-07)
    "judge": Stage("judge", (), 30, pinned=True),
}


def run_stage(name: str, work: Path, out: Path, *, smoke: bool, seed: int, progress: bool) -> float:
    """Run stage ``name``: read its inputs from ``work/<needed stage>``, write ``work/<name>`` (or, for the last
    stage of a model, the model's folder in ``out``); return the seconds it took. Flush-to-zero for denormals is
    set here, for every stage but the judge's (it removed 1–5 s step spikes)."""
    import torch

    # The scene judge is fitted as SceneJudge(0) fits it in a test or a notebook (flush-to-zero off), so that the
    # shipped judge is that same classifier.
    torch.set_flush_denormal(name != "judge")
    if not progress:  # also transformers' own bar when a stage saves a text encoder (for this process)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    print(f"[{name}] training{' (smoke)' if smoke else ''}", flush=True)
    kw: dict[str, Any] = {"smoke": smoke, "seed": seed, "progress": progress}
    if name == "toy2d":
        from helpers.teaching.toy2d import save_toy, train_toy

        model, scheduler, _ = train_toy(steps=20 if smoke else 2000, seed=seed, progress=progress)
        save_toy(model, scheduler, out / FOLDERS["toy2d"])
        canonical_configs(out / FOLDERS["toy2d"])
    elif name == "judge":
        from helpers.teaching.judge import SceneJudge

        SceneJudge(seed, steps=3 if smoke else 400).save(out / FOLDERS["judge"])
    elif name == "autoencoder":
        from helpers.teaching.text2img import train_autoencoder_stage

        train_autoencoder_stage(work / name, **kw)
    elif name == "flow":  # the teaching model's autoencoder: this run's, else the one in out, else the shipped one
        from helpers.teaching.common import WEIGHTS_DIR
        from helpers.teaching.flow_model import train_flow_stage

        found = [work / "autoencoder", out / FOLDERS["text2img"] / "vae", WEIGHTS_DIR / FOLDERS["text2img"] / "vae"]
        vae = next(f for f in found if f.is_dir())
        train_flow_stage(vae, out / FOLDERS["flow"], **kw)
        canonical_configs(out / FOLDERS["flow"])
    elif name == "denoiser":
        from helpers.teaching.text2img import train_denoiser_stage

        train_denoiser_stage(work / "autoencoder", out / FOLDERS["text2img"], **kw)
        canonical_configs(out / FOLDERS["text2img"])
    else:
        from helpers.teaching import unclip_model

        train: Callable[..., Path] = getattr(unclip_model, f"train_{name}_stage")
        if STAGES[name].needs:
            train(work / "clip", work / name, **kw)
        else:
            train(work / name, **kw)
    return time.perf_counter() - t0


def canonical_configs(folder: Path) -> None:
    """Make the config files the same bytes on every retraining: sort the ``_use_default_values`` lists
    diffusers writes (it dumps a set, whose order changes with Python's string hashing) and drop the
    ``_name_or_path`` a component loaded from an earlier stage's folder carries."""
    for path in sorted(Path(folder).rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not ("_use_default_values" in data or "_name_or_path" in data):
            continue
        data.pop("_name_or_path", None)
        if isinstance(data.get("_use_default_values"), list):
            data["_use_default_values"] = sorted(data["_use_default_values"])
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _selected(only: str | Sequence[str] | None) -> tuple[str, ...]:
    names = MODELS if only is None else (only,) if isinstance(only, str) else tuple(only)
    bad = [n for n in names if n not in MODELS]
    if bad or not names:
        raise ValueError(f"--only must name models among {', '.join(MODELS)}, got {only!r}")
    return tuple(n for n in MODELS if n in names)


def _chain(name: str) -> int:
    """Seconds from the start of ``name`` to the end of the longest chain of stages that wait for it."""
    later = [_chain(n) for n, s in STAGES.items() if name in s.needs]
    return STAGES[name].seconds + max(later, default=0)


def _plan(models: Sequence[str]) -> list[str]:
    """The stages of ``models``, the longest chain first (every stage after the stages it needs)."""
    return sorted((n for n, s in STAGES.items() if s.model in models), key=lambda n: (-_chain(n), n))


def _init_worker(pinned: bool) -> None:
    """Each worker process: one torch thread, its own line for progress bars and, if ``pinned``, AVX2 kernels
    (set before torch loads; otherwise the worker keeps the kernels of the environment it inherited)."""
    import multiprocessing as mp

    # Pool workers are numbered 1, 2, ... across the pools of this run (no shared counter, so no semaphore).
    identity = mp.current_process()._identity  # noqa: SLF001  # the only per-worker number a Pool gives
    os.environ["TQDM_POSITION"] = str(identity[-1] - 1 if identity else 0)  # tqdm reads it on first import
    if pinned:
        from helpers.teaching.common import pin_cpu_kernels

        pin_cpu_kernels()
    import torch

    torch.set_num_threads(1)


def _run_pool(stages: list[str], work: Path, out: Path, jobs: int, kw: dict) -> dict[str, float]:
    """Run ``stages`` in ``jobs`` processes, each as soon as the stages it needs are done (a ``pinned`` stage in
    a process of its own, which counts as one of the ``jobs``). If one fails, the pools are stopped and
    ``RuntimeError`` names the stage."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: no threads or torch state inherited
    done: dict[str, float] = {}
    failed: dict[str, BaseException] = {}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    finished = False
    pools: dict[bool, Any] = {}  # started when a stage first needs one (the pinned pool: for the judge only)

    def pool(pinned: bool):
        if pinned not in pools:
            pools[pinned] = ctx.Pool(1 if pinned else jobs, initializer=_init_worker, initargs=(pinned,))
        return pools[pinned]

    try:
        running: dict[str, object] = {}
        waiting = list(stages)
        while waiting or running:
            ready = [n for n in waiting if all(d in done for d in STAGES[n].needs if d in stages)]
            for name in ready[: jobs - len(running)]:  # only as many as there are free workers: the queue
                waiting.remove(name)                   # stays in priority order as stages finish
                running[name] = pool(STAGES[name].pinned).apply_async(run_stage, (name, work, out), kw)
            time.sleep(0.2)
            for name, result in list(running.items()):
                if result.ready():  # type: ignore[attr-defined]
                    del running[name]
                    try:
                        done[name] = result.get()  # type: ignore[attr-defined]
                        print(f"[{name}] done in {done[name]:.0f} s", flush=True)
                    except BaseException as err:  # noqa: BLE001  # reported below, with the stage's name
                        failed[name] = err
            if failed:
                break
        finished = not failed
    finally:
        for workers in pools.values():
            if finished:  # let the workers exit on their own, so that they release their tqdm locks
                workers.close()
            else:  # a failed (or interrupted) stage must not leave the others running
                workers.terminate()
            workers.join()
    if failed:
        name, error = next(iter(failed.items()))
        raise RuntimeError(f"training stage {name!r} failed: {type(error).__name__}: {error}") from error
    return done


def train_models(
    only: str | Sequence[str] | None = None, *, out: str | Path | None = None, smoke: bool = False,
    seed: int = 0, progress: bool = True, jobs: int = 1,
) -> dict[str, float]:
    """Train ``only`` these models (or all) into ``out``/<folder>; return the seconds of each stage and the
    wall time (``"wall"``). ``jobs`` > 1: a pool of that many processes, one torch thread each; 1: here, but
    for the ``pinned`` stages (the judge), which run in a process of their own on AVX2 kernels."""
    import torch

    from helpers.teaching import WEIGHTS_DIR

    models = _selected(only)
    if jobs < 1:
        raise ValueError(f"jobs must be ≥ 1, got {jobs}")
    out_root = Path(out) if out is not None else WEIGHTS_DIR
    out_root.mkdir(parents=True, exist_ok=True)
    stages = _plan(models)
    kw: dict[str, Any] = {"smoke": smoke, "seed": seed, "progress": progress}
    work = Path(tempfile.mkdtemp(prefix=".stages-", dir=out_root))
    t0 = time.perf_counter()
    print(f"training {', '.join(models)}{' (smoke)' if smoke else ''} → {out_root}: stages {', '.join(stages)}"
          f" in {min(jobs, len(stages))} process(es)", flush=True)
    try:
        if jobs == 1:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                here = [name for name in stages if not STAGES[name].pinned]
                seconds = {name: run_stage(name, work, out_root, **kw) for name in here}
                pinned = [name for name in stages if STAGES[name].pinned]
                seconds.update(_run_pool(pinned, work, out_root, 1, kw) if pinned else {})
            finally:  # leave this process as torch starts (run_stage turned flush-to-zero on)
                torch.set_num_threads(previous)
                torch.set_flush_denormal(False)
        else:
            seconds = _run_pool(stages, work, out_root, jobs, kw)
        if "unclip" in models:
            from helpers.teaching.unclip_model import assemble_teaching_unclip, training_plan

            plan = training_plan(smoke)
            unclip = [n for n in stages if STAGES[n].model == "unclip"]
            info = {"seed": seed, "smoke": smoke, "plan": asdict(plan),
                    "seconds": {n: round(seconds[n], 1) for n in sorted(unclip)}}
            target = assemble_teaching_unclip([work / n for n in unclip], out_root / FOLDERS["unclip"], info=info)
            canonical_configs(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds["wall"] = time.perf_counter() - t0
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.teaching.train", description="Retrain the teaching models from scratch."
    )
    parser.add_argument("--smoke", action="store_true", help="a few steps of the same code (CI)")
    parser.add_argument("--only", choices=MODELS, nargs="+", help="train only these models")
    parser.add_argument("--out", type=Path, help="output folder (default: the package weights; "
                        "with --smoke: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of one torch thread each "
                        "(default 2, one per core; 1: every stage in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be ≥ 1, got {args.jobs}")
    out = args.out
    tmp = None
    if args.smoke and out is None:
        tmp = tempfile.TemporaryDirectory(prefix="teaching-smoke-")
        out = Path(tmp.name)
    try:
        seconds = train_models(args.only, out=out, smoke=args.smoke, seed=args.seed, progress=not args.no_progress,
                               jobs=args.jobs)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    wall = seconds.pop("wall")
    print("seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
          + f"; {wall:.1f} s of wall time in {args.jobs} job(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
