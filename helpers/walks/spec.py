"""Walk files: a whole walk described in YAML, rendered by ``python -m helpers.walks WALK.yaml``.

Introduced in notebook 04_prompt_walks. A walk file names a model, the keypoints (prompts, or images for
unCLIP), the noise seeds and how to render; the command renders the frames resumably into a folder
(:func:`helpers.walks.render_walk`) and writes a GIF, an MP4 and a contact sheet::

    model: tiny-sd            # teaching | teaching-unclip | sd15 | sdxl | sd35-medium | flux-dev | karlo | tiny-sd ...
    prompts: [a photo of a red house, a watercolor painting of a blue boat]
    seeds: 0                  # one seed: the same noise for every frame; a list: a walk through noises too
    frames: 24
    steps: 3
    guidance: 3.0
    method: slerp             # or lerp
    closed: false             # true: loop back to the first keypoint
    formats: [gif, mp4, contact_sheet]
    fps: 12

``negative_prompt:`` on FLUX.1 (guidance-distilled: its ``guidance`` is an input of the transformer, with no
negative branch) turns on true classifier-free guidance, ``true_cfg_scale`` =
:data:`helpers.pipeline_info.FLUX_TRUE_CFG` (:func:`helpers.pipeline_info.negative_guidance`), at twice the
cost per frame; without it the walk never evaluates the negative prompt.

``images:`` (unCLIP models) lists image files relative to the walk file, or ``scene:red apple`` for an
example scene of the teaching world (a big object on white, :meth:`helpers.backends.Backend.example_images`;
any object of :data:`helpers.teaching.scenes.OBJECT_NAMES`). Run it again after an interruption and it continues
where it stopped. Under
``accelerate launch --num_processes 2 -m helpers.walks WALK.yaml`` (one process per GPU) the chunks of
frames are split between the processes (``PartialState.split_between_processes``), each writes its frames
into the shared folder, and the main process writes the videos. Without a GPU, accelerate starts several
processes only with ``--multi_gpu`` (despite the name; they then form a CPU "gloo" group)::

    accelerate launch --multi_gpu --num_processes 2 -m helpers.walks walk.yaml
"""

from __future__ import annotations

import argparse
import difflib
import math
import numbers
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.checks import MAX_GUIDANCE, MAX_SIDE, MAX_STEPS, check_int, check_side
from helpers.models import MODELS as _REGISTRY
from helpers.models import RETIRED as RETIRED_MODELS

#: The models a walk file may name (the walkable entries of :mod:`helpers.models`) and the (backend, kind) of
#: :func:`helpers.backends.choose_backend` they load.
MODELS = {m.name: (m.backend, m.kind) for m in _REGISTRY.values() if m.walkable}
#: ``images:`` entries with this prefix name an example scene instead of a file (``scene:red apple``).
SCENE_PREFIX = "scene:"
#: ``images:`` prefix of the retired digit world (``digit:3``): refused with the name of its successor.
RETIRED_PREFIX = "digit:"
FORMATS = ("gif", "mp4", "png", "contact_sheet")
#: Bounds of the values a walk file may ask for (beyond them a render would mislead or exhaust the machine).
LIMITS: dict[str, Any] = {"frames": 100_000, "steps": MAX_STEPS, "size": MAX_SIDE, "fps": (0.5, 120.0),
                          "guidance": MAX_GUIDANCE}
#: A walk file is a few lines: bigger ones, or YAML that expands (aliases) past these bounds, are refused.
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 8
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: ``images:`` entries that are URLs (``https://…``): refused, with what to do instead.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KEYS = (
    "model", "prompts", "negative_prompt", "images", "seeds", "frames", "steps", "size", "guidance", "method",
    "closed", "schedule", "formats", "fps", "batch_size", "out", "device", "dtype", "compile", "channels_last",
    "keyframes", "loop", "audio", "smooth",
)  # fmt: skip
#: The keys of one entry of ``keyframes:`` (the fields of :class:`helpers.timeline.Keyframe`).
KEYFRAME_KEYS = ("prompt", "image", "negative_prompt", "seed", "frames", "seconds", "easing", "at", "retime")
#: Keys that describe a plain walk: a timeline (``keyframes:``) says the same per keyframe instead.
_PLAIN_ONLY = {"prompts": "a prompt: per keyframe", "images": "an image: per keyframe",
               "seeds": "a seed: per keyframe", "frames": "frames: (or seconds:) per keyframe",
               "closed": "loop: true", "schedule": "an easing: per keyframe", "method": "nothing (timelines slerp)",
               "negative_prompt": "a negative_prompt: per keyframe"}
#: Keys of timelines only.
_TIMELINE_ONLY = ("loop", "audio", "smooth")


class WalkSpecError(ValueError):
    """A walk file that cannot be rendered; the message says which key is wrong and what to write."""


