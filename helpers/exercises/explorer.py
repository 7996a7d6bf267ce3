"""The experiments behind the exercises of notebook 06_interactive_explorer.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. The walks are notebook 06's prompt
walk with the noise of one seed held fixed: slerp between the embeddings of ``prompt_a`` and ``prompt_b``,
rendered with the ``backend``'s settings (``steps``: None for its default). The explorers are built and moved
from code, as a user would move them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from helpers.backends import Backend
from helpers.embeddings import encode_prompts, make_latents
from helpers.interpolation import cosine_schedule, linear_schedule, slerp
from helpers.metrics import rmse, walk_report
from helpers.render import render_frames
from helpers.teaching import scenes


def _walk(backend: Backend, seed: int, steps: int | None) -> Callable[..., list[Any]]:
    """The render function of the explorers: notebook 06's prompt walk, plus a guidance scale and a schedule."""
    size: dict[str, Any] = {"height": backend.height, "width": backend.width}

    def walk(num_frames: int, prompt_a: str, prompt_b: str, guidance: float | None = None,
             schedule: str = "linear") -> list[Any]:
        embeds, negative = encode_prompts(backend.pipe, [prompt_a, prompt_b], negative_prompt=backend.negative_prompt)
        fracs = cosine_schedule(num_frames) if schedule == "cosine" else linear_schedule(num_frames)
        return render_frames(backend.pipe, prompt_embeds=slerp(embeds[0], embeds[1], fracs),
                             negative_prompt_embeds=negative[:1], latents=make_latents(backend.pipe, seed, **size),
                             seed=seed, progress=False, **backend.render_kwargs(steps, guidance_scale=guidance))

    return walk


def _prompt_boxes(prompt_a: str, prompt_b: str) -> dict[str, Any]:
    import ipywidgets as widgets

    return {"prompt_a": widgets.Text(value=prompt_a, description="prompt A"),
            "prompt_b": widgets.Text(value=prompt_b, description="prompt B")}


def object_named(prompt: str) -> str:
    """The teaching world's object a prompt names (the longest of :data:`helpers.teaching.scenes.OBJECT_NAMES`
    in it), for the scene judge; ``ValueError`` if it names none."""
    found = [name for name in scenes.OBJECT_NAMES if re.search(rf"\b{re.escape(name)}\b", prompt.lower())]
    if not found:
        raise ValueError(f"the prompt {prompt!r} names no object of the teaching world, so the scene judge cannot "
                         f"tell whether a frame shows it: use prompts such as {scenes.caption('red heart')!r}")
    return max(found, key=len)


def _neither(readings: Sequence[str], objects: tuple[str, str]) -> list[str]:
    return [r for r in readings if r not in objects]


def guidance_walks(backend: Backend, prompt_a: str, prompt_b: str, *, seed: int, steps: int | None,
                   out_dir: str | Path, num_frames: int = 11) -> tuple[bool, str]:
    """Exercise 1: an explorer of the walk from ``prompt_a`` to ``prompt_b`` (``num_frames`` frames) with a
    guidance slider, set to 1, to the backend's guidance and to twice it; the scene judge reads every frame.

    Truth: whether more frames are read as neither prompt's object at guidance 1 than at the backend's guidance.
    """
    import ipywidgets as widgets

    from helpers.teaching.judge import scene_judge
    from helpers.widgets import WalkExplorer

    objects = (object_named(prompt_a), object_named(prompt_b))
    judge = scene_judge()
    g0 = backend.guidance_scale
    app = WalkExplorer(_walk(backend, seed, steps), {
        **_prompt_boxes(prompt_a, prompt_b),
        "guidance": widgets.FloatSlider(value=g0, min=1.0, max=2 * g0, step=0.5, description="guidance"),
    }, num_frames=num_frames, name="guided_walk", out_dir=out_dir)
    fracs = linear_schedule(num_frames)
    neither, lines = {}, []
    for g in (1.0, g0, 2 * g0):
        app.controls["guidance"].value = g
        readings = [scenes.OBJECT_NAMES[k] for k in judge.predict(app.frames())]
        neither[g] = _neither(readings, objects)
        last_a = max((float(x) for x, r in zip(fracs, readings) if r == objects[0]), default=None)
        first_b = min((float(x) for x, r in zip(fracs, readings) if r == objects[1]), default=None)
        others = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in Counter(neither[g]).items())
        lines.append(f"guidance {g:g}: {objects[0]} up to λ = " + ("–" if last_a is None else f"{last_a:.2f}")
                     + f", {objects[1]} from λ = " + ("–" if first_b is None else f"{first_b:.2f}")
                     + f", {len(neither[g])} frame(s) read as neither" + (f" ({others})" if others else ""))
    return len(neither[1.0]) > len(neither[g0]), (
        f"the judge reads the {num_frames} frames at λ = 0, {fracs[1]:.2f}, …, 1: " + "; ".join(lines))


