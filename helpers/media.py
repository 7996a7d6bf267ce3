"""Media: frames → pictures, GIFs, MP4s, contact sheets and inline animations.

The last stage of the data flow. Every function here accepts frames in any of these forms:

* a ``PIL.Image.Image`` (any mode; converted to ``L``, ``RGB`` or ``RGBA``);
* a numpy array ``HxW`` (grey) or ``HxWxC`` with ``C`` in 1, 3, 4:
  ``uint8`` (or another integer type) with values in ``0..255``, ``bool``, or floating point with values
  in ``[0, 1]`` (what diffusers returns with ``output_type="np"``);
* a torch tensor ``CxHxW`` (or ``HxW``) with float values in ``[0, 1]`` (``output_type="pt"``) or
  ``uint8`` values in ``0..255``; any device and dtype;
* for the functions taking several frames: a list/tuple/iterable of the above, a batch
  (``NxHxWxC`` array, ``NxCxHxW`` tensor), or a diffusers pipeline output (its ``.images`` are used).

Floats may overshoot ``[0, 1]`` by at most ``FLOAT_TOLERANCE`` (rounding noise; clipped); anything further
out, NaN or inf is refused with a ``ValueError`` that says how to fix it (e.g. ``(x + 1) / 2`` for
``[-1, 1]`` tensors). Every file is written through :func:`atomic_write`: a failed export never leaves a
half-written file and never damages an existing one.

Introduced in notebook 01_diffusion_basics.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageOps

from helpers.checks import check_int, check_real

FLOAT_TOLERANCE = 1e-3
"""How far float frames may stray outside ``[0, 1]`` before :func:`to_pil` refuses them (then clipped)."""

GIF_MAX_FPS = 50
"""GIF delays are stored in 1/100 s and browsers slow down delays under 20 ms: 50 fps is the real ceiling."""

_CHANNELS_TO_MODE = {1: "L", 3: "RGB", 4: "RGBA"}

PathLike = str | os.PathLike

__all__ = [
    "FLOAT_TOLERANCE",
    "GIF_MAX_FPS",
    "InlineAnimation",
    "alpha_on_white",
    "atomic_write",
    "check_fps",
    "export_gif",
    "export_mp4",
    "image_grid",
    "load_image",
    "max_image_pixels",
    "part_file_pattern",
    "save_image",
    "show",
    "to_pil",
    "to_pil_list",
]


# --------------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------------


def _torch_tensor_type() -> type | None:
    """``torch.Tensor`` if torch is already imported, else ``None`` (a tensor cannot exist without it)."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def _is_tensor(x: Any) -> bool:
    tensor_type = _torch_tensor_type()
    return tensor_type is not None and isinstance(x, tensor_type)


def _check_channels(c: int, other: int, shape: tuple[int, ...], frame: str, swapped: str) -> None:
    """Refuse a frame whose channel axis (``c``) is not 1, 3 or 4, with a hint when its axes look swapped
    (``other``, the side at the channels' usual place, would fit and ``c`` is too many for channels)."""
    if c not in _CHANNELS_TO_MODE:
        hint = f" It looks {swapped}." if other in _CHANNELS_TO_MODE and c > 4 else ""
        raise ValueError(f"{frame} needs 1, 3 or 4 channels; got shape {shape}.{hint}")


def _tensor_to_hwc(t: Any) -> np.ndarray:
    """A ``HxW`` / ``CxHxW`` tensor as a ``HxW`` / ``HxWxC`` numpy array (detached, on the CPU)."""
    torch = sys.modules["torch"]
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # numpy has no bf16
    if t.ndim == 3:
        c, _, w = t.shape
        _check_channels(c, w, tuple(t.shape), "A CxHxW tensor frame",
                        "channels-last (HxWxC); torch frames are CxHxW: use t.permute(2, 0, 1)")
        t = t.permute(1, 2, 0)
    elif t.ndim != 2:
        raise ValueError(
            f"A tensor frame must be CxHxW or HxW; got {t.ndim} dimensions, shape {tuple(t.shape)}. "
            "For a batch (NxCxHxW) use to_pil_list."
        )
    return t.numpy()