@dataclass
class WalkSpec:
    """A parsed, validated walk file (see the module docstring for the keys).

    Introduced in notebook 04_prompt_walks.
    """

    model: str
    frames: int
    model_path: Path | None = None  # where ``model:`` names a folder or file: resolved against the walk file
    prompts: list[str] = field(default_factory=list)
    negative_prompt: str = ""
    images: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int | None = None
    size: tuple[int, int] | None = None
    guidance: float | None = None
    method: str = "slerp"
    closed: bool = False
    schedule: str = "linear"
    formats: list[str] = field(default_factory=lambda: ["gif", "mp4", "contact_sheet"])
    fps: float = 12
    batch_size: int | None = None
    out: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    channels_last: bool = False
    source: str = "walk file"
    keyframes: list[Any] = field(default_factory=list)  # helpers.timeline.Keyframe: a timeline walk
    loop: bool = False
    audio: Path | None = None
    smooth: float = 0.0

    @property
    def kind(self) -> str:
        return MODELS[self.model][1] if self.model in MODELS else "text2img"

    @property
    def keypoints(self) -> int:
        if self.keyframes:
            return len(self.keyframes)
        return len(self.images) if self.kind == "unclip" else len(self.prompts)

    def timeline(self, audio: Any = None) -> Any:
        """The :class:`helpers.timeline.Timeline` of a ``keyframes:`` walk (``audio``: its onset envelope)."""
        from helpers.timeline import Timeline

        return Timeline(self.keyframes, fps=self.fps, loop=self.loop, audio=audio, smooth=self.smooth)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _text_number_hint(value: Any) -> str:
    """For a number YAML read as text (``1e3``: PyYAML wants a dot and a signed exponent), what to write."""
    if not isinstance(value, str) or "e" not in value.lower():
        return ""
    try:
        x = float(value)
    except ValueError:
        return ""
    if not math.isfinite(x):
        return ""
    instead = str(int(x)) if x.is_integer() else repr(x) if "e" not in repr(x) else f"{x:e}"
    return f"; YAML reads {value} as text, not a number: write {instead}"


def _int(data: dict, key: str, where: str, minimum: int, maximum: int | None = None) -> int:
    value = data[key]
    try:
        return check_int(key, value, low=minimum, high=maximum)
    except ValueError as exc:
        raise WalkSpecError(f"{where}: {exc}{_text_number_hint(value)}") from None


def _number(data: dict, key: str, where: str, minimum: float, maximum: float) -> float:
    value = data[key]
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not minimum <= value <= maximum:
        raise WalkSpecError(f"{where}: {key} must be a number from {minimum:g} to {maximum:g}, got {value!r} "
                            f"({_type_name(value)}){_text_number_hint(value)}")
    return float(value)


def _bool(data: dict, key: str, where: str) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise WalkSpecError(f"{where}: {key} must be true or false, got {value!r} ({_type_name(value)})")
    return value


