"""Hostile and careless inputs to media, loading and the widgets: cases 118-138 and 162-197 of the second audit
(``shared/reviews/reliability-review-2026-12-06.md``, issue 30), one row per case.

Error rows assert the exception type, the key fact of its message and that no file outside the output folder
``out`` changed (a pickle or a model folder's code that ran would leave a file behind). Rows that behaved in the
audit assert what they did, so that they stay so. Every row runs under an alarm (a named pipe must not block);
rows that would ask for a huge picture also run under an address-space cap, so a regression is a MemoryError
here, not the kernel's OOM killer.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import resource
import shutil
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pytest
import torch
from ldm_checkpoint import ldm_state_dict
from PIL import Image
from test_hostile import ApiCase, _snapshot, world  # noqa: F401  (world: a fixture, used by name)

from helpers.backends import choose_backend
from helpers.media import export_gif, export_mp4, image_grid, load_image, part_file_pattern, save_image, show
from helpers.pipelines import ModelUnavailableError, load_pipeline, tiny_pipeline
from helpers.widgets import FrameExplorer, WalkExplorer

RED = Image.new("RGB", (32, 32), (250, 0, 0))
BLUE = Image.new("RGB", (32, 32), (0, 0, 250))
CPU = {"device": "cpu", "dtype": torch.float32}


# ------------------------------------------------------------------------------------------- hostile files


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes) -> bytes:
    """A PNG with valid chunk CRCs: its header says ``width`` x ``height``, its pixel data is ``idat``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