def _range_hint(lo: float, hi: float) -> str:
    if lo >= -1 - FLOAT_TOLERANCE and hi <= 1 + FLOAT_TOLERANCE:
        return " This looks like a [-1, 1] image (e.g. a raw VAE output): pass (x + 1) / 2."
    if lo >= -FLOAT_TOLERANCE and hi <= 255 + FLOAT_TOLERANCE:
        return " This looks like a 0..255 image stored as floats: pass x / 255, or x.astype(np.uint8)."
    return " Rescale it into [0, 1] first, e.g. (x - x.min()) / (x.max() - x.min())."


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Pixel values of ``a`` as ``uint8``, checking the documented ranges."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    lo: float  # an int for integer frames
    hi: float
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"Integer frame values must be in 0..255; got min {lo}, max {hi} ({a.dtype}). "
                "For 16-bit images divide by 257; for other data rescale into 0..255 or floats in [0, 1]."
            )
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32 if a.dtype.itemsize <= 4 else np.float64)
        finite = np.isfinite(a)
        if not finite.all():
            bad = int((~finite).sum())
            raise ValueError(
                f"Frame contains NaN or inf values ({bad} of {a.size}). Usually the sampler diverged "
                "(fp16 overflow, a too-large guidance scale or an unnormalised latent); check the latents."
            )
        lo, hi = float(a.min()), float(a.max())
        if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
            raise ValueError(
                f"Float frame values must be in [0, 1]; got min {lo:.4g}, max {hi:.4g}.{_range_hint(lo, hi)}"
            )
        return np.rint(np.clip(a, 0.0, 1.0) * 255).astype(np.uint8)
    raise TypeError(f"Frame arrays must hold numbers (uint8, bool, int or float); got dtype {a.dtype}.")


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 3:
        h, _, c = a.shape
        _check_channels(c, h, a.shape, "An HxWxC frame",
                        "channels-first (CxHxW); numpy frames are HxWxC: use a.transpose(1, 2, 0)")
        if c == 1:
            a = a[..., 0]
    elif a.ndim != 2:
        extra = " For a batch (NxHxWxC) use to_pil_list." if a.ndim == 4 else ""
        raise ValueError(
            f"A frame array must be HxW or HxWxC; got {a.ndim} dimensions, shape {a.shape}.{extra}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"A frame must have at least one pixel; got shape {a.shape}.")
    return Image.fromarray(np.ascontiguousarray(_to_uint8(a)))


def _normalise_pil_mode(im: Image.Image) -> Image.Image:
    if im.mode in ("L", "RGB", "RGBA"):
        return im
    if im.mode.startswith(("I", "F")):  # 16/32-bit integer or float greyscale: Pillow's convert() clips to 255
        return _wide_grey_to_l(im)
    if im.mode == "1":
        return im.convert("L")
    if "A" in im.getbands() or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB")


def alpha_on_white(im: Image.Image) -> Image.Image:
    """``im`` with its transparent pixels put on white: an ``RGB`` image (``L`` for a greyscale one without
    alpha). Any mode works (palette transparency, ``LA``, 16-bit grey ...). What :func:`load_image` and
    :func:`helpers.morph.prepare_images` do, so a transparent background never turns black.
    Introduced in notebook 03_unclip_image_interpolation."""
    im = _normalise_pil_mode(im)
    if im.mode != "RGBA":
        return im
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB")


def _wide_grey_to_l(im: Image.Image) -> Image.Image:
    """A 16-bit ("I;16"), 32-bit integer ("I") or float ("F") greyscale image as 8-bit "L", scaled by its
    format's range: 0..65535 for 16-bit PNG/TIFF, 0..1 for float images whose values lie there (else
    0..255), 0..65535 for 32-bit integers up to 65535 (Pillow opens 16-bit PNGs so) and 0..2**32-1 beyond."""
    arr = np.asarray(im, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"the {im.mode} image contains NaN or infinite pixels")
    if im.mode == "F":
        top = 1.0 if arr.min() >= 0 and arr.max() <= 1 else 255.0
    elif im.mode.startswith("I;16") or arr.max() <= 65535:
        top = 65535.0
    else:
        top = 2.0**32 - 1
    return Image.fromarray(np.clip(np.rint(arr / top * 255.0), 0, 255).astype(np.uint8), mode="L")


def to_pil(frame: Any) -> Image.Image:
    """One frame as a ``PIL.Image.Image`` in mode ``L``, ``RGB`` or ``RGBA``.

    Accepts the forms listed in the module docstring (a batch of exactly one frame is unwrapped).
    Raises ``ValueError`` for wrong shapes, NaN/inf and values outside the documented ranges, and
    ``TypeError`` for things that are not frames. Introduced in notebook 01_diffusion_basics.
    """
    if isinstance(frame, Image.Image):
        return _normalise_pil_mode(frame)
    if _is_tensor(frame):
        if frame.ndim == 4 and frame.shape[0] == 1:
            frame = frame[0]
        elif frame.ndim == 4:
            raise ValueError(f"to_pil takes one frame; got a batch of {frame.shape[0]}. Use to_pil_list.")
        return _array_to_pil(_tensor_to_hwc(frame))
    if isinstance(frame, np.ndarray):
        if frame.ndim == 4 and frame.shape[0] == 1:
            frame = frame[0]
        elif frame.ndim == 4:
            raise ValueError(f"to_pil takes one frame; got a batch of {frame.shape[0]}. Use to_pil_list.")
        return _array_to_pil(frame)
    if isinstance(frame, (list, tuple)):
        raise TypeError(
            f"to_pil takes one frame; got a {type(frame).__name__} of {len(frame)}. Use to_pil_list."
        )
    if isinstance(frame, (str, os.PathLike)):
        raise TypeError(f"to_pil takes pixels, not a path ({frame!s}); open files with load_image.")
    raise TypeError(
        f"Cannot turn a {type(frame).__name__} into an image; expected a PIL image, a numpy array "
        "(HxWxC) or a torch tensor (CxHxW)."
    )


def _is_single(x: Any) -> bool:
    return isinstance(x, Image.Image) or ((isinstance(x, np.ndarray) or _is_tensor(x)) and x.ndim in (2, 3))


def _is_batch(x: Any) -> bool:
    return (isinstance(x, np.ndarray) or _is_tensor(x)) and x.ndim == 4


def to_pil_list(frames: Any) -> list[Image.Image]:
    """Several frames as a list of PIL images (see the module docstring for the accepted forms).

    A single frame gives a one-element list; the items of a list may themselves be batches (they are
    concatenated, handy for frames rendered in chunks). Raises ``ValueError`` for an empty input.
    Introduced in notebook 01_diffusion_basics.
    """
    if _is_single(frames):
        return [to_pil(frames)]
    if _is_batch(frames):
        items: Iterable[Any] = list(frames)
    elif isinstance(frames, np.ndarray) or _is_tensor(frames):
        raise ValueError(
            f"Frames must be one frame (HxW, HxWxC / CxHxW) or a batch (NxHxWxC / NxCxHxW); "
            f"got shape {tuple(frames.shape)}."
        )
    elif isinstance(frames, (str, bytes, os.PathLike)):
        raise TypeError(f"Expected frames, got a path or string ({frames!r}); open files with load_image.")
    elif not isinstance(frames, (list, tuple)) and getattr(frames, "images", None) is not None:
        return to_pil_list(frames.images)  # a diffusers pipeline output
    elif isinstance(frames, Iterable):
        items = frames
    else:
        raise TypeError(f"Expected a frame, a batch or a list of frames; got a {type(frames).__name__}.")
    out: list[Image.Image] = []
    for item in items:
        if _is_batch(item):
            out.extend(to_pil(f) for f in item)
        else:
            out.append(to_pil(item))
    if not out:
        raise ValueError("No frames were given (the list or batch is empty).")
    return out


def _scaled(im: Image.Image, scale: int) -> Image.Image:
    return im if scale == 1 else im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)


