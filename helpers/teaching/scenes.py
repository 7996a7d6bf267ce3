"""The teaching world: "emoji scenes", a colour glyph on a plain background, with ground truth for everything.

Introduced in notebook 01_diffusion_basics. A scene is one of 48 objects (six families of eight: faces, animal
faces, fruit, hearts, weather, vehicles), drawn ``small`` (14 px) or ``big`` (24 px) at a random position on a
32x32 background that is white or one of four pale colours. Its caption names what is in it, e.g.
``"a big red apple on a pink background"``; training captions sometimes leave out the size or the background
(then the model has to choose), so prompts like ``"a red apple"`` work too.

Everything is deterministic: :func:`sample_scenes` turns a seed into scenes, :func:`render` turns scenes into
pixels. The glyphs are Google's Noto Color Emoji images (Apache-2.0; ``atlas/NOTICE``), 64x64 cells in the
small atlas ``atlas/emoji_atlas.png`` that ``tools/build_emoji_atlas.py`` rebuilds from the pinned npm package.

The split is fixed: each object has one pale background it is **never** shown on in training
(:func:`held_out_background`), so the held-out split can test composition ("a fox face on a green background"
when foxes were only ever seen on other colours).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch

ATLAS_DIR = Path(__file__).resolve().parent / "atlas"
ATLAS_COLUMNS = 8
IMAGE_SIZE = 32


@dataclass(frozen=True)
class SceneObject:
    """One glyph of the atlas: the words that name it, its family and its file in the npm package."""

    name: str
    family: str
    source: str


def _family(family: str, items: str) -> tuple[SceneObject, ...]:
    out = []
    for item in items.split(","):
        name, source = item.strip().split(":")
        out.append(SceneObject(name.strip(), family, source.strip() + ".png"))
    return tuple(out)


OBJECTS: tuple[SceneObject, ...] = (
    *_family("face", "grinning face:1f600, crying face:1f622, laughing face:1f602, angry face:1f621, "
             "cool face:1f60e, loving face:1f60d, sleeping face:1f634, surprised face:1f632"),
    *_family("animal", "cat face:1f431, dog face:1f436, fox face:1f98a, lion face:1f981, pig face:1f437, "
             "frog face:1f438, panda face:1f43c, tiger face:1f42f"),
    *_family("fruit", "red apple:1f34e, green apple:1f34f, banana:1f34c, lemon:1f34b, orange:1f34a, "
             "strawberry:1f353, grapes:1f347, cherries:1f352"),
    *_family("heart", "red heart:2764-fe0f, orange heart:1f9e1, yellow heart:1f49b, green heart:1f49a, "
             "blue heart:1f499, purple heart:1f49c, black heart:1f5a4, pink heart:1fa77"),
    *_family("weather", "sun:2600-fe0f, cloud:2601-fe0f, rain cloud:1f327-fe0f, snowflake:2744-fe0f, "
             "lightning:26a1, rainbow:1f308, moon:1f319, star:2b50"),
    *_family("vehicle", "car:1f697, bus:1f68c, rocket:1f680, bicycle:1f6b2, airplane:2708-fe0f, sailboat:26f5, "
             "train:1f68b, tractor:1f69c"),
)
OBJECT_NAMES: tuple[str, ...] = tuple(o.name for o in OBJECTS)
FAMILIES: tuple[str, ...] = ("face", "animal", "fruit", "heart", "weather", "vehicle")
SIZES: dict[str, int] = {"small": 14, "big": 24}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "pink": (255, 212, 226),
    "blue": (204, 224, 255),
    "green": (208, 242, 208),
    "yellow": (255, 242, 188),
}
SIZE_NAMES = tuple(SIZES)
BACKGROUND_NAMES = tuple(BACKGROUNDS)
#: How often a training caption leaves out the size / the background phrase.
DROP_SIZE = 0.25
DROP_BACKGROUND = 0.25
#: The fixed split: training scenes (seed 0) and held-out scenes (their own seed; half of them on the
#: object-background pairs never seen in training).
TRAIN_SCENES = 24_000
HELD_OUT_SCENES = 1_000
_SPLIT_SEEDS = {"train": 0, "held_out": 1_000_003}


def object_index(name: str) -> int:
    """The index of an object by its name (``"fox face"`` → 10); a clear error lists the names."""
    try:
        return OBJECT_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown object {name!r}; the teaching world has: {', '.join(OBJECT_NAMES)}") from None


def held_out_background(obj: int) -> str:
    """The pale background object ``obj`` never appears on in training (one of pink/blue/green/yellow)."""
    return BACKGROUND_NAMES[1 + obj % 4]


@dataclass(frozen=True)
class Scene:
    """One scene's ground truth: object index, size and background names, top-left corner (x, y) in pixels."""

    obj: int
    size: str
    background: str
    x: int
    y: int

    @property
    def name(self) -> str:
        return OBJECT_NAMES[self.obj]

    @property
    def family(self) -> str:
        return OBJECTS[self.obj].family

    def caption(self, *, size: bool = True, background: bool = True) -> str:
        """``"a big red apple on a pink background"``; ``size``/``background`` False leave that part out."""
        return caption(self.name, self.size if size else None, self.background if background else None)