class _Evil:
    """Unpickling it creates ``path``: a file there means a checkpoint ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return open, (self.path, "w")


def _model_index(folder: Path, class_name: Any, **components: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": class_name, **components}))
    return folder


@pytest.fixture
def hostile(world: Path) -> Path:  # noqa: F811  (the imported fixture, by name)
    """The user's folder (``world``) plus the hostile files the rows open; the output folder is ``out``."""
    (world / "bomb.png").write_bytes(_png(100_000, 100_000, zlib.compress(b"")))  # 74 bytes claiming 10^10 pixels
    (world / "corrupt.png").write_bytes(_png(8, 8, b"this is not zlib data"))  # passes Image.verify()
    os.mkfifo(world / "fifo.png")
    clear = np.zeros((4, 4, 4), np.uint8)
    clear[0, 0] = (10, 20, 30, 255)  # one opaque pixel, the rest transparent black
    Image.fromarray(clear, "RGBA").save(world / "clear.png")
    (world / "imgdir.png").mkdir()
    marker = str(world / "MARKER")  # created only if a checkpoint or a model folder runs code
    torch.save({"state_dict": {"model.diffusion_model.x": torch.zeros(1), "evil": _Evil(marker)}},
               world / "evil.ckpt")
    torch.save({"state_dict": {"evil": _Evil(marker)}}, world / "legacy.ckpt", _use_new_zipfile_serialization=False)
    (world / "plain.ckpt").write_bytes(pickle.dumps(_Evil(marker)))
    code = f"open({marker!r}, 'w')\n"
    _model_index(world / "custom_pipeline", ["evilpipe", "EvilPipeline"])
    (world / "custom_pipeline" / "evilpipe.py").write_text(code)
    _model_index(world / "custom_unet", "StableDiffusionPipeline", unet=["evilunet", "EvilUNet"])
    (world / "custom_unet" / "unet").mkdir()
    (world / "custom_unet" / "unet" / "evilunet.py").write_text(code)
    _model_index(world / "library_os", "StableDiffusionPipeline", unet=["os", "system"])
    (world / "bad_json").mkdir()
    (world / "bad_json" / "model_index.json").write_text("{not json")
    (world / "user.txt").write_text("the user's own file")
    (world / "out").mkdir()
    (world / "out" / "d.gif").mkdir()
    (world / "out" / "link.gif").symlink_to(world / "user.txt")
    return world


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A tiny Stable Diffusion saved as a folder (the configs single files need), single files made from it, and
    copies whose model_index.json names another pipeline class."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("models")
    pipe = tiny_pipeline("text2img")
    pipe.save_pretrained(root / "configs")
    state = ldm_state_dict(pipe)
    unet = [k for k in state if k.startswith("model.diffusion_model.")]
    save_file({k: v for k, v in state.items() if k not in set(unet[::3])}, str(root / "missing.safetensors"))
    shaped = dict(state)
    shaped["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(shaped, str(root / "wrong_shape.safetensors"))
    save_file({**state, "model.diffusion_model.bogus.weight": torch.zeros(2)}, str(root / "extra.safetensors"))
    save_file({k: v for k, v in state.items() if k not in set(unet)}, str(root / "no_unet.safetensors"))
    (root / "truncated.safetensors").write_bytes((root / "extra.safetensors").read_bytes()[:5000])
    for name in ("StableDiffusionImg2ImgPipeline", "FluxImg2ImgPipeline", "TotallyMadeUpPipeline", "UnCLIPPipeline"):
        shutil.copytree(root / "configs", root / name)
        index = json.loads((root / name / "model_index.json").read_text())
        _model_index(root / name, name, **{k: v for k, v in index.items() if k != "_class_name"})
    return root


# ---------------------------------------------------------------------------------------------- the table


@dataclass
class Case(ApiCase):
    capped: bool = False  # run under an address-space cap: a regression would allocate a huge picture


@dataclass
class OkCase:
    id: str
    call: Callable[..., bool]  # True when it behaved; gets the fixtures it names
    needs: tuple[str, ...] = ("hostile",)  # OK rows default to the user's folder


def _gif_frames(path: Path) -> int:
    with Image.open(path) as gif:
        return int(gif.n_frames)


def _mp4_frames(path: Path) -> int:
    import imageio.v2 as iio

    with iio.get_reader(path, format="FFMPEG") as reader:
        return int(reader.count_frames())


def _pixel(path: Path, **kwargs: Any) -> Any:
    return load_image(path, **kwargs).getpixel((1, 1))


def _status(explorer: Any) -> str:
    explorer._export_clicked()
    return str(explorer.status.value)


def _walk(frames: Callable[[int], list[Any]]) -> Callable[..., list[Any]]:
    return lambda num_frames, **values: frames(num_frames)


def _squares(n: int, grow: bool = False) -> list[Image.Image]:
    return [Image.new("RGB", (8 + (4 * i if grow else 0), 8), (30 * i, 0, 0)) for i in range(n)]


def _renders_with_each_value(controls: dict[str, Any], change: Callable[[], None]) -> bool:
    """A WalkExplorer over list- or dict-valued controls renders, caches, and re-renders when a value changes."""
    seen: list[dict] = []
    explorer = WalkExplorer(lambda num_frames, **values: seen.append(values) or _squares(num_frames), controls,
                            num_frames=3)
    first = dict(seen[-1])
    change()
    explorer.frac.value = 1.0  # scrubbing renders nothing
    return len(seen) == 2 and seen[-1] != first and explorer.cache.renders == 2 and explorer.cache.hits >= 1


H, M = ("hostile",), ("models",)  # the fixtures a row's call gets

if torch.cuda.is_available():
    _NO_GPU: list[Case] = []
else:
    _NO_GPU = [Case("r2-179-load-cuda-no-gpu", lambda: load_pipeline("teaching", device="cuda"), ValueError,
                    "no CUDA GPU that torch can use")]

ERROR_CASES = [
    # media
    Case("r2-118-gif-0", lambda h: export_gif([], h / "out" / "a.gif"), ValueError, "No frames were given", needs=H),
    Case("r2-120-gif-sizes", lambda h: export_gif([RED, RED.resize((16, 16))], h / "out" / "a.gif"), ValueError,
         "must have the same size", needs=H),
    Case("r2-121-gif-fps-0", lambda h: export_gif([RED, BLUE], h / "out" / "a.gif", fps=0), ValueError,
         "fps must be a finite number > 0, got 0", needs=H),
    Case("r2-121-gif-fps-nan", lambda h: export_gif([RED, BLUE], h / "out" / "a.gif", fps=float("nan")),
         ValueError, "fps must be a finite number > 0, got nan", needs=H),
    Case("r2-123-gif-dest-dir", lambda h: export_gif([RED, BLUE], h / "imgdir.png"), ValueError,
         "needs a file name ending in .gif", needs=H),
    Case("r2-123-gif-dest-dir-named-gif", lambda h: export_gif([RED, BLUE], h / "out" / "d.gif"), IsADirectoryError,
         "d.gif is a folder; give a file name such as", needs=H),
    Case("r2-129-mp4-dest-dir", lambda h: export_mp4([RED, BLUE], h / "out"), ValueError,
         "needs a file name ending in .mp4", needs=H),
    Case("r2-130-grid-0", lambda: image_grid([]), ValueError, "No frames were given"),
    Case("r2-132-grid-pad-huge", lambda: image_grid([RED, BLUE], pad=10**6), ValueError,
         "the sheet would be 3000064x2000032", capped=True),
    Case("r2-132-grid-scale-huge", lambda: image_grid([RED], scale=10**6), ValueError, "Pillow's decompression-bomb",
         capped=True),
    Case("r2-132-gif-scale-huge", lambda h: export_gif([RED, BLUE], h / "out" / "a.gif", scale=10**5), ValueError,
         "a frame upscaled 100000x", capped=True, needs=H),
    Case("r2-132-show-width-huge", lambda: show([RED, BLUE], width=10**7), ValueError, "use a smaller width",
         capped=True),
    Case("r2-133-load-image-bomb", lambda h: load_image(h / "bomb.png"), ValueError, "decompression bomb", needs=H),
    Case("r2-057-load-image-corrupt-idat", lambda h: load_image(h / "corrupt.png"), ValueError,
         "as an image (OSError", needs=H),
    Case("r2-134-load-image-fifo", lambda h: load_image(h / "fifo.png"), ValueError, "is a named pipe (FIFO)", needs=H),
    Case("r2-054-load-image-directory", lambda h: load_image(h / "imgdir.png"), ValueError,
         "is a folder, not an image file", needs=H),
    Case("r2-136-load-image-url", lambda: load_image("https://example.com/a.png"), ValueError,
         "URLs are not supported"),
    Case("r2-137-gif-under-file", lambda h: export_gif([RED, BLUE], h / "a_file" / "x.gif"), NotADirectoryError,
         "a_file is a file, not a folder", needs=H),
    Case("r2-138-save-image-under-file", lambda h: save_image(RED, h / "a_file" / "x.png"), NotADirectoryError,
         "a_file is a file, not a folder", needs=H),
    Case("r2-138-save-image-deep-under-file", lambda h: save_image(RED, h / "a_file" / "a" / "b" / "x.png"),
         NotADirectoryError, "a_file is a file, not a folder", needs=H),
    # loading weights
    Case("r2-162-ckpt-pickle-exec", lambda h: load_pipeline(h / "evil.ckpt", **CPU), ValueError,
         "cannot read the checkpoint", needs=H),
    Case("r2-163-ckpt-legacy-pickle", lambda h: load_pipeline(h / "legacy.ckpt", **CPU), ValueError,
         "is not a supported checkpoint", needs=H),
    Case("r2-163-ckpt-plain-pickle", lambda h: load_pipeline(h / "plain.ckpt", **CPU), ValueError,
         "is not a supported checkpoint", needs=H),
    Case("r2-164-safetensors-missing-keys",
         lambda models: load_pipeline(models / "missing.safetensors", config=str(models / "configs"),
                                      local_files_only=True, **CPU),
         ModelUnavailableError, "missing weights: the file lacks 71 of the 208 tensors of the UNet2DConditionModel",
         M),
    Case("r2-165-safetensors-wrong-shape",
         lambda models: load_pipeline(models / "wrong_shape.safetensors", config=str(models / "configs"),
                                      local_files_only=True, **CPU),
         ModelUnavailableError, "expected shape", M),
    Case("r2-167-safetensors-truncated", lambda models: load_pipeline(models / "truncated.safetensors", **CPU),
         ValueError, "cannot read the checkpoint", M),
    Case("r2-168-safetensors-no-unet", lambda models: load_pipeline(models / "no_unet.safetensors", **CPU),
         ValueError, "holds no Stable Diffusion weights", M),
    Case("r2-169-folder-img2img", lambda models: load_pipeline(models / "StableDiffusionImg2ImgPipeline", **CPU),
         ValueError, "StableDiffusionImg2ImgPipeline, which helpers cannot walk", M),
    Case("r2-170-folder-flux-img2img", lambda models: load_pipeline(models / "FluxImg2ImgPipeline", **CPU),
         ValueError, "FluxImg2ImgPipeline, which helpers cannot walk", M),
    Case("r2-171-folder-made-up-class", lambda models: load_pipeline(models / "TotallyMadeUpPipeline", **CPU),
         ModelUnavailableError, "has no attribute TotallyMadeUpPipeline", M),
    Case("r2-172-folder-unclip-text", lambda models: load_pipeline(models / "UnCLIPPipeline", **CPU), ValueError,
         "not an unCLIP image-variation folder", M),
    Case("r2-173-folder-custom-pipeline-py", lambda h: load_pipeline(h / "custom_pipeline", **CPU),
         ModelUnavailableError, "trust_remote_code=True", needs=H),
    Case("r2-174-folder-custom-component-py", lambda h: load_pipeline(h / "custom_unet", **CPU),
         ModelUnavailableError, "trust_remote_code=True", needs=H),
    Case("r2-175-folder-library-os", lambda h: load_pipeline(h / "library_os", **CPU), ModelUnavailableError,
         "Cannot load the model folder", needs=H),
    Case("r2-177-folder-bad-json", lambda h: load_pipeline(h / "bad_json", **CPU), ModelUnavailableError,
         "is not a valid JSON file", needs=H),
    Case("r2-178-load-empty-string", lambda: load_pipeline("", **CPU), ValueError, "model is empty"),
    *_NO_GPU,
    Case("r2-180-load-int8", lambda: load_pipeline("teaching", device="cpu", dtype=torch.int8), ValueError,
         "dtype must be a float type"),
    Case("r2-181-load-teaching-memory", lambda: load_pipeline("teaching", memory="bogus", **CPU), ValueError,
         "unknown memory option(s) ['bogus']"),
    Case("r2-181-load-teaching-typo", lambda: load_pipeline("teaching", cache_dirr="x", **CPU), TypeError,
         "takes no argument 'cache_dirr'"),
    Case("r2-181-load-teaching-safety-checker", lambda: load_pipeline("teaching", safety_checker=object(), **CPU),
         TypeError, "takes no argument 'safety_checker'"),
    Case("r2-181-load-folder-typo", lambda models: load_pipeline(models / "configs", cache_dirr="x", **CPU),
         TypeError, "did you mean 'cache_dir'", M),
    # widgets
    Case("r2-182-fe-empty", lambda: FrameExplorer(lambda v: RED, []), ValueError, "values is empty"),
    Case("r2-184-fe-render-none", lambda: FrameExplorer(lambda v: None, [1, 2]), TypeError,
         "Cannot turn a NoneType into an image"),
    Case("r2-185-fe-start-float", lambda: FrameExplorer(lambda v: RED, [1, 2, 3], start=1.5), ValueError,
         "start must be a whole number from 0 to 2, got 1.5"),
    Case("r2-186-fe-fps-0", lambda: FrameExplorer(lambda v: RED, [1, 2], fps=0), ValueError,
         "fps must be a finite number > 0"),
    Case("r2-187-fe-display-width-str", lambda: FrameExplorer(lambda v: RED, [1, 2], display_width="wide"),
         ValueError, "display_width must be a whole number"),
    Case("r2-192-we-zero-frames-sheet", lambda: WalkExplorer(_walk(lambda n: []), num_frames=3).contact_sheet(),
         ValueError, "No frames were given"),
    Case("r2-194-we-control-not-widget", lambda: WalkExplorer(_walk(_squares), {"x": 3}), TypeError,
         "control 'x' must be an ipywidgets widget"),
    # misc
    Case("r2-196-choose-backend-kind-typo", lambda: choose_backend("teaching", "text-to-image"), ValueError,
         "unknown pipeline kind"),
    Case("r2-197-show-fps-60", lambda: show([RED, BLUE], fps=60), ValueError, "A GIF cannot play at 60 fps"),
]

OK_CASES = [
    OkCase("r2-119-gif-1", lambda h: _gif_frames(export_gif([RED], h / "out" / "one.gif")) == 1),
    OkCase("r2-122-gif-fps-np-float32",
           lambda h: _gif_frames(export_gif([RED, BLUE], h / "out" / "np.gif", fps=np.float32(8))) == 2),
    OkCase("r2-124-gif-missing-folder",
           lambda h: export_gif([RED, BLUE], h / "out" / "new" / "deeper" / "e.gif").is_file()),
    OkCase("r2-125-gif-dest-symlink",  # the snapshot proves user.txt, the link's target, unchanged
           lambda h: not export_gif([RED, BLUE], h / "out" / "link.gif").is_symlink()),
    OkCase("r2-126-gif-identical", lambda h: _gif_frames(export_gif([RED] * 3, h / "out" / "same.gif")) == 3),
    OkCase("r2-127-mp4-1x1",
           lambda h: _mp4_frames(export_mp4([RED.resize((1, 1)), BLUE.resize((1, 1))], h / "out" / "p.mp4")) == 2),
    OkCase("r2-128-mp4-fps-extremes", lambda h: all(
        _mp4_frames(export_mp4([RED, BLUE], h / "out" / f"f{i}.mp4", fps=fps)) == 2 for i, fps in enumerate((1e6, 1e-3)))),
    OkCase("r2-131-grid-2000", lambda: image_grid([RED] * 2000).size == (1532, 1532), ()),
    OkCase("r2-135-load-image-transparent-on-white",
           lambda h: _pixel(h / "clear.png") == (255, 255, 255) and _pixel(h / "clear.png", mode="L") == 255
           and load_image(h / "clear.png").getpixel((0, 0)) == (10, 20, 30)),
    OkCase("r2-135-load-image-rgba-keeps-alpha", lambda h: _pixel(h / "clear.png", mode="RGBA")[3] == 0),
    OkCase("r2-166-safetensors-extra-key",
           lambda models: type(load_pipeline(models / "extra.safetensors", config=str(models / "configs"),
                                             local_files_only=True, **CPU)).__name__ == "StableDiffusionPipeline",
           ("models",)),
    OkCase("r2-183-fe-mixed-sizes-export", lambda: "export failed: ValueError: All frames" in _status(
        FrameExplorer(lambda v: Image.new("RGB", (8 * v, 8 * v)), [1, 2, 3], out_dir="unused")), ()),
    OkCase("r2-188-fe-one-value-mp4", lambda h: _mp4_frames(
        FrameExplorer(lambda v: RED, [1], out_dir=h / "out").export("mp4")) == 1),
    OkCase("r2-189-we-tags-input", lambda: _renders_with_each_value(
        {"tags": (tags := w.TagsInput(value=["a"]))}, lambda: setattr(tags, "value", ["a", "b"])), ()),
    OkCase("r2-189-we-dict-dropdown", lambda: _renders_with_each_value(
        {"style": (dd := w.Dropdown(options=[("x", {"k": [1]}), ("y", {"k": [2]})]))},
        lambda: setattr(dd, "value", {"k": [2]})), ()),
    OkCase("r2-190-we-inconsistent-sizes-export", lambda: "same size" in _status(
        WalkExplorer(_walk(lambda n: _squares(n, grow=True)), out_dir="unused")), ()),
    OkCase("r2-191-we-wrong-count", lambda: "render_walk returned 7 frames for num_frames=8" in str(
        WalkExplorer(_walk(lambda n: _squares(n - 1)), num_frames=8).status.value), ()),
    OkCase("r2-192-we-zero-frames", lambda: "No frames were given" in str(
        WalkExplorer(_walk(lambda n: []), num_frames=3).status.value), ()),
    OkCase("r2-193-we-num-frames-np-int", lambda: WalkExplorer(_walk(_squares), num_frames=np.int64(4))
           .cache.renders == 1, ()),
]


@contextlib.contextmanager
def _guard(capped: bool, seconds: int = 60) -> Iterator[None]:
    """An alarm (a blocking open fails the row instead of hanging the suite) and, when ``capped``, an
    address-space cap 2 GiB above what the process maps now, lifted afterwards."""
    def timeout(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if capped:
        with open("/proc/self/status") as status:
            mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (mapped + 2 * 1024**3, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
def test_a_hostile_input_is_one_clear_error_and_touches_nothing_outside_the_folder(case, request, hostile):
    fixtures = [request.getfixturevalue(name) for name in case.needs]
    before = _snapshot(hostile, hostile / "out")
    with _guard(case.capped), pytest.raises(case.error) as info:
        case.call(*fixtures)
    assert case.fact in str(info.value)
    assert _snapshot(hostile, hostile / "out") == before
    assert not (hostile / "MARKER").exists()  # no pickle or model-folder code ran


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.id)
def test_what_behaved_still_behaves(case, request, hostile, monkeypatch):
    monkeypatch.chdir(hostile / "out")  # an explorer's default out_dir lands in the output folder
    fixtures = [request.getfixturevalue(name) for name in case.needs]
    before = _snapshot(hostile, hostile / "out")
    with _guard(False):
        assert case.call(*fixtures) is True
    assert _snapshot(hostile, hostile / "out") == before


def test_export_temporaries_have_the_documented_names(tmp_path, monkeypatch):
    """A killed export leaves ``.<stem>.<8 hex>.part<suffix>``: the pattern a rerun's cleaner matches."""
    seen: list[str] = []
    real = Image.Image.save

    def spy(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(Path(fp).name)
        real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", spy)
    export_gif([RED, BLUE], tmp_path / "walk.gif")
    save_image(RED, tmp_path / "contact_sheet.png")
    assert part_file_pattern("walk.gif").fullmatch(seen[0]) and part_file_pattern("contact_sheet.png").fullmatch(seen[1])
    assert not part_file_pattern("walk.gif").fullmatch("walk.gif")
    assert not part_file_pattern("walk.gif").fullmatch(".walk.0123abcd.part.mp4")
    assert sorted(os.listdir(tmp_path)) == ["contact_sheet.png", "walk.gif"]