def schedule_toggle(backend: Backend, prompt_a: str, prompt_b: str, *, num_frames: int, seed: int,
                    steps: int | None, out_dir: str | Path) -> tuple[str, str]:
    """Exercise 2: an explorer with a linear/cosine schedule toggle; moves λ from 0 to 0.2 under each schedule.

    Truth: ``"less"`` if the picture changes less (RMS) with the cosine schedule, else ``"more"``.
    """
    import ipywidgets as widgets

    from helpers.widgets import WalkExplorer

    app = WalkExplorer(_walk(backend, seed, steps), {
        **_prompt_boxes(prompt_a, prompt_b),
        "schedule": widgets.ToggleButtons(options=["linear", "cosine"], value="linear", description="schedule"),
    }, num_frames=num_frames, name="scheduled_walk", out_dir=out_dir)
    near_end = {}
    for schedule in ("linear", "cosine"):
        app.controls["schedule"].value = schedule
        shown = []
        for frac in (0.0, 0.2):
            app.frac.value = frac
            shown.append(app.current_frame())
        near_end[schedule] = rmse(*shown)
    return "less" if near_end["cosine"] < near_end["linear"] else "more", (
        f"λ 0 → 0.2 changes the picture by {near_end['cosine']:.3f} with the cosine schedule, "
        f"{near_end['linear']:.3f} with the linear one ({num_frames} frames: the slider at λ = 0.2 shows frame "
        f"{app.index}, rendered at the fraction {cosine_schedule(num_frames)[app.index]:.2f} "
        f"instead of {linear_schedule(num_frames)[app.index]:.2f})")


def seed_walks(backend: Backend, prompt_a: str, prompt_b: str, *, seed: int, steps: int | None,
               seeds: Sequence[int] = tuple(range(8)), num_frames: int = 5) -> tuple[bool, str]:
    """Exercise 3: the walk of ``num_frames`` frames from the noise of each of ``seeds``, in one batch
    (``seed`` seeds the sampler), and how evenly each moves (its CV, notebook 07).

    Truth: whether the largest CV is more than twice the smallest.
    """
    size: dict[str, Any] = {"height": backend.height, "width": backend.width}
    embeds, negative = encode_prompts(backend.pipe, [prompt_a, prompt_b], negative_prompt=backend.negative_prompt)
    path = slerp(embeds[0], embeds[1], linear_schedule(num_frames))
    frames = render_frames(  # all the walks in one batch: frame k of the i-th seed is row i * num_frames + k
        backend.pipe, prompt_embeds=path.repeat(len(seeds), 1, 1), negative_prompt_embeds=negative[:1],
        latents=make_latents(backend.pipe, list(seeds), **size).repeat_interleave(num_frames, dim=0), seed=seed,
        progress=False, **backend.render_kwargs(steps))
    cvs = {s: walk_report(frames[i * num_frames:(i + 1) * num_frames]).cv for i, s in enumerate(seeds)}
    low, high = min(cvs, key=cvs.__getitem__), max(cvs, key=cvs.__getitem__)
    return cvs[high] > 2 * cvs[low], (
        f"CV of the {num_frames}-frame walk from each seed: " + ", ".join(f"{s}: {c:.2f}" for s, c in cvs.items())
        + f"; the most even walk starts from seed {low}, the least even from seed {high}")