def _check_scale(scale: int) -> int:
    return check_int("scale", scale, low=1, hint="it upscales frames by a whole factor (nearest-neighbour)")


def max_image_pixels() -> int:
    """The most pixels one picture written here may have: Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million), so every file written opens again, in :func:`load_image`
    too. Checked before any pixel is allocated."""
    return int(Image.MAX_IMAGE_PIXELS or 2**31 - 1)


def _check_pixels(width: int, height: int, what: str, fix: str) -> None:
    """Refuse a picture of ``width`` x ``height`` beyond :func:`max_image_pixels`, before it is allocated."""
    if width * height > max_image_pixels():
        raise ValueError(f"{what} would be {width}x{height} = {width * height:.3g} pixels, more than the "
                         f"{max_image_pixels():,} an image may have (Pillow's decompression-bomb limit); {fix}.")


def _animation_frames(frames: Any, scale: int = 1) -> list[Image.Image]:
    """Frames of one animation: RGB (alpha dropped), all the same size, optionally upscaled."""
    _check_scale(scale)
    ims = [im.convert("RGB") for im in to_pil_list(frames)]
    size = ims[0].size
    for i, im in enumerate(ims):
        if im.size != size:
            raise ValueError(
                f"All frames of an animation must have the same size: frame 0 is {size[0]}x{size[1]} "
                f"but frame {i} is {im.width}x{im.height} (width x height). Resize them, or use image_grid."
            )
    if scale > 1:
        _check_pixels(size[0] * scale, size[1] * scale, f"a frame upscaled {scale}x", "use a smaller scale")
    return [_scaled(im, scale) for im in ims]


class FrameFiles(Sequence):
    """Frames saved as image files, opened one at a time when indexed (RGB PIL images): an animation of
    thousands of frames is written without holding them all in memory. Introduced in notebook 04_prompt_walks."""

    def __init__(self, paths: Sequence[PathLike]):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("No frames were given (the list of frame files is empty).")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return FrameFiles(self.paths[i])
        with Image.open(self.paths[i]) as im:
            return im.convert("RGB")


def _streamed_frames(frames: FrameFiles, scale: int) -> Iterator[Image.Image]:
    """:func:`_animation_frames` for frame files, one frame at a time."""
    _check_scale(scale)
    size = None
    for i in range(len(frames)):
        im = frames[i]
        if size is None:
            size = im.size
            if scale > 1:
                _check_pixels(size[0] * scale, size[1] * scale, f"a frame upscaled {scale}x", "use a smaller scale")
        elif im.size != size:
            raise ValueError(f"All frames of an animation must have the same size: frame 0 is {size[0]}x{size[1]} "
                             f"but frame {i} is {im.width}x{im.height} (width x height).")
        yield _scaled(im, scale)


def _pingpong(frames: list[Image.Image]) -> list[Image.Image]:
    """``0..n-1`` then ``n-2..1``: loops forward and back without showing either endpoint twice."""
    return frames + frames[-2:0:-1]


# --------------------------------------------------------------------------------------------------
# Safe writing
# --------------------------------------------------------------------------------------------------

