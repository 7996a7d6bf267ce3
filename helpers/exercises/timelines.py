"""The experiments behind the exercises of notebook 09_timelines_and_music.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. Nothing is rendered: both read the
frames a looping timeline plans (:func:`helpers.timeline.plan_frames`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from helpers.audio import OnsetEnvelope, onset_envelope
from helpers.timeline import Keyframe, Timeline, plan_frames


def _planned_steps(timeline: Timeline) -> np.ndarray:
    """The step in λ from each planned frame into the next (to the segment's end at a keyframe)."""
    plan = plan_frames(timeline)
    nxt = np.append(plan.frac[1:], 1.0)
    return np.where(plan.segment == np.roll(plan.segment, -1), nxt - plan.frac, 1.0 - plan.frac)


def full_smoothing(keyframes: Sequence[Keyframe], envelope: OnsetEnvelope, fps: float) -> tuple[str, str]:
    """Exercise 1: the looping timeline of ``keyframes`` timed to ``envelope`` with ``smooth=1.0``.

    Truth: ``"positive"`` if its planned λ steps correlate with the onsets of the frames they lead into above
    0.3, else ``"zero"``.
    """
    even = Timeline(keyframes, fps=fps, loop=True, audio=envelope, smooth=1.0)
    r_even = float(np.corrcoef(_planned_steps(even), np.roll(envelope.onset, -1))[0, 1])
    return "positive" if r_even > 0.3 else "zero", (
        f"with smooth = 1 every planned step of a segment is the same size, so the correlation with the onsets is "
        f"{r_even:.2f}: the music no longer times anything")


def _moving_share(keyframes: Sequence[Keyframe], song: str | os.PathLike, fps: float) -> float:
    timeline = Timeline(keyframes, fps=fps, loop=True, audio=onset_envelope(song, fps), smooth=0.1)
    steps = _planned_steps(timeline)
    return float((steps > 2 * np.median(steps)).mean())


def double_fps(keyframes: Sequence[Keyframe], song: str | os.PathLike, fps: float) -> tuple[str, str]:
    """Exercise 2: the looping timeline of ``keyframes`` timed to the music file ``song`` (``smooth=0.1``) at
    ``fps`` and at twice it; a frame "moves" when its planned λ step is more than twice the median step.

    Truth: ``"up"`` if the share of moving frames is larger at twice the rate, else ``"down"``.
    """
    shares = {rate: _moving_share(keyframes, song, rate) for rate in (fps, 2 * fps)}
    return "up" if shares[2 * fps] > shares[fps] else "down", (
        f"{shares[fps]:.0%} of the frames jump at {fps:g} fps, {shares[2 * fps]:.0%} at {2 * fps:g} fps: the beats "
        "are as many as before, the frames twice as many, so a smaller share of them carries a beat")
