"""Timelines: keyframes of prompts, seeds and pictures, each segment with its own length and easing, exact
loops, and walks timed to music.

Introduced in notebook 09_timelines_and_music. A :class:`Timeline` is a list of :class:`Keyframe` s. Each
keyframe names a prompt (with an optional negative prompt) and a seed, or a picture, and says how long the way
to the next keyframe is (``frames``, or ``seconds`` at the timeline's ``fps``) and how it is eased (a name from
:data:`helpers.interpolation.EASINGS`, or ``retime=True`` for even steps). Between two keyframes the prompt
embeddings are slerped, every conditioning part at once (SDXL's pooled embedding travels packed in, see
:func:`helpers.embeddings.encode_prompts`), and so are the two noises, with the same eased λ; a picture's noise
is its DDIM inversion. With ``loop=True`` the last keyframe leads back into the first and the frames close
exactly: the frame after the last one would be frame 0 again, and no frame is repeated. With ``audio`` (the
:func:`helpers.audio.onset_envelope` of a song) the music sets the length and λ follows its beats. For example::

    tl = Timeline([Keyframe("a red heart", seed=0, frames=12, easing="cosine"),
                   Keyframe(image="scene:green apple", frames=12)], loop=True)
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
from helpers.interpolation import EASINGS, ease, schedule_values

#: A timeline's frames at the most (the walk files' limit).
MAX_TIMELINE_FRAMES = 100_000
#: An image keyframe written ``scene:NAME`` is an example scene of the teaching world (as in walk files).
SCENE_PREFIX = "scene:"
#: The DDIM steps image keyframes are inverted with where no render steps are given (:func:`keyframe_inputs`).
_KEYFRAME_STEPS = 20


@dataclass(frozen=True)
class Keyframe:
    """One keyframe: a ``prompt`` (and ``negative_prompt``) with the ``seed`` of its noise, or an ``image`` (a
    file path, a PIL image, or ``"scene:red apple"`` for an example scene of the teaching world), which enters
    through inversion (``prompt`` is then its caption, empty by default). Then the way to the next keyframe:
    ``frames`` (this keyframe's frame included) or ``seconds`` at the timeline's fps, eased by ``easing``, or
    re-timed to even steps (``retime=True``, :func:`helpers.retime`). On a timeline with audio the music sets the
    lengths instead, and ``at`` may pin the keyframe to a time in seconds. The last keyframe of an open
    timeline needs no length: it is the last frame. Introduced in notebook 09_timelines_and_music."""

    prompt: str = ""
    seed: int = 0
    negative_prompt: str = ""
    frames: int | None = None
    seconds: float | None = None
    easing: str = "linear"
    image: Any = None
    at: float | None = None
    retime: bool = False


@dataclass(frozen=True)
class Timeline:
    """Keyframes in order, the frame rate that ``seconds`` are counted in, whether the walk loops, and
    optionally the music it is timed to (``audio``, :func:`helpers.audio.onset_envelope`) with ``smooth``, the
    weight of even spacing blended into the music's schedule (0: frames move only on the beats; 1: evenly).
    Introduced in notebook 09_timelines_and_music."""

    keyframes: Sequence[Keyframe]
    fps: float = 12.0
    loop: bool = False
    audio: Any = None
    smooth: float = 0.0

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


def _check_keyframe(i: int, k: Any) -> None:
    if not isinstance(k, Keyframe):
        raise TypeError(f"keyframe {i} is a {type(k).__name__}, not a helpers.timeline.Keyframe")
    if not isinstance(k.prompt, str) or not isinstance(k.negative_prompt, str):
        raise TypeError(f"keyframe {i}: prompt and negative_prompt must be strings")
    if k.image is None and not k.prompt.strip():
        raise ValueError(f"keyframe {i} has neither a prompt nor an image; give it the text to draw, or an image")
    if isinstance(k.image, str) and not k.image.strip():
        raise ValueError(f"keyframe {i}: image is empty; give a file path or \"scene:NAME\"")
    check_int(f"keyframe {i} seed", k.seed, low=0, high=2**64 - 1)
    if k.easing not in EASINGS:
        raise ValueError(f"keyframe {i}: unknown easing {k.easing!r}; use one of {', '.join(EASINGS)}")
    if not isinstance(k.retime, bool):
        raise TypeError(f"keyframe {i}: retime must be True or False, got {k.retime!r}")


def _audio_frames(timeline: Timeline) -> list[int]:
    """Frames per segment when the music sets the lengths: every keyframe starts at its pinned time
    (``at``), the others spread evenly between their pinned neighbours; keyframe 0 is at 0 s and an open
    timeline's last keyframe is the music's last frame."""
    audio, keys = timeline.audio, timeline.keyframes
    n = len(audio.onset)
    duration = n / timeline.fps
    starts: list[float | None] = []
    for i, k in enumerate(keys):
        if k.frames is not None or k.seconds is not None:
            raise ValueError(f"keyframe {i}: with audio the music sets the segments' lengths; leave out frames= "
                             "and seconds=, and pin the keyframe to a time with at= instead")
        if k.retime:
            raise ValueError(f"keyframe {i}: retime=True evens the steps out, which would undo the music's timing; "
                             "use one or the other")
        if k.at is None:
            starts.append(None)
            continue
        at = check_real(f"keyframe {i} at", k.at, low=0.0, high=duration)
        starts.append(at * timeline.fps)
    end = float(n if timeline.loop else n - 1)
    if starts[0] not in (None, 0.0):
        raise ValueError(f"keyframe 0 is pinned at {keys[0].at} s; the timeline starts on keyframe 0, at 0 s")
    starts[0] = 0.0
    if not timeline.loop:
        if starts[-1] is not None and round(starts[-1]) != round(end):
            raise ValueError(f"the last keyframe of an open timeline is its last frame ({end / timeline.fps:.3f} s, "
                             f"where the music ends); it is pinned at {keys[-1].at} s. Leave its at= out")
        starts[-1] = end
    points = starts + ([end] if timeline.loop else [])
    fixed = [i for i, v in enumerate(points) if v is not None]
    for a, b in zip(fixed, fixed[1:]):  # even spacing between pinned neighbours
        for j in range(a + 1, b):
            points[j] = points[a] + (points[b] - points[a]) * (j - a) / (b - a)  # type: ignore[operator]
    frame = [round(v) for v in points]  # type: ignore[arg-type]
    lengths = np.diff(frame).tolist()
    if min(lengths) < 1:
        bad = int(np.argmin(lengths))
        raise ValueError(f"keyframes {bad} and {(bad + 1) % len(keys)} fall on the same frame of the music "
                         f"(at {timeline.fps:g} fps): pin them further apart, or use fewer keyframes")
    return [int(v) for v in lengths]


def check_timeline(timeline: Timeline) -> list[int]:
    """One clear error for a timeline that cannot be rendered; the frames of each segment otherwise."""
    if not isinstance(timeline, Timeline):
        raise TypeError(f"expected a helpers.timeline.Timeline, got {type(timeline).__name__}")
    keys = timeline.keyframes
    if len(keys) < 2:
        raise ValueError(f"a timeline needs at least two keyframes, got {len(keys)}")
    fps = check_real("fps", timeline.fps, low=0.5, high=120.0)
    for i, k in enumerate(keys):
        _check_keyframe(i, k)
    if timeline.audio is not None:
        from helpers.audio import OnsetEnvelope

        if not isinstance(timeline.audio, OnsetEnvelope):
            raise TypeError("audio must be the helpers.audio.onset_envelope(path, fps) of the music, got "
                            f"{type(timeline.audio).__name__}")
        if abs(timeline.audio.fps - fps) > 1e-9:
            raise ValueError(f"the audio's onset envelope was made at {timeline.audio.fps:g} fps but the timeline "
                             f"plays at {fps:g}; make it with onset_envelope(path, fps={fps:g})")
        check_real("smooth", timeline.smooth, low=0.0, high=1.0)
        return _audio_frames(timeline)
    for i, k in enumerate(keys):
        if k.at is not None:
            raise ValueError(f"keyframe {i}: at= pins a keyframe to a time in the music; give the timeline audio=, "
                             "or set its length with frames= or seconds=")
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
    before it. With audio, u is instead the share of the segment's onset strength heard so far (see
    :func:`helpers.audio.onset_fractions`), blended with even spacing by the timeline's ``smooth``.
    Introduced in notebook 09_timelines_and_music.
    """
    frames = check_timeline(timeline)
    segment, frac = [], []
    start = 0
    for i, n in enumerate(frames):
        segment.append(np.full(n, i))
        if timeline.audio is None:
            u = schedule_values("linear", n, endpoint=False).astype(np.float64)
        else:
            from helpers.audio import onset_fractions

            u = onset_fractions(timeline.audio.onset, start, n, smooth=float(timeline.smooth))
        frac.append(ease(timeline.keyframes[i].easing, u))
        start += n
    if not timeline.loop:
        segment.append(np.array([len(frames) - 1]))
        frac.append(np.array([1.0]))
    return FramePlan(np.concatenate(segment), np.concatenate(frac))


def _slerp_rows(table: torch.Tensor, segment: np.ndarray, frac: np.ndarray) -> torch.Tensor:
    """Row i: slerp from keyframe ``segment[i]`` to the next one (keyframe 0 after the last) at λ ``frac[i]``."""
    from helpers.interpolation import slerp

    rows, n_keys = [], len(table)
    for seg, lam in zip(segment.tolist(), frac.tolist()):
        a, b = table[seg], table[(seg + 1) % n_keys]
        rows.append(a if lam == 0.0 else b if lam == 1.0 else slerp(a, b, float(lam)))
    return torch.stack(rows)


@dataclass(frozen=True)
class KeyframeInputs:
    """What every keyframe contributes, one row each: the conditioning (``prompt_embeds`` and
    ``negative_prompt_embeds`` for text-to-image pipelines, ``image_embeddings`` for unCLIP), the initial
    noise ``latents`` (an image keyframe's inverted latents, else its seed's noise) and, for unCLIP,
    ``super_res_latents``. :meth:`frames` slerps them along a plan."""

    tables: dict[str, torch.Tensor]

    def frames(self, segment: np.ndarray, frac: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: _slerp_rows(table, np.asarray(segment), np.asarray(frac)) for name, table in self.tables.items()}


def _keyframe_image(item: Any, side: int) -> Any:
    """A keyframe's image as RGB PIL at ``side`` x ``side`` (centre-cropped, :func:`helpers.morph.prepare_images`):
    a file, a PIL image, or an example scene of the teaching world."""
    from helpers.morph import prepare_images

    if isinstance(item, str) and item.startswith(SCENE_PREFIX):
        from helpers.media import to_pil
        from helpers.teaching import scenes

        name = " ".join(item.removeprefix(SCENE_PREFIX).split())
        if name not in scenes.OBJECT_NAMES:
            raise ValueError(f"{item!r} names no object of the teaching world; use \"scene:NAME\" with NAME one of "
                             f"{', '.join(scenes.OBJECT_NAMES)}")
        item = to_pil(scenes.example_scenes([scenes.object_index(name)]).images[0])
    return prepare_images([item], side)[0]


def keyframe_inputs(pipe: Any, timeline: Timeline, *, num_inference_steps: int = _KEYFRAME_STEPS,
                    super_res_num_inference_steps: int = 7) -> KeyframeInputs:
    """Encode every keyframe once (:class:`KeyframeInputs`). Image keyframes are inverted with
    ``num_inference_steps`` DDIM steps, which the render must use too: for a Stable Diffusion-class pipeline
    :func:`helpers.morph.invert_images` (captioned by the keyframe's prompt; an empty caption, the default,
    rebuilds the image at any guidance because the prompt and the negative prompt are then the same), for
    unCLIP :func:`helpers.unclip.invert` (its CLIP image embedding and inverted decoder latents; they rebuild
    the image at decoder guidance 1; ``super_res_num_inference_steps`` is its second stage's).
    Introduced in notebook 09_timelines_and_music."""
    from helpers.pipeline_info import native_size, render_kind

    check_timeline(timeline)
    keys = timeline.keyframes
    kind = render_kind(pipe)
    images = {i: k.image for i, k in enumerate(keys) if k.image is not None}
    side = native_size(pipe)[0]
    loaded = {i: _keyframe_image(item, side) for i, item in images.items()}
    if kind == "unclip":
        return _unclip_inputs(pipe, keys, loaded, num_inference_steps, super_res_num_inference_steps)
    from helpers.embeddings import encode_prompts, make_latents

    embeds, negatives = encode_prompts(pipe, [k.prompt for k in keys], negative_prompt=[k.negative_prompt for k in keys])
    noises = make_latents(pipe, [k.seed for k in keys], dtype=torch.float32)
    if loaded:
        if getattr(pipe, "text_encoder_2", None) is not None:
            raise ValueError("image keyframes enter a text-to-image timeline through DDIM inversion, which this "
                             "project does for Stable Diffusion 1.x/2.x-class pipelines; SDXL timelines take "
                             "prompt keyframes only")
        from helpers.morph import invert_images

        order = sorted(loaded)
        inv = invert_images(pipe, [loaded[i] for i in order], [keys[i].prompt for i in order],
                            num_inference_steps=num_inference_steps)
        for row, i in enumerate(order):
            noises[i] = inv.latents[row]
    return KeyframeInputs({"prompt_embeds": embeds.float(), "negative_prompt_embeds": negatives.float(),
                           "latents": noises.float()})


def _unclip_inputs(pipe: Any, keys: Sequence[Keyframe], loaded: dict[int, Any], steps: int,
                   super_res_steps: int) -> KeyframeInputs:
    from helpers.unclip import invert

    prompts = [i for i, k in enumerate(keys) if k.image is None]
    if prompts:
        raise ValueError(f"keyframe {prompts[0]} has a prompt but no image: an unCLIP image-variation pipeline "
                         "walks between images (each keyframe an image: a file or \"scene:NAME\")")
    inv = invert(pipe, [loaded[i] for i in range(len(keys))], num_inference_steps=steps,
                 super_res_num_inference_steps=super_res_steps)
    return KeyframeInputs({"image_embeddings": inv.image_embeddings.float(), "latents": inv.decoder_latents.float(),
                           "super_res_latents": inv.super_res_latents.float()})


def timeline_inputs(pipe: Any, timeline: Timeline, *, plan: FramePlan | None = None,
                    **pipe_kwargs: Any) -> dict[str, torch.Tensor]:
    """The per-frame inputs of a timeline (``prompt_embeds``, ``negative_prompt_embeds`` and ``latents``; for
    unCLIP ``image_embeddings``, ``latents`` and ``super_res_latents``), ready for
    :func:`helpers.render.render_frames` or :func:`helpers.walks.render_walk`. ``plan`` defaults to
    :func:`plan_frames`. Image keyframes are inverted with the steps of the render's pipeline keyword arguments
    ``pipe_kwargs``, read as :func:`render_timeline` reads them (:func:`inversion_steps`: ``num_inference_steps``,
    unCLIP's ``decoder_num_inference_steps`` and ``super_res_num_inference_steps``; the pipeline's other arguments
    are accepted and play no part here, a keyword the pipeline does not take is refused),
    20 (unCLIP's super-resolution: 7) where none is given; on unCLIP ``num_inference_steps`` also names the
    decoder's."""
    import inspect

    from helpers.checks import check_kwargs

    params = inspect.signature(pipe).parameters  # a typo would be silently ignored: refuse what the pipeline lacks
    check_kwargs("timeline_inputs", pipe_kwargs, [k for k, v in params.items() if v.kind is v.KEYWORD_ONLY or
                                                  v.kind is v.POSITIONAL_OR_KEYWORD])
    plan = plan_frames(timeline) if plan is None else plan
    steps = pipe_kwargs.get("num_inference_steps", _KEYFRAME_STEPS)
    read = inversion_steps(pipe, {"num_inference_steps": steps, "decoder_num_inference_steps": steps, **pipe_kwargs})
    return keyframe_inputs(pipe, timeline, **read).frames(plan.segment, plan.frac)


def timeline_pipe(pipe: Any, timeline: Timeline) -> Any:
    """The pipeline to render ``timeline`` with: ``pipe`` itself, or, when an image keyframe was inverted, the
    same weights with the DDIM sampler that the inversion ran backwards (deterministic, eta 0)."""
    from helpers.pipeline_info import render_kind

    if not any(k.image is not None for k in timeline.keyframes):
        return pipe
    if render_kind(pipe) == "unclip":
        from helpers.unclip import with_ddim

        return with_ddim(pipe)
    from diffusers import DDIMScheduler

    if isinstance(pipe.scheduler, DDIMScheduler):
        return pipe
    return type(pipe)(**{**pipe.components, "scheduler": DDIMScheduler.from_config(pipe.scheduler.config)})


def inversion_steps(pipe: Any, pipe_kwargs: dict[str, Any]) -> dict[str, int]:
    """The inversion steps of :func:`keyframe_inputs` that match a render with ``pipe_kwargs``."""
    from helpers.pipeline_info import render_kind

    if render_kind(pipe) == "unclip":
        return {"num_inference_steps": int(pipe_kwargs.get("decoder_num_inference_steps", 25)),
                "super_res_num_inference_steps": int(pipe_kwargs.get("super_res_num_inference_steps", 7))}
    return {"num_inference_steps": int(pipe_kwargs.get("num_inference_steps", 50))}


def retimed_plan(pipe: Any, timeline: Timeline, inputs: KeyframeInputs | None = None, *, metric: str = "rmse",
                 **pipe_kwargs: Any) -> FramePlan:
    """:func:`plan_frames`, with the λ of every segment whose keyframe says ``retime=True`` chosen by
    :func:`helpers.retime` so that its frames are equally far apart (``metric``, notebook 07's).
    Introduced in notebook 09_timelines_and_music."""
    from helpers.render import render_frames
    from helpers.smooth import retime

    plan = plan_frames(timeline)
    if not any(k.retime for k in timeline.keyframes):
        return plan
    inputs = inputs or keyframe_inputs(pipe, timeline, **inversion_steps(pipe, pipe_kwargs))
    sampler = timeline_pipe(pipe, timeline)
    frac = plan.frac.copy()
    for i, k in enumerate(timeline.keyframes):
        rows = np.flatnonzero((plan.segment == i) & (plan.frac < 1.0))
        if not k.retime or len(rows) < 2:
            continue

        def render(ts: np.ndarray, seg: int = i) -> Any:
            per_frame: dict[str, Any] = inputs.frames(np.full(len(ts), seg), np.asarray(ts, dtype=np.float64))
            return render_frames(sampler, seed=0, progress=False, output_type="np", **per_frame, **pipe_kwargs)

        # The segment and the next keyframe, evened out; the next keyframe begins the next segment.
        result = retime(render, len(rows) + 1, metric=metric, name=f"segment {i}")
        frac[rows] = ease(k.easing, result.ts[:-1])
    return FramePlan(plan.segment, frac)


def render_timeline(pipe: Any, timeline: Timeline, *, progress: bool = True, output_type: str = "pil",
                    **pipe_kwargs: Any) -> Any:
    """Render every frame of ``timeline`` (see :func:`plan_frames`, :func:`retimed_plan`) with
    :func:`helpers.render.render_frames`; other keyword arguments go to the pipeline (``num_inference_steps``,
    ``guidance_scale``, …). Image keyframes are inverted with the same steps and rendered with DDIM.
    Introduced in notebook 09_timelines_and_music."""
    from helpers.render import render_frames

    inputs = keyframe_inputs(pipe, timeline, **inversion_steps(pipe, pipe_kwargs))
    plan = retimed_plan(pipe, timeline, inputs, **pipe_kwargs)
    per_frame: dict[str, Any] = inputs.frames(plan.segment, plan.frac)
    return render_frames(timeline_pipe(pipe, timeline), seed=0, progress=progress, output_type=output_type,
                         **per_frame, **pipe_kwargs)


def duration_seconds(timeline: Timeline) -> float:
    """How long the timeline plays at its fps."""
    return len(plan_frames(timeline)) / float(timeline.fps)


def keyframe_times(timeline: Timeline) -> list[float]:
    """When each keyframe is on screen, in seconds from the start (at the timeline's fps)."""
    frames = check_timeline(timeline)
    starts = np.concatenate([[0], np.cumsum(frames)])[: len(timeline.keyframes)]
    return [float(s) / timeline.fps for s in starts]


__all__ = ["Keyframe", "Timeline", "FramePlan", "KeyframeInputs", "check_timeline", "plan_frames", "keyframe_inputs",
           "timeline_inputs", "timeline_pipe", "retimed_plan", "render_timeline", "duration_seconds",
           "keyframe_times", "inversion_steps", "MAX_TIMELINE_FRAMES", "SCENE_PREFIX"]