def _choice(data: dict, key: str, where: str, choices: tuple[str, ...]) -> str:
    value = data[key]
    if value not in choices:
        raise WalkSpecError(f"{where}: {key} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _strings(data: dict, key: str, where: str) -> list[str]:
    value = data[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise WalkSpecError(f"{where}: {key} must be a list of non-empty strings, got {value!r}")
    return list(value)


def _scene_item(item: str, where: str) -> str:
    """``scene:NAME`` with NAME an object of the teaching world (normalised spacing), or a clear error."""
    from helpers.teaching.scenes import OBJECT_NAMES

    name = " ".join(item.removeprefix(SCENE_PREFIX).split())
    if name not in OBJECT_NAMES:
        close = difflib.get_close_matches(name, OBJECT_NAMES, n=1)
        hint = f" (did you mean {SCENE_PREFIX}{close[0]}?)" if close else ""
        raise WalkSpecError(
            f"{where}: {item!r} names no object of the teaching world{hint}; write \"scene:NAME\" (quoted in "
            f"YAML, e.g. \"scene:red apple\") with NAME one of: {', '.join(OBJECT_NAMES)}"
        )
    return SCENE_PREFIX + name


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_size(data: Any, where: str) -> None:
    """Refuse YAML whose expanded tree (aliases count every time they are used) is too big or too deep, before
    anything quotes it: a few hundred bytes of nested aliases can expand to gigabytes."""
    seen, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            why = f"nests deeper than {MAX_DEPTH} levels" if depth > MAX_DEPTH else f"has over {MAX_NODES:,} values"
            raise WalkSpecError(f"{where} {why} once its YAML aliases are expanded; a walk file is a flat list "
                                "of keys. Write the values out without anchors (&) and aliases (*).")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for kv in node.items() for v in kv)
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _walk_path(base: Path, text: str) -> Path:
    """A path written in a walk file: ``~`` is the home folder, and relative paths start at ``base``, the walk
    file's folder (``model:``, ``images:`` and ``out:`` alike)."""
    return base / Path(text).expanduser()


def _model_path(model: str, base: Path) -> Path | None:
    """Where ``model:`` names a folder or a checkpoint file, that path relative to the walk file; None for a
    registry name or a hub id (``owner/name``). A path that exists only relative to the working directory is
    still taken relative to the walk file, so that it is refused rather than found by chance."""
    if model in MODELS:
        return None
    path = _walk_path(base, model)
    looks_like_path = model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1
    if looks_like_path or path.exists() or Path(model).exists():
        return path
    return None


def _check_model_name(model: str, where: str, path: Path | None = None) -> None:
    """A named model, a model folder or file (``path``) or a hub id ``owner/name``; anything else is refused
    with the reason: an unknown name gets the names, a folder or file that cannot load says why."""
    if model in MODELS:
        return
    if path is not None and not path.exists():
        raise WalkSpecError(f"{where}: model: no model folder or checkpoint file at {str(path)!r} (model paths in "
                            "a walk file are relative to its folder, like images: and out:)")
    from helpers.pipelines import resolve_model

    try:
        resolve_model(model if path is None else str(path))
    except ValueError as exc:
        if path is not None:  # its own reason: "cannot read the checkpoint …", "holds no Stable Diffusion weights"
            raise WalkSpecError(f"{where}: model: {exc}") from None
        close = difflib.get_close_matches(model, list(MODELS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise WalkSpecError(f"{where}: unknown model {model!r}{hint}; use one of {', '.join(MODELS)}, a hub id "
                            "such as stable-diffusion-v1-5/stable-diffusion-v1-5, or a folder saved with "
                            "save_pretrained") from None


def parse_walk_spec(data: Any, *, base_dir: str | os.PathLike = ".", source: str = "walk file") -> WalkSpec:
    """Validate a walk description (the YAML file's mapping) and return a :class:`WalkSpec`.

    Raises :class:`WalkSpecError` naming the key: unknown keys (with a suggestion), wrong types, missing
    prompts or images, too few frames for the keypoints. Relative ``images`` and ``out`` paths are taken
    relative to ``base_dir`` (the walk file's folder), and so is a ``model`` folder or file; ``~`` is the home
    folder in all three.

    Introduced in notebook 04_prompt_walks.
    """
    where = source
    _check_keys(data, where)
    base = Path(base_dir)
    model, model_path = _parse_model(data, base, where)
    spec = WalkSpec(model=model, model_path=model_path, frames=0, source=source)
    if "keyframes" in data:
        _parse_timeline(spec, data, base, where)
        _parse_render_options(spec, data, base, where)
        _parse_common(spec, data, where)
        if spec.audio is None:
            from helpers.timeline import plan_frames

            try:
                spec.frames = len(plan_frames(spec.timeline()))
            except (TypeError, ValueError) as exc:
                raise WalkSpecError(f"{where}: keyframes: {exc}") from None
        return spec
    for key in _TIMELINE_ONLY:
        if key in data:
            raise WalkSpecError(f"{where}: {key}: belongs to a timeline; write the walk as keyframes: (a list of "
                                "prompt:/image: entries) to use it" + (", or use closed: true to loop a plain walk"
                                                                       if key == "loop" else ""))
    _parse_keypoints(spec, data, base, where)
    _parse_frames(spec, data, where)
    if "negative_prompt" in data:
        if not isinstance(data["negative_prompt"], str) or spec.kind == "unclip":
            raise WalkSpecError(f"{where}: negative_prompt must be a string (text-to-image models only)")
        spec.negative_prompt = data["negative_prompt"]
    if "seeds" in data:
        spec.seeds = _parse_seeds(data["seeds"], spec.frames, where)
    _parse_common(spec, data, where)
    _parse_render_options(spec, data, base, where)
    return spec


def _parse_common(spec: WalkSpec, data: dict, where: str) -> None:
    """steps and size, the same in plain walks and timelines."""
    if "steps" in data:
        spec.steps = _int(data, "steps", where, 2 if spec.kind == "unclip" else 1, LIMITS["steps"])
    if "size" in data:
        spec.size = _parse_size(data["size"], spec.kind, where)
        native = _registry_native_side(spec.model)
        if native is not None:
            _check_native_size(spec, native)


def _image_item(item: Any, base: Path, where: str) -> str:
    """An image written in a walk file: ``scene:NAME``, or a file path relative to the walk file."""
    if not isinstance(item, str) or not item.strip():
        raise WalkSpecError(f"{where}: an image must be a file path or \"scene:NAME\", got {_short(item)}")
    if item.startswith(RETIRED_PREFIX):
        raise WalkSpecError(f"{where}: {item!r}: the digit world was retired; name an example scene "
                            f"instead, e.g. \"{SCENE_PREFIX}red apple\" (quoted in YAML)")
    if _URL.match(item):
        raise WalkSpecError(f"{where}: {_short(item)!r}: URLs are not supported; download the image and "
                            "give its path (relative to the walk file)")
    return _scene_item(item, where) if item.startswith(SCENE_PREFIX) else str(_walk_path(base, item))


def _parse_timeline(spec: WalkSpec, data: dict, base: Path, where: str) -> None:
    """``keyframes:`` (each a mapping of :data:`KEYFRAME_KEYS`), ``loop:``, ``audio:`` and ``smooth:``."""
    mixed = [k for k in _PLAIN_ONLY if k in data]
    if mixed:
        k = mixed[0]
        raise WalkSpecError(f"{where}: {k}: describes a plain walk, but this file has keyframes:; in a timeline "
                            f"write {_PLAIN_ONLY[k]} instead")
    entries = data["keyframes"]
    if not isinstance(entries, list) or len(entries) < 2:
        raise WalkSpecError(f"{where}: keyframes must be a list of at least 2 entries (each with prompt: or "
                            f"image:), got {_short(entries)}")
    spec.keyframes = [_parse_keyframe(spec, entry, base, f"{where}: keyframe {i}") for i, entry in enumerate(entries)]
    if "loop" in data:
        spec.loop = _bool(data, "loop", where)
    _parse_music(spec, data, base, where)


def _parse_keyframe(spec: WalkSpec, entry: Any, base: Path, at: str) -> Any:
    """One entry of ``keyframes:`` as a :class:`helpers.timeline.Keyframe` (a bare string is a prompt)."""
    from helpers.timeline import Keyframe

    if isinstance(entry, str):
        entry = {"prompt": entry}
    if not isinstance(entry, dict):
        raise WalkSpecError(f"{at} must be a mapping such as {{prompt: a red heart, frames: 12}}, got {_short(entry)}")
    unknown = [k for k in entry if k not in KEYFRAME_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), KEYFRAME_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WalkSpecError(f"{at}: unknown key {unknown[0]!r}{hint}; a keyframe takes {', '.join(KEYFRAME_KEYS)}")
    fields: dict[str, Any] = {}
    for key in ("prompt", "negative_prompt"):
        if key in entry:
            if not isinstance(entry[key], str):
                raise WalkSpecError(f"{at}: {key} must be text, got {_short(entry[key])}")
            fields[key] = entry[key]
    if "image" in entry:
        fields["image"] = _image_item(entry["image"], base, at)
    elif spec.kind == "unclip":
        raise WalkSpecError(f"{at}: {spec.model} is an unCLIP model and walks between images: give every "
                            "keyframe an image: (a file, or \"scene:red apple\")")
    elif not fields.get("prompt", "").strip():
        raise WalkSpecError(f"{at} needs a prompt: (the text to draw) or an image:")
    return Keyframe(**fields, **_keyframe_timing(entry, at))


def _keyframe_timing(entry: dict, at: str) -> dict[str, Any]:
    """A keyframe's seed and its way to the next keyframe: frames or seconds, at, easing, retime."""
    from helpers.interpolation import EASINGS

    fields: dict[str, Any] = {}
    if "seed" in entry:
        fields["seed"] = _parse_seeds(entry["seed"], 1, at)[0]
    if "frames" in entry:
        fields["frames"] = _int(entry, "frames", at, 1, LIMITS["frames"])
    for key in ("seconds", "at"):
        if key in entry:
            fields[key] = _number(entry, key, at, 0.0, LIMITS["frames"] / LIMITS["fps"][0])
    if "easing" in entry:
        fields["easing"] = _choice(entry, "easing", at, EASINGS)
    if "retime" in entry:
        fields["retime"] = _bool(entry, "retime", at)
    return fields


def _parse_music(spec: WalkSpec, data: dict, base: Path, where: str) -> None:
    """``audio:`` (a sound file relative to the walk file) and ``smooth:``; with audio the music sets the
    lengths, so no keyframe may give its own."""
    if "smooth" in data:
        if "audio" not in data:
            raise WalkSpecError(f"{where}: smooth: blends the music's timing with even spacing; give audio: too")
        spec.smooth = _number(data, "smooth", where, 0.0, 1.0)
    if "audio" not in data:
        return
    if not isinstance(data["audio"], str) or not data["audio"].strip():
        raise WalkSpecError(f"{where}: audio must be the path of a sound file (WAV, FLAC, OGG, MP3), got "
                            f"{_short(data['audio'])}")
    if _URL.match(data["audio"]):
        raise WalkSpecError(f"{where}: audio: URLs are not supported; download the file and give its path")
    spec.audio = _walk_path(base, data["audio"])
    for i, k in enumerate(spec.keyframes):
        if k.frames is not None or k.seconds is not None or k.retime:
            raise WalkSpecError(f"{where}: keyframe {i}: with audio the music sets the segments' lengths and "
                                "timing; leave out frames:, seconds: and retime:, and pin the keyframe to a "
                                "time with at: instead")


def _check_keys(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise WalkSpecError(f"{where}: expected a mapping of keys (model:, prompts:, frames: ...), got {_short(data)}")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), _KEYS, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise WalkSpecError(f"{where}: unknown key(s) {', '.join(hints)}; known keys: {', '.join(_KEYS)}")


def _parse_model(data: dict, base: Path, where: str) -> tuple[str, Path | None]:
    """The model's name as written (what the render folder's manifest records) and, for a folder or file, its
    path relative to the walk file."""
    from helpers.teaching.common import TEACHING_MODELS

    if "model" not in data:
        raise WalkSpecError(f"{where}: missing 'model:' (one of {', '.join(MODELS)}, a hub id or a folder)")
    if not isinstance(data["model"], str) or not data["model"].strip():
        raise WalkSpecError(f"{where}: model must be a name such as tiny-sd, got {data['model']!r}")
    model = data["model"].strip()
    if model in RETIRED_MODELS:
        raise WalkSpecError(f"{where}: the model {model!r} was retired with the digit world; write "
                            f"model: {RETIRED_MODELS[model]} (the emoji-scene teaching model) instead")
    if model in TEACHING_MODELS and model not in MODELS:
        walkable = [m for m in MODELS if m in TEACHING_MODELS]
        raise WalkSpecError(f"{where}: walk files cannot use {model!r}; the teaching models they "
                            f"walk with are {', '.join(walkable)} (prompts / images)")
    path = _model_path(model, base)
    _check_model_name(model, where, path)
    return model, path


def _parse_keypoints(spec: WalkSpec, data: dict, base: Path, where: str) -> None:
    """``images:`` for unCLIP models (files relative to the walk file, or example scenes), else ``prompts:``."""
    if spec.kind == "unclip":
        if "prompts" in data:
            raise WalkSpecError(f"{where}: {spec.model} walks between images: use images:, not prompts:")
        if "images" not in data:
            raise WalkSpecError(
                f"{where}: {spec.model} is an unCLIP model: give images: [a.png, b.png] (or \"scene:red apple\")"
            )
        items = _strings(data, "images", where)
        for item in items:
            if item.startswith(RETIRED_PREFIX):
                raise WalkSpecError(f"{where}: {item!r}: the digit world was retired; name an example scene "
                                    f"instead, e.g. \"{SCENE_PREFIX}red apple\" (quoted in YAML)")
        for item in items:
            if _URL.match(item):
                raise WalkSpecError(f"{where}: {_short(item)!r}: URLs are not supported; download the image and "
                                    "give its path (relative to the walk file)")
        spec.images = [_scene_item(s, where) if s.startswith(SCENE_PREFIX) else str(_walk_path(base, s)) for s in items]
    else:
        if "images" in data:
            raise WalkSpecError(f"{where}: {spec.model} is a text-to-image model: use prompts:, not images:")
        if "prompts" not in data:
            raise WalkSpecError(f"{where}: missing 'prompts:' (at least 2 prompts to walk between)")
        spec.prompts = _strings(data, "prompts", where)


def _parse_frames(spec: WalkSpec, data: dict, where: str) -> None:
    what = "images" if spec.kind == "unclip" else "prompts"
    closed = _bool(data, "closed", where) if "closed" in data else False
    if spec.keypoints < 2:
        raise WalkSpecError(f"{where}: a walk needs at least 2 {what}, got {spec.keypoints}")
    if "frames" not in data:
        raise WalkSpecError(f"{where}: missing 'frames:' (how many frames the walk has)")
    spec.frames = _int(data, "frames", where, 2, LIMITS["frames"])
    if spec.frames < spec.keypoints:
        raise WalkSpecError(
            f"{where}: frames is {spec.frames} but there are {spec.keypoints} {what}: every keypoint is a frame, "
            f"so use frames >= {spec.keypoints}"
        )
    spec.closed = closed


def _parse_seeds(value: Any, frames: int, where: str) -> list[int]:
    seeds = [value] if not isinstance(value, list) else value
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**64 for s in seeds):
        hint = next((h for s in seeds if (h := _text_number_hint(s))), "")
        raise WalkSpecError(f"{where}: seeds must be a whole number from 0 to 2**64 - 1 or a list of them, "
                            f"got {_short(value)}{hint}")
    if len(seeds) > frames:
        raise WalkSpecError(f"{where}: {len(seeds)} seeds but only {frames} frames")
    return [int(s) for s in seeds]


def _parse_size(size: Any, kind: str, where: str) -> tuple[int, int]:
    pair = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
    if (
        kind == "unclip"
        or not isinstance(pair, list)
        or len(pair) != 2
        or any(isinstance(s, bool) or not isinstance(s, int) or not 0 < s <= LIMITS["size"] or s % 8 for s in pair)
    ):
        raise WalkSpecError(
            f"{where}: size must be a multiple of 8 up to {LIMITS['size']}, or [height, width] of them "
            f"(text-to-image models only), got {_short(size)}"
        )
    return (pair[0], pair[1])


def _registry_native_side(model: str) -> int | None:
    """A named model's native image side where it is known without loading it (the registry's real models, the
    teaching model); None for the others, which are checked once loaded."""
    entry = _REGISTRY.get(model)
    if entry is None or entry.kind != "text2img":
        return None
    if entry.size:
        return entry.size
    if entry.backend == "teaching":
        from helpers.teaching.text2img import IMAGE_SIZE

        return IMAGE_SIZE
    return None


def _check_native_size(spec: WalkSpec, native: int) -> None:
    """``size:`` against the model's native side (at most :data:`helpers.checks.MAX_SIZE_FACTOR` times it)."""
    assert spec.size is not None
    height, width = spec.size
    names = ("size", "size") if height == width else ("size (height)", "size (width)")
    for name, side in zip(names, spec.size):
        try:
            check_side(name, side, native=native)
        except ValueError as exc:
            raise WalkSpecError(f"{spec.source}: {exc} for model {spec.model}; a larger picture takes long and "
                                "comes out as tiles, so write a smaller size: (or leave it out)") from None


def _parse_render_options(spec: WalkSpec, data: dict, base: Path, where: str) -> None:
    """guidance, method, schedule, formats, fps, batch_size, out, device, dtype, compile, channels_last."""
    if "guidance" in data:
        spec.guidance = _number(data, "guidance", where, 0.0, LIMITS["guidance"])
    if "method" in data:
        spec.method = _choice(data, "method", where, ("slerp", "lerp"))
    if "schedule" in data:
        spec.schedule = _choice(data, "schedule", where, ("linear", "cosine"))
    if "formats" in data:
        spec.formats = _strings(data, "formats", where)
        bad = [f for f in spec.formats if f not in FORMATS]
        if bad:
            raise WalkSpecError(f"{where}: unknown format(s) {bad}; choose from {', '.join(FORMATS)}")
    if "fps" in data:
        spec.fps = _number(data, "fps", where, *LIMITS["fps"])
    if "batch_size" in data and data["batch_size"] != "auto":
        spec.batch_size = _int(data, "batch_size", where, 1, LIMITS["frames"])
    if "out" in data:
        if not isinstance(data["out"], str) or not data["out"].strip():
            raise WalkSpecError(f"{where}: out must be a folder name, got {data['out']!r}")
        spec.out = _walk_path(base, data["out"])
    if "device" in data:
        spec.device = _choice(data, "device", where, ("auto", "cpu", "cuda", "mps"))
    if "dtype" in data:
        spec.dtype = _choice(data, "dtype", where, DTYPES)
    for key in ("compile", "channels_last"):
        if key in data:
            setattr(spec, key, _bool(data, key, where))


class _DuplicateKeyError(ValueError):
    """A key given twice in one mapping of a walk file (YAML keeps the last silently)."""


def _unique_key_loader() -> type:
    """PyYAML's ``SafeLoader`` that refuses a key given twice in one mapping (merge keys ``<<`` may still be
    overridden, as YAML intends)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            lines: dict[Any, int] = {}
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = lines.get(key)
                except TypeError:  # an unhashable key: the SafeLoader says so below
                    continue
                if first is not None:
                    raise _DuplicateKeyError(f"the key {_short(key, 60)!r} is given twice (lines {first} and "
                                             f"{line}); YAML would keep only the last, so delete one")
                lines[key] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def load_walk_spec(path: str | os.PathLike) -> WalkSpec:
    """Read and validate a YAML walk file (:func:`parse_walk_spec`); the default output folder is next to it,
    named after it. Introduced in notebook 04_prompt_walks."""
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise WalkSpecError(f"no walk file at {str(p)!r}")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise WalkSpecError(f"{p.name} is {size:,} bytes; a walk file is a few lines (at most "
                            f"{MAX_FILE_BYTES // 1024} KiB). Is this the right file?")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WalkSpecError(f"{p.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # a SafeLoader
    except _DuplicateKeyError as exc:
        raise WalkSpecError(f"{p.name}: {exc}") from None
    except yaml.YAMLError as exc:
        raise WalkSpecError(f"{p.name} is not valid YAML: {_short(' '.join(str(exc).split()), 300)}") from None
    _check_size(data, p.name)
    spec = parse_walk_spec(data, base_dir=p.parent, source=p.name)
    if spec.out is None:
        spec.out = p.parent / p.stem
    return spec


# ------------------------------------------------------------------------------------------------ running


def _out_folder(spec: WalkSpec, out: str | os.PathLike | None) -> Path:
    """The folder a walk renders into: ``out`` (``--out``), else the walk file's ``out:`` or its own name."""
    if out is None:
        return spec.out or Path("walk")
    if not str(out).strip():
        raise WalkSpecError(f"{spec.source}: --out is empty; name the folder to render into, or leave --out out "
                            "to use the walk file's out: (or a folder named after the walk file)")
    return Path(out).expanduser()


def check_runtime(spec: WalkSpec, out: str | os.PathLike | None = None) -> None:
    """What a walk needs from this machine, checked before any model loads: the device exists, every image
    file decodes as an image (:func:`helpers.media.load_image`: pixels, not only the header), and the output
    folder can be made (named, with no file or dangling symbolic link in its place or above it).

    Introduced in notebook 04_prompt_walks; :func:`run_walk` calls it first.
    """
    from helpers.devices import check_device

    where = spec.source
    if spec.device != "auto":
        try:
            check_device(spec.device)
        except ValueError as exc:
            raise WalkSpecError(f"{where}: {exc} (in a walk file: device: auto)") from None
    from helpers.media import load_image

    if spec.audio is not None:
        from helpers.audio import AudioError, audio_duration

        try:
            seconds = audio_duration(spec.audio)
        except AudioError as exc:
            raise WalkSpecError(f"{where}: audio: {exc} (audio paths are relative to the walk file)") from None
        spec.frames = round(seconds * spec.fps)  # the music sets the length
        if spec.frames < 2:
            raise WalkSpecError(f"{where}: audio: {spec.audio.name} lasts {seconds:.3f} s, less than two frames "
                                f"at {spec.fps:g} fps")
    for item in spec.images + [k.image for k in spec.keyframes if k.image is not None]:
        if item.startswith(SCENE_PREFIX):
            continue
        if not Path(item).is_file():  # before opening: a named pipe would block
            raise WalkSpecError(f"{where}: no image file at {item!r} (image paths are relative to the walk file)")
        try:
            load_image(item)
        except ValueError as exc:
            raise WalkSpecError(f"{where}: {item!r} is not an image Pillow can read "
                                f"({_short(' '.join(str(exc).split()), 300)})") from None
    folder = _out_folder(spec, out)
    for parent in (folder, *folder.parents):
        if parent.is_symlink() and not parent.exists():
            what = "is" if parent == folder else f"is inside {str(parent)!r},"
            raise WalkSpecError(f"{where}: the output folder {str(folder)!r} {what} a symbolic link to "
                                f"{os.readlink(parent)!r}, which does not exist; create that folder, or choose "
                                "another out:")
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == folder else f"is inside {str(parent)!r}, which is a file"
                raise WalkSpecError(f"{where}: the output folder {str(folder)!r} {what}; choose another out:")
            break


def load_model(spec: WalkSpec, device: Any = None) -> Any:
    """The :class:`helpers.backends.Backend` (or, for other names, the pipeline) a walk file asks for."""
    import contextlib

    import torch

    from helpers.backends import backend_kind, choose_backend
    from helpers.devices import get_device, quiet_libraries

    dtype = None if spec.dtype == "auto" else getattr(torch, spec.dtype)
    if device is None and spec.device != "auto":
        device = torch.device(spec.device)
    quiet: Any = contextlib.nullcontext()
    if dtype == torch.float16 and torch.device(device or get_device()).type == "cpu":
        # diffusers warns "cannot run with cpu device" at every .to() (three times per load): say it once.
        print("note: dtype float16 on the CPU: some operations may be slow or unsupported there; float32 or "
              "bfloat16 suit a CPU better")
        quiet = quiet_libraries(progress_bars=True)
    with quiet:
        if spec.model in MODELS:
            entry = _REGISTRY[spec.model]
            return choose_backend(entry.backend, backend_kind(entry), model=spec.model, device=device, dtype=dtype)
        from helpers.pipelines import load_pipeline

        source = spec.model if spec.model_path is None else str(spec.model_path)
        pipe = load_pipeline(source, device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def walk_inputs(spec: WalkSpec, loaded: Any) -> tuple[Any, dict[str, Any]]:
    """(pipeline, keyword arguments for :func:`helpers.walks.render_walk`) for a walk file."""
    import torch

    from helpers.backends import Backend
    from helpers.embeddings import encode_images, encode_prompts, make_latents
    from helpers.interpolation import interpolation_path
    from helpers.pipeline_info import negative_guidance

    pipe = loaded.pipe if isinstance(loaded, Backend) else loaded
    path_kw: dict[str, Any] = dict(method=spec.method, closed=spec.closed, schedule=spec.schedule)
    if isinstance(loaded, Backend):
        kwargs = loaded.render_kwargs(steps=spec.steps, guidance_scale=spec.guidance)
    else:
        kwargs = {"num_inference_steps": spec.steps or 25, "guidance_scale": 7.5 if spec.guidance is None else spec.guidance}
    size: dict[str, Any] = {}
    if spec.size is not None:
        from helpers.pipeline_info import native_size

        _check_native_size(spec, loaded.height if isinstance(loaded, Backend) and loaded.height else native_size(pipe)[0])
        kwargs["height"], kwargs["width"] = spec.size
    if "height" in kwargs:
        size = {"height": kwargs["height"], "width": kwargs["width"]}
    if spec.negative_prompt:  # FLUX: a negative acts through true CFG only
        kwargs.update(negative_guidance(pipe)[1])
    inputs: dict[str, Any] = {"seed": spec.seeds[0], "model": spec.model}
    if spec.keyframes:
        return _timeline_inputs(spec, loaded, pipe, inputs, kwargs)
    if spec.kind == "unclip":
        from helpers.media import load_image

        images = []
        for item in spec.images:
            if item.startswith(SCENE_PREFIX):
                if not isinstance(loaded, Backend):
                    raise WalkSpecError(f"{spec.source}: {item!r}: example scenes work with the named models "
                                        f"only ({', '.join(m for m in MODELS if MODELS[m][1] == 'unclip')})")
                name = _scene_item(item, spec.source).removeprefix(SCENE_PREFIX)
                images.extend(loaded.example_images(objects=[name]))
            else:
                images.append(load_image(item))
        embeds = encode_images(pipe, images)
        _check_keypoints_differ(spec, pipe, embeds, spec.images)
        inputs["image_embeddings"] = interpolation_path(list(embeds), spec.frames, **path_kw)
    else:
        embeds, negative = encode_prompts(pipe, spec.prompts, negative_prompt=spec.negative_prompt)
        _check_keypoints_differ(spec, pipe, embeds, spec.prompts)
        inputs["prompt_embeds"] = interpolation_path(list(embeds), spec.frames, **path_kw)
        inputs["negative_prompt_embeds"] = negative[:1]
    if len(spec.seeds) > 1:
        noise = make_latents(pipe, spec.seeds, dtype=torch.float32, **size)
        inputs["latents"] = interpolation_path(list(noise), spec.frames, method="slerp", closed=spec.closed,
                                               schedule=spec.schedule)
    return pipe, {**inputs, **kwargs}


def _timeline_inputs(spec: WalkSpec, loaded: Any, pipe: Any, inputs: dict[str, Any], kwargs: dict[str, Any]
                     ) -> tuple[Any, dict[str, Any]]:
    """(pipeline, render_walk's keyword arguments) for a ``keyframes:`` walk: the music's onset envelope, the
    keyframes encoded once (images inverted with the render's steps), the plan (re-timed segments rendered
    here), and the DDIM sampler when an image was inverted. Example scenes come at the model's own size."""
    from helpers.timeline import inversion_steps, keyframe_inputs, retimed_plan, timeline_pipe

    envelope = None
    if spec.audio is not None:
        from helpers.audio import AudioError, onset_envelope

        try:
            envelope = onset_envelope(spec.audio, spec.fps)
        except AudioError as exc:
            raise WalkSpecError(f"{spec.source}: audio: {exc}") from None
    timeline = spec.timeline(envelope)
    if spec.kind == "unclip" and spec.guidance is None:
        kwargs["decoder_guidance_scale"] = 1.0  # inverted latents rebuild their image at guidance 1
    try:
        table = keyframe_inputs(pipe, timeline, **inversion_steps(pipe, kwargs))
        plan = retimed_plan(pipe, timeline, table, **kwargs)
    except (TypeError, ValueError) as exc:
        raise WalkSpecError(f"{spec.source}: keyframes: {exc}") from None
    spec.frames = len(plan)
    return timeline_pipe(pipe, timeline), {**inputs, "seed": 0, **table.frames(plan.segment, plan.frac), **kwargs}


def _check_keypoints_differ(spec: WalkSpec, pipe: Any, embeds: Any, labels: list[str]) -> None:
    """Refuse neighbouring keypoints written differently that encode to the same embedding (the walk between
    them would stand still), e.g. prompts that differ only past the tokenizer's token limit."""
    import torch

    n = len(labels)
    pairs = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if spec.closed and n > 2 else [])
    for i, j in pairs:
        a, b = labels[i], labels[j]
        if a == b or not torch.equal(embeds[i], embeds[j]):
            continue
        why, fix = "", "make them differ"
        limit = getattr(getattr(pipe, "tokenizer", None), "model_max_length", None)
        if spec.kind != "unclip" and isinstance(limit, int):
            count = [len(pipe.tokenizer(t, truncation=True, max_length=limit + 1).input_ids) for t in (a, b)]
            if max(count) > limit:
                why = (f": {spec.model} reads only the first {limit} tokens of a prompt (its token limit), and "
                       "these differ only after that")
                fix = f"make them differ within the first {limit} tokens"
        a, b = (t if len(t) <= 80 else f"{t[:30]}…{t[-45:]}" for t in (a, b))  # where long prompts differ
        raise WalkSpecError(f"{spec.source}: {a!r} and {b!r} encode to the same embedding"
                            f"{why}, so the walk between them would stand still; {fix}")


def _distributed_state() -> Any:
    """An ``accelerate.PartialState`` when launched with several processes (accelerate launch / torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    # Without a GPU, accelerate only forms a multi-process (gloo) group when asked for the CPU explicitly.
    return PartialState(cpu=not torch.cuda.is_available())


def export_walk(spec: WalkSpec, frames: Sequence[Any], out_dir: Path, *, log: Any = print) -> dict[str, Path]:
    """Write the GIF, MP4 and contact sheet that ``spec.formats`` asks for into the render folder ``out_dir``.

    Each is recorded in the folder's manifest; a file of the same name that no render of that folder wrote
    (the user's own ``walk.gif``) is never replaced: all of them are checked before the first is written.
    """
    from helpers.media import export_gif, export_mp4, image_grid, save_image
    from helpers.walks.folder import check_exports, write_export

    step = max(1, len(frames) // 16)
    picked = list(range(0, len(frames), step))[:16]
    writers: dict[str, tuple[str, Any]] = {
        "gif": ("walk.gif", lambda p: export_gif(frames, p, fps=min(spec.fps, 50))),
        "mp4": ("walk.mp4", lambda p: export_mp4(frames, p, fps=spec.fps, audio=spec.audio)),
        "contact_sheet": ("contact_sheet.png", lambda p: save_image(
            image_grid([frames[i] for i in picked], labels=[str(i) for i in picked]), p)),
    }
    wanted = [fmt for fmt in writers if fmt in spec.formats]
    check_exports(out_dir, [writers[fmt][0] for fmt in wanted])
    written = {fmt: write_export(out_dir, *writers[fmt]) for fmt in wanted}
    for name, path in written.items():
        log(f"wrote {name}: {path}")
    return written


def run_walk(
    spec: WalkSpec, *, out: str | os.PathLike | None = None, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Render a walk file's frames resumably and export its media; returns what was written.

    Introduced in notebook 04_prompt_walks.
    """
    import torch

    from helpers.media import FrameFiles
    from helpers.render import speed_options
    from helpers.walks.folder import render_walk

    check_runtime(spec, out)
    state = _distributed_state()
    is_main = state is None or state.is_main_process
    log = print if is_main else (lambda *a, **k: None)
    device = state.device if state is not None and state.device.type == "cuda" else None
    loaded = load_model(spec, device=device)
    pipe, inputs = walk_inputs(spec, loaded)
    for note in speed_options(pipe, compile=spec.compile, channels_last=spec.channels_last):
        log(note)
    folder = _out_folder(spec, out)
    if state is not None and state.num_processes > 1 and not torch.cuda.is_available():
        torch.set_num_threads(1)
    result = render_walk(
        pipe, folder, batch_size=spec.batch_size, overwrite=overwrite, progress=progress, state=state, **inputs
    )
    where = f"process {state.process_index}" if state is not None else "this run"
    print(f"{where}: rendered {len(result.rendered)} frame(s), {len(result.skipped)} already done", flush=True)
    written: dict[str, Any] = {"frames": result.frames}
    if is_main:
        written.update(export_walk(spec, FrameFiles(result.frames), folder, log=log))
    if state is not None:
        state.wait_for_everyone()
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.walks WALK.yaml [--out DIR] [--overwrite] [--no-progress]``."""
    from helpers.media import ExportError
    from helpers.pipelines import ModelUnavailableError
    from helpers.walks.folder import WalkFolderError

    parser = argparse.ArgumentParser(
        prog="python -m helpers.walks",
        description="Render a walk file (YAML) into frames, a GIF and an MP4; rerun to resume.",
        epilog="Several GPUs: accelerate launch --num_processes N -m helpers.walks WALK.yaml "
        "(without a GPU add --multi_gpu to get N CPU processes).",
    )
    parser.add_argument("walk", help="the walk file, e.g. walks/scenes.yaml")
    parser.add_argument("--out", help="output folder (default: the file's 'out:' or its name beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace a different walk in the folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        spec = load_walk_spec(args.walk)
        run_walk(spec, out=args.out, overwrite=args.overwrite, progress=not args.no_progress)
    except (WalkSpecError, WalkFolderError, ModelUnavailableError, FileNotFoundError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the disk filled while loading or exporting: one line, not a traceback
        print(f"error: {exc.strerror or exc} ({type(exc).__name__}"
              f"{', ' + str(exc.filename) if exc.filename else ''}); fix that and run again to resume",
              file=sys.stderr)
        return 2
    return 0


__all__ = ["MODELS", "RETIRED_MODELS", "WalkSpec", "WalkSpecError", "check_runtime", "load_walk_spec", "parse_walk_spec",
           "run_walk", "main"]
