"""``make bench``, live rendering: the teaching DDPM model against the teaching flow model, milliseconds a frame.

Both teaching models render the same kind of walk (between two scene captions, the initial noise of seed 0)
through the public door, :func:`helpers.render_frames`, in one run on one torch thread, at batch 1 (a live
preview: one frame per call) and batch 16 (a walk rendered ahead). Three settings, at about equal object
accuracy (the evaluations table of ``helpers/teaching/README.md``, 8 samples a prompt):

* the DDPM model (``teaching``) at its card's settings (20 steps, guidance 5: 40 evaluations, 96.4%);
* the DDPM model at the fewest steps near the flow model's accuracy (5 steps, guidance 5: 10 evaluations, 88.5%);
* the flow model (``teaching-flow``) at its card's settings (5 steps, guidance 3: 10 evaluations, 90.1%).

Each (setting, batch) and each measurement of the flow model outside the pipeline (below) is warmed up once,
then all of them take turns ``--repeats`` times (so a busy moment of a
shared machine slows them all) and the report gives the median call, by the wall clock and in CPU time (with
one torch thread, what a frame costs a core whatever else runs on the machine). Inside the same timed calls it
splits each frame into the denoising network's calls (the guided pair is one call, as diffusers runs it), the
VAE decode and the rest (render_frames' checks, the scheduler, turning the decoded batch into pictures). Then the flow model at
batch 1 without the pipeline: one transformer evaluation with and without the guided pair, the VAE decode alone,
a prompt's text encoding (once per new prompt, not per frame), and the direct path (transformer steps called as
:mod:`helpers.flow` calls them, then the decode) at fewer evaluations, against the live goal of
:data:`LIVE_GOAL_MS` a frame at batch 1.

``python -m benchmarks.flow --out benchmarks/FLOW.md`` writes the report atomically.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

#: The live goal: a frame in at most this many milliseconds at batch 1 on one CPU thread (30 frames a second).
LIVE_GOAL_MS = 33.0
#: The DDPM model's object accuracy by (steps, guidance), from the evaluations table in
#: ``helpers/teaching/README.md`` (``python -m helpers.teaching.quality --flow``, 8 samples a prompt). The flow
#: model's own figures are read from its card (``evaluations``).
DDPM_OBJECT = {(4, 5.0): 0.792, (5, 5.0): 0.885, (8, 5.0): 0.953, (20, 5.0): 0.964}
#: The direct-path variants timed against the live goal: (steps, guidance) of the flow model.
DIRECT_VARIANTS = ((5, 3.0), (4, 3.0), (5, 1.0), (2, 1.0))
MODEL_OF = {"text2img": "teaching", "flow": "teaching-flow"}


@dataclass(frozen=True)
class Setting:
    """One model at one sampler setting. ``steps``/``guidance`` ``None``: the model card's."""

    label: str
    kind: str  # "text2img" (the DDPM model) or "flow"
    steps: int | None = None
    guidance: float | None = None


#: What ``make bench`` times: the DDPM model at its card and at equal accuracy, the flow model at its card.
SETTINGS = (
    Setting("DDPM, card", "text2img"),
    Setting("DDPM, 5 steps", "text2img", 5, 5.0),
    Setting("flow, card", "flow"),
)


def evaluations(steps: int, guidance: float) -> int:
    """Network evaluations of one frame: one a step, two with classifier-free guidance (two branches)."""
    return steps * (2 if guidance > 1 else 1)


def object_accuracy(kind: str, steps: int, guidance: float, card: dict[str, Any] | None = None) -> float | None:
    """Measured object accuracy at (steps, guidance): the flow model's card, :data:`DDPM_OBJECT` for the DDPM
    model; ``None`` where it was not measured."""
    if kind == "flow":
        for row in (card or {}).get("evaluations", []):
            if row["steps"] == steps and float(row["guidance"]) == float(guidance):
                return float(row["object"])
        return None
    return DDPM_OBJECT.get((steps, float(guidance)))


def flow_card() -> dict[str, Any]:
    """The teaching flow model's ``card.json`` (empty while there is none)."""
    import json

    from helpers.teaching.common import WEIGHTS_DIR
    from helpers.teaching.flow_model import CARD, NAME

    path = WEIGHTS_DIR / NAME / CARD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


#: The two clocks of every timing: wall-clock (``time.perf_counter``) and the process's CPU time
#: (``time.process_time``: with one torch thread, the time the frame costs a core, whatever else shares it).
CLOCKS = ("wall", "cpu")
#: (wall-clock, CPU) seconds.
Clock = tuple[float, float]