def _part_name(target: Path) -> str:
    """A fresh temporary name for ``target``: ``.<stem, at most 64 characters>.<8 hex digits>.part<suffix>``."""
    return f".{target.stem[:64]}.{secrets.token_hex(4)}.part{target.suffix}"


def part_file_pattern(name: str) -> re.Pattern[str]:
    """The names of the temporary files :func:`atomic_write` makes while writing the file ``name`` (for
    ``walk.gif``: ``.walk.<8 hex digits>.part.gif``). A writer killed midway (SIGKILL, power loss) leaves one
    behind; a cleaner that matches this pattern in the folder removes exactly those, never a user's file."""
    target = Path(name)
    return re.compile(rf"\.{re.escape(target.stem[:64])}\.[0-9a-f]{{8}}\.part{re.escape(target.suffix)}")


def _writable_target(path: PathLike) -> Path:
    """``path`` (``~`` expanded) if a file can be written there: not a folder, and no file where one of its
    folders would go. Otherwise one clear error (``IsADirectoryError`` / ``NotADirectoryError``), before any
    work."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as {target / 'walk.gif'}.")
    for parent in target.parents:
        if parent.is_dir():
            break
        if parent.exists() or parent.is_symlink():
            raise NotADirectoryError(f"{parent} is a file, not a folder, so {target.name} cannot be written inside "
                                     "it; choose another folder (or move that file away).")
    return target


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file lives in the same folder (so the final ``os.replace`` is atomic), is hidden and ends with
    the same suffix (so encoders that pick the format from the name still work): its name matches
    :func:`part_file_pattern`. It is created as a plain
    ``open(path, "w")`` would create it (the umask applies), and a file it replaces keeps its permissions. If
    the block raises anything (including ``KeyboardInterrupt``), the temporary file is deleted and an existing
    ``path`` is left untouched. Parent folders are created. Introduced in notebook 04_prompt_walks; every
    writer in :mod:`helpers.media` and the resumable renderer use it.
    """
    target = _writable_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a fresh name, created exclusively (as mkstemp does, but with the umask's permissions)
        tmp = target.parent / _part_name(target)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        if target.exists():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------
# GIF
# --------------------------------------------------------------------------------------------------


def _check_suffix(path: PathLike, allowed: tuple[str, ...], what: str) -> Path:
    target = Path(path).expanduser()
    if target.suffix.lower() not in allowed:
        raise ValueError(f"{what} needs a file name ending in {' or '.join(allowed)}; got {target.name!r}.")
    return _writable_target(target)


def check_fps(fps: Any) -> float:
    """``fps`` as a float if it is a finite number above 0 (NumPy scalars too); else one ``ValueError``."""
    return check_real("fps", fps, low=0, low_open=True, hint="frames per second, e.g. 8")


def _gif_duration_ms(fps: float) -> int:
    """Milliseconds per GIF frame: ``1000 / fps`` rounded to the format's 10 ms steps."""
    fps = check_fps(fps)
    if fps > GIF_MAX_FPS:
        raise ValueError(
            f"A GIF cannot play at {fps:g} fps: delays are stored in 1/100 s and browsers slow down delays under "
            f"20 ms. Use fps <= {GIF_MAX_FPS}, or export_mp4 for higher frame rates."
        )
    centiseconds = max(2, round(100 / fps))
    if centiseconds > 65535:
        raise ValueError(f"fps={fps:g} is too slow for a GIF (at most 655 s per frame).")
    return centiseconds * 10


def _check_loop(loop: int | None) -> int | None:
    if loop is not None and (isinstance(loop, bool) or not isinstance(loop, int) or not 0 <= loop <= 65535):
        raise ValueError(
            f"loop must be 0 (forever), a repeat count up to 65535, or None (play once); got {loop!r}."
        )
    return loop


def _keep_repeat(frame: Image.Image) -> Image.Image:
    """A copy of palette frame ``frame`` that looks the same over it but is not byte-identical.

    Pillow merges consecutive identical GIF frames into one longer frame. To keep the frame count, a
    repeated frame gets one transparent pixel (palette index 255, left free by quantising to 255 colours);
    with disposal 1 ("leave in place") that pixel shows the identical frame below it.
    """
    out = frame.copy()
    palette = (out.getpalette() or [])[: 255 * 3]
    out.putpalette(palette + [0] * (768 - len(palette)))
    out.putpixel((0, 0), 255)
    out.info["transparency"] = 255
    return out


def _quantise(im: Image.Image) -> Image.Image:
    """An RGB frame as a palette image of at most 255 colours (index 255 stays free for repeats): median cut,
    exact when the frame has at most 255 colours; no dithering, whose noise would shimmer between frames."""
    return im.quantize(255, method=Image.Quantize.MEDIANCUT)


def _write_gif(ims: list[Image.Image], fp: Any, *, duration: int, loop: int | None) -> None:
    """Encode RGB frames as a GIF into ``fp`` (a path or a binary file), keeping every frame."""
    paletted: list[Image.Image] = []
    previous_rgb: bytes | None = None
    for im in ims:
        p = _quantise(im)
        rgb = p.convert("RGB").tobytes()
        if rgb == previous_rgb and "transparency" not in paletted[-1].info:
            p = _keep_repeat(p)
        paletted.append(p)
        previous_rgb = rgb
    options: dict[str, Any] = {"duration": duration, "disposal": 1}
    if loop is not None:
        options["loop"] = loop
    paletted[0].save(fp, format="GIF", save_all=True, append_images=paletted[1:], **options)


def export_gif(
    frames: Any,
    path: PathLike,
    *,
    fps: float = 10,
    loop: int | None = 0,
    pingpong: bool = False,
    scale: int = 1,
) -> Path:
    """Write ``frames`` as an animated GIF (Pillow) and return its path.

    ``fps`` ≤ 50; each frame lasts ``1000 / fps`` ms rounded to the GIF's 10 ms steps (24 fps plays at
    25). ``loop=0`` loops forever, ``loop=n`` repeats n more times, ``None`` plays once. ``pingpong``
    appends the frames backwards without repeating the endpoints (0..n-1, n-2..1), so a looping walk
    has no stutter. ``scale`` upscales with nearest-neighbour (for 8x8 or 16x16 frames). Frames are
    quantised to 255 colours each; alpha is dropped; every frame is kept, repeated ones included.
    Written atomically. Introduced in notebook 02_slerp_and_latent_geometry.
    """
    target = _check_suffix(path, (".gif",), "export_gif")
    duration = _gif_duration_ms(fps)
    _check_loop(loop)
    ims = _animation_frames(frames, scale)
    if pingpong:
        ims = _pingpong(ims)
    with _export_errors(target), atomic_write(target) as tmp:
        _write_gif(ims, tmp, duration=duration, loop=loop)
        _verify_frames(tmp, len(ims), target)
    return target


class ExportError(OSError):
    """An animation did not read back with all its frames (a full disk, a failing encoder); the file that was
    there before is untouched."""


@contextlib.contextmanager
def _export_errors(target: Path) -> Iterator[None]:
    """Turn an operating-system error while writing an animation into one :class:`ExportError`."""
    try:
        yield
    except ExportError:
        raise
    except OSError as exc:
        raise ExportError(f"writing {target} failed ({exc.strerror or exc}). Nothing was replaced: free some "
                          "space or choose another folder, then export again.") from None


def _count_frames(path: Path) -> int | None:
    """Frames in an animation file as a reader sees them (``None``: unreadable)."""
    try:
        if path.suffix.lower() == ".gif":
            with Image.open(path) as im:
                return int(getattr(im, "n_frames", 1))
        import imageio.v2 as iio

        with iio.get_reader(path, format="FFMPEG") as reader:
            return int(reader.count_frames())  # type: ignore[attr-defined]  # typed as the base reader
    except Exception:  # any decoder failure means the file is not what we wrote
        return None


def _verify_frames(tmp: Path, expected: int, target: Path) -> None:
    """Raise :class:`ExportError` unless ``tmp`` reads back with ``expected`` frames (before it replaces
    ``target``)."""
    found = _count_frames(tmp)
    if found != expected:
        free = shutil.disk_usage(tmp.parent).free
        raise ExportError(
            f"{target.name} did not read back: {'no readable frames' if found is None else f'{found} frames'} of "
            f"{expected} ({free // 1024} KiB free in {tmp.parent}; a full disk?). Nothing was replaced: free some "
            "space or choose another folder, then export again."
        )


# --------------------------------------------------------------------------------------------------
# MP4
# --------------------------------------------------------------------------------------------------


_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")  # ffmpeg picks the container from the suffix


def _pad_to_even(a: np.ndarray) -> np.ndarray:
    """Repeat the last row/column when a side is odd: yuv420p H.264 needs even sides."""
    h, w = a.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return a
    return np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def export_mp4(
    frames: Any,
    path: PathLike,
    *,
    fps: float = 24,
    quality: float = 8,
    pingpong: bool = False,
    scale: int = 1,
    audio: PathLike | None = None,
) -> Path:
    """Write ``frames`` as an H.264 MP4 (imageio's ffmpeg plugin) and return its path.

    ``quality`` goes from 1 (smallest file) to 10 (imageio maps it to x264's CRF: 8 ≈ CRF 10). 10 is
    lossless but needs the High 4:4:4 Predictive profile, which many browsers and phones cannot play; up to
    9 the file stays in the widely playable High profile.
    The picture is never resampled: frames keep their size (32x32 and even 2x2 work), except that an odd
    width or height gets one repeated edge row/column, because the widely playable yuv420p format needs
    even sides. ``pingpong`` and ``scale`` are as in :func:`export_gif`. Alpha is dropped. Written
    atomically (``-movflags +faststart`` so browsers can start playing at once). The name must end in
    ``.mp4`` (or ``.mov``, ``.mkv``: ffmpeg picks the container from it). ``audio``: a sound file (anything
    ffmpeg decodes) that becomes the video's AAC sound track, cut to the video's length. :class:`FrameFiles`
    are read one at a time, so a long walk never sits in memory whole.
    Introduced in notebook 04_prompt_walks (the sound track in 09_timelines_and_music).
    """
    import imageio.v2 as iio  # imported here: imageio and its ffmpeg binary are only needed for MP4

    target = _check_suffix(path, _VIDEO_SUFFIXES, "export_mp4")
    fps = check_fps(fps)
    if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 1 <= quality <= 10:
        raise ValueError(f"quality must be a number from 1 (smallest file) to 10 (best); got {quality!r}.")
    if audio is not None and not Path(audio).expanduser().is_file():
        raise ValueError(f"no audio file at {str(audio)!r} for the MP4's sound track")
    ims: Sequence[Image.Image] | Iterator[Image.Image]
    if isinstance(frames, FrameFiles):
        order = list(range(len(frames))) + (list(range(len(frames) - 2, 0, -1)) if pingpong else [])
        count = len(order)
        ims = _streamed_frames(FrameFiles([frames.paths[i] for i in order]), scale)
    else:
        ims = _animation_frames(frames, scale)
        if pingpong:
            ims = _pingpong(ims)
        count = len(ims)
    sound: dict[str, Any] = {}
    params = ["-movflags", "+faststart"]
    if audio is not None:
        sound = {"audio_path": str(Path(audio).expanduser()), "audio_codec": "aac"}
        params += ["-t", f"{count / fps:.6f}"]  # the sound track ends with the last frame
    with _export_errors(target), atomic_write(target) as tmp:
        writer = iio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            quality=quality,
            pixelformat="yuv420p",
            macro_block_size=1,  # no resizing: we pad odd sides ourselves
            ffmpeg_log_level="error",
            output_params=params,
            **sound,
        )
        try:
            for im in ims:
                writer.append_data(_pad_to_even(np.asarray(im)))
        finally:
            writer.close()
        _verify_frames(tmp, count, target)
    return target


