"""Timelines: keyframes of prompts and seeds, each segment with its own length and easing, and exact loops.

A :class:`Timeline` is a list of :class:`Keyframe` s. Each keyframe names a prompt (with an optional negative
prompt) and a seed, and says how long the way to the next keyframe is (``frames``, or ``seconds`` at the
timeline's ``fps``) and how it is eased (a name from :data:`helpers.interpolation.EASINGS`). Between two
keyframes the prompt embeddings are slerped, every conditioning part at once (SDXL's pooled embedding travels
packed in, see :func:`helpers.embeddings.encode_prompts`), and so are the two seeds' noises, with the same
eased λ. With ``loop=True`` the last keyframe leads back into the first and the frames close exactly: the
frame after the last one would be frame 0 again, and no frame is repeated. For example::

    tl = Timeline([Keyframe("a red heart", seed=0, frames=12, easing="cosine"),
                   Keyframe("a blue heart", seed=1, frames=12)], loop=True)
    frames = render_timeline(pipe, tl, num_inference_steps=20)

The one algorithm is :func:`plan_frames`: which segment each frame lies in and at which eased λ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from helpers.checks import check_int, check_real
from helpers.interpolation import EASINGS, schedule_values

#: A timeline's frames at the most (the walk files' limit).
MAX_TIMELINE_FRAMES = 100_000


@dataclass(frozen=True)
class Keyframe:
    """One keyframe: ``prompt`` (and ``negative_prompt``), the ``seed`` of its noise, and the way to the next
    keyframe: ``frames`` (this keyframe's frame included) or ``seconds`` at the timeline's fps, eased by
    ``easing``. The last keyframe of an open timeline needs no length: it is the last frame."""

    prompt: str
    seed: int = 0
    negative_prompt: str = ""
    frames: int | None = None
    seconds: float | None = None
    easing: str = "linear"


@dataclass(frozen=True)
class Timeline:
    """Keyframes in order, the frame rate that ``seconds`` are counted in, and whether the walk loops."""

    keyframes: Sequence[Keyframe]
    fps: float = 12.0
    loop: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyframes", tuple(self.keyframes))  # a list given is kept as a tuple


@dataclass(frozen=True)
class FramePlan:
    """Where every frame of a timeline lies: ``segment[i]`` is the keyframe it leaves from, ``frac[i]`` the
    eased λ towards the next one (0 on the keyframe itself, 1 only on an open timeline's last frame)."""

    segment: np.ndarray
    frac: np.ndarray

    def __len__(self) -> int:
        return len(self.segment)


def _segment_frames(k: Keyframe, fps: float, where: str) -> int:
    if (k.frames is None) == (k.seconds is None):
        raise ValueError(f"{where}: give its length to the next keyframe as frames= or as seconds=, "
                         f"exactly one of them (got frames={k.frames!r}, seconds={k.seconds!r})")
    if k.frames is not None:
        return check_int(f"{where} frames", k.frames, low=1, high=MAX_TIMELINE_FRAMES,
                         hint="the frames from this keyframe to the next, this one included")
    seconds = check_real(f"{where} seconds", k.seconds, low=0.0, high=MAX_TIMELINE_FRAMES / fps)
    frames = round(seconds * fps)
    if frames < 1:
        raise ValueError(f"{where}: {seconds} s at {fps:g} fps is less than one frame; give a longer segment")
    return frames


def check_timeline(timeline: Timeline) -> list[int]:
    """One clear error for a timeline that cannot be rendered; the frames of each segment otherwise."""
    if not isinstance(timeline, Timeline):
        raise TypeError(f"expected a helpers.timeline.Timeline, got {type(timeline).__name__}")
    keys = timeline.keyframes
    if len(keys) < 2:
        raise ValueError(f"a timeline needs at least two keyframes, got {len(keys)}")
    fps = check_real("fps", timeline.fps, low=0.5, high=120.0)
    for i, k in enumerate(keys):
        if not isinstance(k, Keyframe):
            raise TypeError(f"keyframe {i} is a {type(k).__name__}, not a helpers.timeline.Keyframe")
        if not isinstance(k.prompt, str) or not k.prompt.strip():
            raise ValueError(f"keyframe {i} has no prompt; give it the text to draw")
        check_int(f"keyframe {i} seed", k.seed, low=0, high=2**64 - 1)
        if k.easing not in EASINGS:
            raise ValueError(f"keyframe {i}: unknown easing {k.easing!r}; use one of {', '.join(EASINGS)}")
    segments = len(keys) if timeline.loop else len(keys) - 1
    frames = [_segment_frames(keys[i], fps, f"keyframe {i}") for i in range(segments)]
    total = sum(frames) + (0 if timeline.loop else 1)
    if total > MAX_TIMELINE_FRAMES:
        raise ValueError(f"the timeline has {total} frames; at most {MAX_TIMELINE_FRAMES} are rendered")
    return frames


def plan_frames(timeline: Timeline) -> FramePlan:
    """The frames of a timeline, segment by segment.

    A segment of n frames leaves its keyframe at u = 0, 1/n, …, (n-1)/n and stops short of the next keyframe,
    which begins the next segment, so no keyframe is drawn twice; each u is eased by the segment's curve. An
    open timeline ends with one frame on its last keyframe (λ = 1 of the last segment). A loop's last segment
    leads into keyframe 0 and stops short of it: frame 0 follows the last frame as every frame follows the one
    before it.
    """
    frames = check_timeline(timeline)
    segment, frac = [], []
    for i, n in enumerate(frames):
        segment.append(np.full(n, i))
        frac.append(schedule_values(timeline.keyframes[i].easing, n, endpoint=False).astype(np.float64))
    if not timeline.loop:
        segment.append(np.array([len(frames) - 1]))
        frac.append(np.array([1.0]))
    return FramePlan(np.concatenate(segment), np.concatenate(frac))


def _slerp_rows(table: torch.Tensor, plan: FramePlan, n_keys: int) -> torch.Tensor:
    """Row i: slerp from the plan's keyframe to the next one (keyframe 0 after the last), at the plan's λ."""
    from helpers.interpolation import slerp

    rows = []
    for seg, lam in zip(plan.segment.tolist(), plan.frac.tolist()):
        a, b = table[seg], table[(seg + 1) % n_keys]
        rows.append(a if lam == 0.0 else b if lam == 1.0 else slerp(a, b, float(lam)))
    return torch.stack(rows)


def timeline_inputs(pipe: Any, timeline: Timeline) -> dict[str, torch.Tensor]:
    """The per-frame ``prompt_embeds``, ``negative_prompt_embeds`` and ``latents`` of a timeline, ready for
    :func:`helpers.render.render_frames`."""
    from helpers.embeddings import encode_prompts, make_latents

    plan = plan_frames(timeline)
    keys = timeline.keyframes
    embeds, negatives = encode_prompts(pipe, [k.prompt for k in keys],
                                       negative_prompt=[k.negative_prompt for k in keys])
    noises = make_latents(pipe, [k.seed for k in keys])
    n = len(keys)
    return {"prompt_embeds": _slerp_rows(embeds, plan, n), "negative_prompt_embeds": _slerp_rows(negatives, plan, n),
            "latents": _slerp_rows(noises, plan, n)}


def render_timeline(pipe: Any, timeline: Timeline, *, progress: bool = True, output_type: str = "pil",
                    **pipe_kwargs: Any) -> Any:
    """Render every frame of ``timeline`` (see :func:`plan_frames`) with :func:`helpers.render.render_frames`;
    other keyword arguments go to the pipeline (``num_inference_steps``, ``guidance_scale``, …)."""
    from helpers.render import render_frames

    inputs = timeline_inputs(pipe, timeline)
    return render_frames(pipe, prompt_embeds=inputs["prompt_embeds"],
                         negative_prompt_embeds=inputs["negative_prompt_embeds"], latents=inputs["latents"], seed=0,
                         progress=progress, output_type=output_type, **pipe_kwargs)


def duration_seconds(timeline: Timeline) -> float:
    """How long the timeline plays at its fps."""
    return len(plan_frames(timeline)) / float(timeline.fps)


def keyframe_times(timeline: Timeline) -> list[float]:
    """When each keyframe is on screen, in seconds from the start (at the timeline's fps)."""
    frames = check_timeline(timeline)
    starts = np.concatenate([[0], np.cumsum(frames)])[: len(timeline.keyframes)]
    return [float(s) / timeline.fps for s in starts]


__all__ = ["Keyframe", "Timeline", "FramePlan", "check_timeline", "plan_frames", "timeline_inputs",
           "render_timeline", "duration_seconds", "keyframe_times", "MAX_TIMELINE_FRAMES"]