def _now() -> Clock:
    return time.perf_counter(), time.process_time()


def _since(start: Clock) -> Clock:
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


@dataclass
class Loaded:
    """A setting resolved against its loaded model: the pipeline, steps, guidance and its walk's inputs."""

    setting: Setting
    pipe: Any
    steps: int
    guidance: float
    kwargs: dict[str, Any]
    embeds: torch.Tensor  # (2, seq, dim): the two captions the walk runs between
    negative: torch.Tensor  # (1, seq, dim): the empty prompt's
    prompts: tuple[str, str]
    accuracy: float | None
    times: dict[int, list[dict[str, Clock]]] = field(default_factory=dict)  # batch -> each call's parts

    @property
    def evaluations(self) -> int:
        return evaluations(self.steps, self.guidance)

    @property
    def network_name(self) -> str:
        return "transformer" if self.setting.kind == "flow" else "UNet"

    def ms_per_frame(self, batch: int, part: str = "whole", clock: str = "wall") -> float:
        """Median milliseconds a frame of ``part`` (``whole``, ``network``, ``decode`` or ``rest``) at ``batch``,
        by the ``"wall"`` clock or in ``"cpu"`` time."""
        i = CLOCKS.index(clock)
        calls = self.times[batch]
        if part == "rest":
            seconds = [c["whole"][i] - c["network"][i] - c["decode"][i] for c in calls]
        else:
            seconds = [c[part][i] for c in calls]
        return 1000 * statistics.median(seconds) / batch

    def describe(self) -> str:
        acc = f"{100 * self.accuracy:.1f}%" if self.accuracy is not None else "not measured"
        return (f"{MODEL_OF[self.setting.kind]}, {self.steps} steps, guidance {self.guidance:g}: "
                f"{self.evaluations} evaluations, object accuracy {acc}")


def load(settings: Sequence[Setting], threads: int) -> tuple[list[Loaded], list[tuple[str, str]]]:
    """Load each model once and resolve every setting; a model whose weights are missing is skipped with why."""
    from helpers.backends import choose_backend
    from helpers.embeddings import encode_prompts

    backends: dict[str, Any] = {}
    loaded, skipped = [], []
    for s in settings:
        if s.kind not in backends:
            try:
                backends[s.kind] = choose_backend("teaching", s.kind, device="cpu", dtype=torch.float32)
            except Exception as exc:  # noqa: BLE001 - a missing model becomes a skipped row with its reason
                backends[s.kind] = exc
            torch.set_num_threads(threads)  # choose_backend sets its own thread count on the CPU
        b = backends[s.kind]
        if isinstance(b, Exception):
            skipped.append((s.label, f"could not load {MODEL_OF[s.kind]}: {type(b).__name__}: {b}"))
            continue
        steps = b.steps if s.steps is None else s.steps
        guidance = b.guidance_scale if s.guidance is None else s.guidance
        prompts = (b.prompts[0], b.prompts[1])
        embeds, negative = encode_prompts(b.pipe, list(prompts))
        card = flow_card() if s.kind == "flow" else {}
        loaded.append(Loaded(s, b.pipe, steps, guidance, b.render_kwargs(steps, guidance), embeds, negative[:1],
                             prompts, object_accuracy(s.kind, steps, guidance, card)))
    return loaded, skipped