def caption(name: str, size: str | None = None, background: str | None = None) -> str:
    """The caption of an object with an optional size and background: ``caption("fox face", "small")``."""
    object_index(name)
    if size is not None and size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if background is not None and background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    words = ["a"] + ([size] if size else []) + [name]
    if background:
        words += ["on", "a", background, "background"]
    return " ".join(words)


def vocabulary() -> list[str]:
    """Every word a caption can use (54 words)."""
    words = {"a", "on", "background", *SIZES, *BACKGROUNDS}
    for name in OBJECT_NAMES:
        words.update(name.split())
    return sorted(words)


def all_captions() -> list[str]:
    """Every distinct caption (with and without size and background): the tokenizer's corpus."""
    out = []
    for name in OBJECT_NAMES:
        for size in (None, *SIZES):
            for bg in (None, *BACKGROUNDS):
                out.append(caption(name, size, bg))
    return out


def sample_scenes(n: int, seed: int = 0, *, split: str = "train") -> list[Scene]:
    """``n`` random scenes from ``seed``: uniform object, size and position; the background is drawn among
    the four the object is trained on (``split="train"``) or, for ``split="held_out"``, every second scene
    uses the object's held-out background."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    rng = np.random.default_rng(seed)
    objs = rng.integers(0, len(OBJECTS), n)
    sizes = rng.integers(0, len(SIZES), n)
    bg_draw = rng.integers(0, 4, n)
    corner = rng.random((n, 2))
    scenes = []
    for i in range(n):
        obj = int(objs[i])
        allowed = [b for b in BACKGROUND_NAMES if b != held_out_background(obj)]
        bg = held_out_background(obj) if split == "held_out" and i % 2 == 0 else allowed[int(bg_draw[i])]
        size = SIZE_NAMES[int(sizes[i])]
        room = IMAGE_SIZE - SIZES[size]
        x, y = (int(round(c * room)) for c in corner[i])
        scenes.append(Scene(obj, size, bg, x, y))
    return scenes


@lru_cache(maxsize=1)
def _atlas() -> np.ndarray:
    """The atlas as (48, 64, 64, 4) uint8 RGBA, checked against the checksum in ``emoji_atlas.json``."""
    from PIL import Image

    png = ATLAS_DIR / "emoji_atlas.png"
    info = json.loads((ATLAS_DIR / "emoji_atlas.json").read_text(encoding="utf-8"))
    data = png.read_bytes()
    if hashlib.sha256(data).hexdigest() != info["png_sha256"]:
        raise RuntimeError(f"{png} does not match its checksum; rebuild it with tools/build_emoji_atlas.py")
    if [o["name"] for o in info["objects"]] != list(OBJECT_NAMES):
        raise RuntimeError(f"{png} holds other objects than helpers.teaching.scenes.OBJECTS; rebuild it")
    sheet = np.asarray(Image.open(png).convert("RGBA"))
    cell = info["cell"]
    return np.stack([sheet[(i // ATLAS_COLUMNS) * cell:(i // ATLAS_COLUMNS + 1) * cell,
                           (i % ATLAS_COLUMNS) * cell:(i % ATLAS_COLUMNS + 1) * cell] for i in range(len(OBJECTS))])


@cache
def _glyph(obj: int, px: int) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied RGB float32 (px, px, 3), alpha (px, px, 1)) of one glyph, resized with premultiplied
    alpha (so edges do not pick up the transparent pixels' colour)."""
    from PIL import Image

    im = Image.fromarray(_atlas()[obj], "RGBA").convert("RGBa").resize((px, px), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[..., :3], arr[..., 3:]


def render(scenes: Sequence[Scene]) -> torch.Tensor:
    """Scenes → (N, 3, 32, 32) float32 RGB in [0, 1] (alpha-composited glyph over the background)."""
    out = np.empty((len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for i, s in enumerate(scenes):
        out[i] = np.asarray(BACKGROUNDS[s.background], dtype=np.float32) / 255.0
        rgb, alpha = _glyph(s.obj, SIZES[s.size])
        px = SIZES[s.size]
        region = out[i, s.y:s.y + px, s.x:s.x + px]
        out[i, s.y:s.y + px, s.x:s.x + px] = rgb + (1 - alpha) * region
    return torch.from_numpy(out).permute(0, 3, 1, 2).clamp(0, 1).contiguous()


@dataclass(frozen=True)
class SceneSet:
    """Rendered scenes with their ground truth as tensors: ``images`` (N, 3, 32, 32) in [0, 1], ``objects``,
    ``sizes`` (0 small, 1 big), ``backgrounds`` (index into ``BACKGROUND_NAMES``), and the scenes."""

    scenes: tuple[Scene, ...]
    images: torch.Tensor

    @property
    def objects(self) -> torch.Tensor:
        return torch.tensor([s.obj for s in self.scenes])

    @property
    def sizes(self) -> torch.Tensor:
        return torch.tensor([SIZE_NAMES.index(s.size) for s in self.scenes])

    @property
    def backgrounds(self) -> torch.Tensor:
        return torch.tensor([BACKGROUND_NAMES.index(s.background) for s in self.scenes])

    @property
    def families(self) -> torch.Tensor:
        return torch.tensor([FAMILIES.index(s.family) for s in self.scenes])

    @property
    def unseen(self) -> torch.Tensor:
        """True where the scene's object-background pair never occurs in training."""
        return torch.tensor([s.background == held_out_background(s.obj) for s in self.scenes])

    def captions(self, seed: int | None = None) -> list[str]:
        """Full captions, or (``seed`` given) training captions with the size / background left out at
        the rates ``DROP_SIZE`` / ``DROP_BACKGROUND``."""
        if seed is None:
            return [s.caption() for s in self.scenes]
        rng = np.random.default_rng(seed)
        keep = rng.random((len(self.scenes), 2)) >= (DROP_SIZE, DROP_BACKGROUND)
        return [s.caption(size=bool(k[0]), background=bool(k[1])) for s, k in zip(self.scenes, keep)]

    def __len__(self) -> int:
        return len(self.scenes)


@lru_cache(maxsize=2)
def load_split(split: str = "train") -> SceneSet:
    """The fixed ``"train"`` (24,000 scenes) or ``"held_out"`` (1,000, half on unseen object-background
    pairs) split, rendered."""
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    n = TRAIN_SCENES if split == "train" else HELD_OUT_SCENES
    scenes = tuple(sample_scenes(n, _SPLIT_SEEDS[split], split=split))
    return SceneSet(scenes, render(scenes))


def fresh_scenes(n: int, seed: int, *, split: str = "held_out") -> SceneSet:
    """``n`` new ground-truth scenes from their own ``seed`` (for fitting judges; never the training split)."""
    scenes = tuple(sample_scenes(n, 7_919 * (seed + 1) + 17, split=split))
    return SceneSet(scenes, render(scenes))


def example_scenes(objects: Sequence[int | str], *, seed: int = 0, size: str = "big",
                   background: str = "white") -> SceneSet:
    """One scene per object (index or name): ``size`` on ``background``, at a position drawn from ``seed``
    (the notebooks' example images; every such pair of object and background occurs in training, these exact
    pictures need not)."""
    rng = np.random.default_rng(10_007 + seed)
    room = IMAGE_SIZE - SIZES[size]
    out = []
    for obj in objects:
        index = object_index(obj) if isinstance(obj, str) else int(obj)
        x, y = (int(v) for v in rng.integers(0, room + 1, 2))
        out.append(Scene(index, size, background, x, y))
    return SceneSet(tuple(out), render(out))