def stream_seconds(path: PathLike) -> dict[str, float]:
    """How long each kind of stream in a video file plays, e.g. ``{"video": 4.0, "audio": 4.0}``: one pass of
    ffmpeg (the binary imageio uses) decodes the first video and audio stream and lists every frame's
    timestamp and duration (its ``framecrc`` output); a stream plays until its last frame ends. A kind the
    file lacks (or that decodes to no frame) is left out; an unreadable file gives ``{}``."""
    import subprocess
    from fractions import Fraction

    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-i", str(path), "-map", "0:v:0?", "-map",
                           "0:a:0?", "-c:v", "wrapped_avframe", "-f", "framecrc", "-"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {}
    kinds = dict(re.findall(r"^#media_type (\d+): (video|audio)$", proc.stdout, flags=re.MULTILINE))
    bases = {i: Fraction(tb) for i, tb in re.findall(r"^#tb (\d+): (\d+/\d+)$", proc.stdout, flags=re.MULTILINE)}
    out: dict[str, float] = {}
    for index, pts, duration in re.findall(r"^(\d+), *-?\d+, *(-?\d+), *(\d+),", proc.stdout, flags=re.MULTILINE):
        if index in kinds:
            end = float((int(pts) + int(duration)) * bases[index])
            out[kinds[index]] = max(end, out.get(kinds[index], end))
    return out