class PartTimer:
    """While active, the (wall-clock, CPU) seconds spent in the pipeline's denoising network (``transformer`` or ``unet``, forward
    hooks) and in its VAE's ``decode`` (wrapped on the instance), summed over one render_frames call."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        network = getattr(pipe, "transformer", None)
        self.network = pipe.unet if network is None else network
        self.seconds: dict[str, Clock] = {"network": (0.0, 0.0), "decode": (0.0, 0.0)}
        self._started = (0.0, 0.0)

    def _add(self, part: str, start: Clock) -> None:
        took = _since(start)
        self.seconds[part] = (self.seconds[part][0] + took[0], self.seconds[part][1] + took[1])

    def __enter__(self) -> PartTimer:
        def before(*_: Any) -> None:
            self._started = _now()

        def after(*_: Any) -> None:
            self._add("network", self._started)

        self._hooks = [self.network.register_forward_pre_hook(before), self.network.register_forward_hook(after)]
        vae, decode = self.pipe.vae, self.pipe.vae.decode

        def timed_decode(*args: Any, **kwargs: Any) -> Any:
            start = _now()
            try:
                return decode(*args, **kwargs)
            finally:
                self._add("decode", start)

        vae.decode = timed_decode
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        del self.pipe.vae.decode  # the class's method again


def _walk(entry: Loaded, batch: int) -> Callable[[], dict[str, Clock]]:
    """One timed render_frames call of a ``batch``-frame walk between the setting's two captions → (wall-clock,
    CPU) seconds of the whole call, of the denoising network and of the VAE decode."""
    from helpers.interpolation import interpolation_path
    from helpers.render import render_frames

    path = interpolation_path(list(entry.embeds), batch) if batch > 1 else entry.embeds[:1]

    def call() -> dict[str, Clock]:
        with PartTimer(entry.pipe) as parts:
            start = _now()
            render_frames(entry.pipe, prompt_embeds=path, negative_prompt_embeds=entry.negative, seed=0,
                          batch_size=batch, progress=False, **entry.kwargs)
            whole = _since(start)
        return {"whole": whole, **parts.seconds}

    return call


def interleaved(calls: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, list[Any]]:
    """Call each of ``calls`` once to warm up, then all of them in turns ``repeats`` times (a busy moment of a
    shared machine slows every one of them) → per call, what each timed call returned when it was a dict (calls
    that time their own parts), else the (wall-clock, CPU) seconds it took."""
    results: dict[Any, list[Any]] = {key: [] for key in calls}
    with torch.no_grad():
        for call in calls.values():
            call()
        for _ in range(max(1, repeats)):
            for key, call in calls.items():
                start = _now()
                out = call()
                results[key].append(out if isinstance(out, dict) else _since(start))
    return results


def _direct_frame(pipe: Any, velocity: Any, x: torch.Tensor, grid: torch.Tensor) -> None:
    from helpers import flow

    latents = flow.integrate(velocity, x, grid)
    assert isinstance(latents, torch.Tensor)  # no trajectory asked for
    flow.decode_latents(pipe, latents)


def _median_ms(times: list[Clock]) -> dict[str, float]:
    return {clock: 1000 * statistics.median(t[i] for t in times) for i, clock in enumerate(CLOCKS)}


def flow_calls(entry: Loaded, variants: Sequence[tuple[int, float]]) -> dict[Any, Callable[[], Any]]:
    """The flow model at batch 1 outside the pipeline: ``one_eval`` / ``one_eval_pair`` (one transformer call
    without guidance / with the guided pair in one batch), ``decode`` (the VAE alone), ``text`` (encoding a prompt
    and the empty negative: once per new prompt, not per frame), and at each (steps, guidance) of ``variants``
    the direct path: :mod:`helpers.flow`'s transformer steps, then the VAE decode, no pipeline."""
    from helpers import flow
    from helpers.embeddings import encode_prompts, make_latents

    pipe = entry.pipe
    x = make_latents(pipe, 0)
    plain = flow.velocity_fn(pipe, entry.embeds[:1], guidance_scale=1.0)
    pair = flow.velocity_fn(pipe, entry.embeds[:1], entry.negative, guidance_scale=2.0)  # any guidance > 1
    calls: dict[Any, Callable[[], Any]] = {
        "one_eval": partial(plain, x, 0.5),
        "one_eval_pair": partial(pair, x, 0.5),
        "decode": partial(flow.decode_latents, pipe, x),
        "text": partial(encode_prompts, pipe, [entry.prompts[0]]),
    }
    for steps, guidance in variants:
        velocity = flow.velocity_fn(pipe, entry.embeds[:1], entry.negative, guidance_scale=guidance)
        calls[(steps, guidance)] = partial(_direct_frame, pipe, velocity, x, flow.sigmas(pipe, steps))
    return calls


def measure(entries: Sequence[Loaded], batches: Sequence[int], repeats: int,
            variants: Sequence[tuple[int, float]]) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Every (setting, batch) walk and, for the first flow setting, :func:`flow_calls`, all interleaved in the
    same rounds. The walks' parts go into ``entry.times``; returns the flow extras' median ms by each clock
    (``{"one_eval": {"wall": ..., "cpu": ...}, ...}``) and the direct-path rows (ms by each clock, evaluations,
    the card's accuracy)."""
    calls: dict[Any, Callable[[], Any]] = {(i, b): _walk(e, b) for i, e in enumerate(entries) for b in batches}
    flows = [e for e in entries if e.setting.kind == "flow"]
    extra = flow_calls(flows[0], variants) if flows else {}
    times = interleaved({**calls, **{("flow", k): c for k, c in extra.items()}}, repeats)
    for i, b in calls:
        entries[i].times[b] = times.pop((i, b))
    card = flow_card()
    rows = [{"steps": steps, "guidance": guidance, "evaluations": evaluations(steps, guidance),
             **_median_ms(times.pop(("flow", (steps, guidance)))),
             "accuracy": object_accuracy("flow", steps, guidance, card)}
            for steps, guidance in (variants if flows else ())]
    return {key[1]: _median_ms(t) for key, t in times.items()}, rows


# ----------------------------------------------------------------------------------------------- report


def _ms(values: dict[str, float]) -> str:
    return f"{values['cpu']:.1f} ms CPU ({values['wall']:.1f} wall-clock)"


def _pct(x: float | None) -> str:
    return "not measured" if x is None else f"{100 * x:.1f}%"


def _met(ms: float) -> str:
    return "met" if ms <= LIVE_GOAL_MS else "not met"


def render_report(entries: Sequence[Loaded], batches: Sequence[int], extras: dict[str, dict[str, float]],
                  direct: list[dict[str, Any]], skipped: list[tuple[str, str]], *, command: str, repeats: int,
                  device: str) -> str:
    """The Markdown report: command, machine, the side-by-side table, the goal, where the frames' time goes."""
    from benchmarks.bench import _versions

    lines = [
        "# Live rendering: the teaching DDPM model against the teaching flow model, per frame",
        "",
        f"- Command: `{command}` (`make bench`)",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Device: {device}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()),
        f"- Timing: `helpers.render_frames` (PIL frames, 32x32), one call of `batch` frames; each (setting, "
        f"batch) and each measurement outside the pipeline warmed up once, then all of them in turns, {repeats} "
        "times; the median call / batch, by the "
        "wall clock and in CPU time (see below).",
        "",
        "## Settings",
        "",
    ]
    lines += [f"- **{e.setting.label}**: {e.describe()}" for e in entries]
    flows = [e for e in entries if e.setting.kind == "flow"]
    ddpms = [e for e in entries if e.setting.kind == "text2img"]
    head = ["batch", "clock"] + [f"{e.setting.label} (ms / frame)" for e in entries]
    head += [f"{f.setting.label} / {d.setting.label}" for f in flows for d in ddpms]
    lines += ["", "## Milliseconds a frame", "", "| " + " | ".join(head) + " |", "|---:|---|" + "---:|" * (len(head) - 2)]
    for b in batches:
        for clock in CLOCKS:
            at = {id(e): e.ms_per_frame(b, clock=clock) for e in entries}
            cells = [str(b), clock] + [f"{at[id(e)]:.1f}" for e in entries]
            cells += [f"{at[id(f)] / at[id(d)]:.2f}" for f in flows for d in ddpms]
            lines.append("| " + " | ".join(cells) + " |")
    if flows and 1 in batches:
        f = flows[0]
        wall, cpu = f.ms_per_frame(1), f.ms_per_frame(1, clock="cpu")
        lines += ["", f"**Live goal (≤ {LIVE_GOAL_MS:g} ms a frame at batch 1, one thread): {_met(cpu)} in CPU time, "
                  f"{_met(wall)} by the wall clock** — {f.setting.label} takes {cpu:.1f} ms of CPU time "
                  f"({cpu / LIVE_GOAL_MS:.1f}x the goal), {wall:.1f} ms wall-clock."]
    lines += ["", "## Where a frame's time goes", "",
              "Inside the same timed calls: the denoising network's calls (forward hooks; the guided pair is one "
              "call of twice the batch, as diffusers runs it), the VAE decode, and the rest (render_frames' checks, "
              "the scheduler, preparing latents, turning the decoded batch into pictures). Median ms of CPU time a "
              "frame (the whole frame by the wall clock beside it):", "",
              "| setting | batch | whole, wall-clock | whole, CPU | network | network per step | VAE decode | rest |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in entries:
        for b in batches:
            net = e.ms_per_frame(b, "network", "cpu")
            lines.append(f"| {e.setting.label} | {b} | {e.ms_per_frame(b):.1f} | {e.ms_per_frame(b, clock='cpu'):.1f} | "
                         f"{e.network_name} {net:.1f} | {net / e.steps:.2f} | "
                         f"{e.ms_per_frame(b, 'decode', 'cpu'):.1f} | {e.ms_per_frame(b, 'rest', 'cpu'):.1f} |")
    if direct:
        f = flows[0]
        decode = extras["decode"]["cpu"]
        lines += ["", "## The flow model without the pipeline, batch 1", "",
                  "Each timed on its own, in turns with the walks above (medians):", "",
                  f"- one transformer evaluation: {_ms(extras['one_eval'])} without guidance, "
                  f"{_ms(extras['one_eval_pair'])} for the guided pair in one batch (what diffusers and "
                  "`helpers.flow.velocity_fn` run);",
                  f"- the VAE decode of one frame: {_ms(extras['decode'])}: {100 * decode / LIVE_GOAL_MS:.0f}% of "
                  "the goal;",
                  f"- encoding a new prompt (and the empty negative): {_ms(extras['text'])}, once per prompt, "
                  "not per frame (a walk's embeddings are made before it renders).",
                  "",
                  "Transformer steps (`helpers.flow.velocity_fn` + `integrate`) and the VAE decode "
                  f"(`helpers.flow.decode_latents`), nothing else; the card's setting is {f.steps} steps at "
                  f"guidance {f.guidance:g}:", "",
                  "| steps | guidance | evaluations | object accuracy (card) | ms / frame, CPU | wall-clock | "
                  "goal (CPU) |",
                  "|---:|---:|---:|---:|---:|---:|---|"]
        for r in direct:
            lines.append(f"| {r['steps']} | {r['guidance']:g} | {r['evaluations']} | {_pct(r['accuracy'])} | "
                         f"{r['cpu']:.1f} | {r['wall']:.1f} | {_met(r['cpu'])} |")
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- **{k}**: {why}" for k, why in skipped]
    lines += [
        "",
        "## What is measured",
        "",
        "- Milliseconds per frame: one call's seconds / its frames, median over the repeats, by two clocks: the "
        "wall clock (`time.perf_counter`) and the process's CPU time (`time.process_time`). With one torch "
        "thread the CPU time is what a frame costs one core, whether or not other work shared the machine; the "
        "wall clock adds every wait for the core (on a busy shared machine, most of the difference).",
        "- Both models run in float32 on the CPU with the same number of torch threads.",
        "- Object accuracy: the teaching judge's object accuracy on the 24 gate prompts, 8 samples a prompt, from "
        "the evaluations table of `helpers/teaching/README.md` (the flow model's from its `card.json`). Equal "
        "evaluations are not equal time: a DDPM evaluation is a UNet call, a flow evaluation a transformer call.",
        "- Flow / DDPM: the flow model's milliseconds a frame over the DDPM setting's, by the same clock (below 1: "
        "flow is faster).",
        "",
    ]
    return "\n".join(lines)


def run(
    out: str | os.PathLike,
    *,
    settings: Sequence[Setting] = SETTINGS,
    batches: Sequence[int] = (1, 16),
    repeats: int = 9,
    threads: int = 1,
    variants: Sequence[tuple[int, float]] = DIRECT_VARIANTS,
    command: str = "python -m benchmarks.flow --out benchmarks/FLOW.md",
) -> tuple[Path, list[Loaded], dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Time every setting at every batch and the flow model's direct path, write the report. Returns (path,
    entries, the flow model's batch-1 extras, direct-path rows)."""
    from benchmarks.bench import _device_line
    from helpers.media import atomic_write

    if threads > 0:
        torch.set_num_threads(threads)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    entries, skipped = load(settings, threads if threads > 0 else torch.get_num_threads())
    print("timing", ", ".join(e.setting.label for e in entries), "at batches", list(batches),
          "and the flow model without the pipeline", flush=True)
    extras, direct = measure(entries, batches, repeats, variants)
    text = render_report(entries, batches, extras, direct, skipped, command=command, repeats=repeats,
                         device=_device_line(load_avg))
    target = Path(out)
    with atomic_write(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text)
    return target, entries, extras, direct


def _batches(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batches must be positive integers separated by commas, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flow", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/FLOW.md", help="Markdown report to write")
    parser.add_argument("--batches", type=_batches, default=[1, 16], help="frames per call, e.g. 1,16")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls of each (setting, batch)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0 keeps torch's)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    command = "python -m benchmarks.flow " + " ".join(sys.argv[1:] if argv is None else argv)
    run(args.out, batches=args.batches, repeats=args.repeats, threads=args.threads, command=command.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