# --------------------------------------------------------------------------------------------------
# Still images
# --------------------------------------------------------------------------------------------------


def _parse_colour(colour: Any, name: str) -> tuple[int, ...]:
    if isinstance(colour, str):
        try:
            return ImageColor.getrgb(colour)
        except ValueError:
            raise ValueError(
                f"{name}={colour!r} is not a colour Pillow knows (try 'white' or '#202020')."
            ) from None
    if (
        isinstance(colour, (tuple, list))
        and len(colour) in (3, 4)
        and all(0 <= int(c) <= 255 for c in colour)
    ):
        return tuple(int(c) for c in colour)
    raise ValueError(f"{name} must be a colour name, '#rrggbb' or an (r, g, b) tuple; got {colour!r}.")


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text``, shortened with '...' until it fits in ``width`` pixels (may become empty)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..." if text else ""


def image_grid(
    frames: Any,
    cols: int | None = None,
    *,
    labels: Sequence[Any] | None = None,
    pad: int = 2,
    bg: Any = "white",
    scale: int = 1,
    font_size: float = 12,
    label_color: Any = None,
) -> Image.Image:
    """A contact sheet of ``frames`` as one RGB image.

    ``cols`` defaults to one row for up to 8 frames and to ``ceil(sqrt(n))`` columns beyond (never more
    columns than frames). Every cell is as large as the largest (upscaled by ``scale``) frame, which is
    centred in it; cells are ``pad`` pixels apart and from the border, on ``bg``. With ``labels`` (one per
    frame; ``None`` for none) a strip of text in Pillow's default font goes under each tile; labels too
    long for the tile are shortened with '...'. Size: ``cols*w + (cols+1)*pad`` by
    ``rows*(h + label_height) + (rows+1)*pad``. Introduced in notebook 01_diffusion_basics.
    """
    scale = _check_scale(scale)
    pad = check_int("pad", pad, low=0, hint="pixels between the tiles and around them")
    if cols is not None:
        cols = check_int("cols", cols, low=1, hint="or None for automatic")
    if labels is not None:
        font_size = check_real("font_size", font_size, low=1, high=1000)
    originals = to_pil_list(frames)
    n = len(originals)
    if cols is None:
        cols = n if n <= 8 else math.ceil(math.sqrt(n))
    if labels is not None and len(labels) != n:
        raise ValueError(
            f"Got {len(labels)} labels for {n} frames; give one label per frame (None for none)."
        )
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    background = _parse_colour(bg, "bg")[:3]
    cell_w = max(t.width for t in originals) * scale
    cell_h = max(t.height for t in originals) * scale

    font: Any = None
    label_h = 0
    if labels is not None:
        font = ImageFont.load_default(size=font_size)
        left, top, right, bottom = font.getbbox("Ag|")
        label_h = int(bottom) + 2
        if label_color is None:
            luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
            label_color = (0, 0, 0) if luminance > 127 else (255, 255, 255)
        text_rgb = _parse_colour(label_color, "label_color")[:3]
    _check_pixels(cols * cell_w + (cols + 1) * pad, rows * (cell_h + label_h) + (rows + 1) * pad, "the sheet",
                  "use a smaller pad or scale, or fewer frames per sheet")
    tiles = [_scaled(im, scale) for im in originals]

    from diffusers.utils import make_image_grid  # imported here: helpers.media stays cheap to import

    cells = []
    for i in range(rows * cols):  # one cell per grid slot: top-left padding, the tile centred, its label below
        cell = Image.new("RGB", (cell_w + pad, cell_h + label_h + pad), background)
        if i < n:
            tile = tiles[i]
            at = (pad + (cell_w - tile.width) // 2, pad + (cell_h - tile.height) // 2)
            cell.paste(tile.convert("RGB"), at, mask=tile.getchannel("A") if tile.mode == "RGBA" else None)
            if labels is not None and labels[i] is not None:
                draw = ImageDraw.Draw(cell)
                text = _fit_text(draw, str(labels[i]), font, cell_w)
                x = pad + (cell_w - draw.textlength(text, font=font)) / 2
                draw.text((x, pad + cell_h + 1), text, fill=text_rgb, font=font)
        cells.append(cell)
    grid = make_image_grid(cells, rows=rows, cols=cols)
    return ImageOps.expand(grid, border=(0, 0, pad, pad), fill=background)  # the right and bottom margins


_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def save_image(frame_or_grid: Any, path: PathLike) -> Path:
    """Save one frame (any accepted form, e.g. an :func:`image_grid`) atomically; return the path.

    The format follows the suffix: ``.png`` (recommended, lossless), ``.jpg``/``.jpeg`` (alpha dropped),
    ``.webp``, ``.bmp``, ``.tif``. Introduced in notebook 01_diffusion_basics.
    """
    target = _writable_target(path)
    fmt = _SAVE_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot tell the image format from {target.name!r}; end the name with one of "
            f"{', '.join(sorted(_SAVE_FORMATS))} (.png is lossless)."
        )
    im = to_pil(frame_or_grid)
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    with atomic_write(target) as tmp:
        im.save(tmp, format=fmt)
    return target


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words (for the error that refuses it)."""
    for test, what in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "a special file"


def load_image(
    path: PathLike, *, size: int | tuple[int, int] | None = None, mode: str = "RGB"
) -> Image.Image:
    """Open a user's image file as a PIL image in ``mode`` (default ``"RGB"``), upright (EXIF rotation).

    ``size=512`` gives 512x512 and ``size=(w, h)`` gives exactly w x h: the image is centre-cropped to
    that aspect ratio and resized (never stretched). Animated files give their first frame. Transparent pixels
    are put on white for ``"RGB"`` and ``"L"`` (:func:`alpha_on_white`); ``"RGBA"`` keeps them. Every pixel is
    decoded here, so a file that loads is whole. A missing file raises ``FileNotFoundError``; anything else
    that is not a readable image (a folder, a URL, a named pipe, a corrupt or truncated file, a
    decompression bomb, i.e. more pixels than :func:`max_image_pixels` allows) one ``ValueError``, both naming
    the file. Introduced in notebook 03_unclip_image_interpolation.
    """
    if mode not in ("RGB", "RGBA", "L"):
        raise ValueError(f"mode must be 'RGB', 'RGBA' or 'L'; got {mode!r}.")
    wh = None
    if size is not None:
        pair = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
        if len(pair) != 2:
            raise ValueError(f"size must be a positive int or a (width, height) pair of ints; got {size!r}.")
        wh = (check_int("size", pair[0], low=1), check_int("size", pair[1], low=1))
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or pathlib.Path); got {type(path).__name__}.")
    if isinstance(path, str) and _URL.match(path):
        raise ValueError(f"URLs are not supported ({path!r}); download the image first and pass the path of the "
                         "file (in Colab: !wget URL, or upload it in the Files panel).")
    p = Path(path).expanduser()
    try:
        info = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"No image file at {str(p)!r} (looked in {str(p.resolve().parent)!r}). Check the name, or upload "
            "the file first (in Colab: the Files panel) and use a path relative to the notebook."
        ) from None
    except OSError as err:  # a path through a file, a loop of links, no permission
        raise ValueError(f"Cannot open {str(p)!r}: {err.strerror or err}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(
            f"{str(p)!r} is a folder, not an image file; give the path of a .png or .jpg inside it."
        )
    if not stat.S_ISREG(info.st_mode):  # checked before opening: reading a named pipe would block forever
        raise ValueError(f"{str(p)!r} is {_file_kind(info.st_mode)}, not an image file; give the path of a "
                         ".png or .jpg file.")
    try:
        with Image.open(p) as opened:  # opened here so that the file is closed (animated files stay open)
            opened.load()  # decode every pixel now: a corrupt stream fails here, not in a later step
            upright = ImageOps.exif_transpose(opened)
            if mode == "RGBA":
                im = _normalise_pil_mode(upright).convert("RGBA")
            else:
                im = alpha_on_white(upright).convert(mode)
    except Image.DecompressionBombError as err:
        raise ValueError(f"Refusing {str(p)!r}: {err} Shrink the image (or crop it) before loading it.") from None
    except Exception as err:  # any decoder failure (OSError, SyntaxError, struct.error, ...) means unreadable
        raise ValueError(
            f"Could not read {str(p)!r} as an image ({type(err).__name__}: {err}). Use a PNG, JPEG, WebP, "
            "BMP, GIF or TIFF file (any format Pillow can open)."
        ) from None
    if wh is not None:
        im = ImageOps.fit(im, wh, method=Image.Resampling.LANCZOS)
    return im


# --------------------------------------------------------------------------------------------------
# Inline display
# --------------------------------------------------------------------------------------------------


def _get_ipython() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # an odd IPython install must never break show()
        return None


class InlineAnimation:
    """An animation (or a still) ready to show in Jupyter; what :func:`show` returns.

    ``data`` holds the encoded GIF (or PNG for one frame); ``save(path)`` writes it. Jupyter shows it through
    ``IPython.display.Image``, ``width`` pixels wide.
    """

    def __init__(self, data: bytes, size: tuple[int, int], n_frames: int, fps: float, width: int):
        self.data = data
        self.size = size  # of the frames given to show(), before the crisp upscaling
        self.n_frames = n_frames
        self.fps = fps
        self.width = width
        self._displayed_in: int | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        from IPython.display import Image as IPythonImage

        return IPythonImage(data=self.data, width=self.width)._repr_mimebundle_(include, exclude)

    def _ipython_display_(self) -> None:
        ip = _get_ipython()
        if (
            ip is not None
            and self._displayed_in is not None
            and self._displayed_in == getattr(ip, "execution_count", None)
        ):
            # show() already displayed it in this cell; this is the cell's value being echoed.
            self._displayed_in = None
            return
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        display({**data, "text/plain": repr(self)}, metadata=metadata, raw=True)

    def __repr__(self) -> str:
        kind = f"{self.n_frames} frames at {self.fps:g} fps" if self.n_frames > 1 else "1 frame"
        return f"<InlineAnimation {kind}, {self.size[0]}x{self.size[1]}>"

    def save(self, path: PathLike) -> Path:
        """Write the encoded bytes (GIF, or PNG for a still) atomically."""
        target = Path(path).expanduser()
        with atomic_write(target) as tmp:
            tmp.write_bytes(self.data)
        return target


def show(
    frames: Any, *, fps: float = 10, pingpong: bool = False, width: int | None = None
) -> InlineAnimation:
    """Show frames inline in Jupyter as a looping GIF (one frame: a PNG) and return the display object.

    ``width`` is the displayed width in pixels; by default small frames are shown about 256 px wide. Frames
    are upscaled by a whole factor with nearest-neighbour before encoding, so small pixels stay crisp.
    Inside IPython the animation is displayed at once (also from loops); as a cell's last expression it is not
    shown twice. Outside Jupyter nothing is printed and nothing fails: use the returned object's ``data`` or
    ``save()``. Introduced in notebook 01_diffusion_basics.
    """
    duration = _gif_duration_ms(fps)
    ims = _animation_frames(frames)
    if pingpong:
        ims = _pingpong(ims)
    w, h = ims[0].size
    if width is None:
        width = w * max(1, 256 // w)
    else:
        width = check_int("width", width, low=1, hint="the displayed width in pixels, or None")
    factor = max(1, width // w)
    _check_pixels(w * factor, h * factor, f"a frame shown {width} px wide", "use a smaller width")
    ims = [_scaled(im, factor) for im in ims]
    buf = io.BytesIO()
    if len(ims) == 1:
        ims[0].save(buf, format="PNG")
    else:
        _write_gif(ims, buf, duration=duration, loop=0)
    anim = InlineAnimation(buf.getvalue(), (w, h), len(ims), fps, width)
    ip = _get_ipython()
    if ip is not None:
        from IPython.display import display

        display(anim)
        anim._displayed_in = getattr(ip, "execution_count", None)
    return anim
