"""Hostile and bad inputs, table-driven (issue 12): walk files, the public API and full disks.

Every case asserts the exception type (or, for the CLI, exit code 2 with one ``error:`` line and no
traceback), the key fact its message must state, and that no file outside the output folder changed. Walk-file
cases also assert that nothing loaded a model before the error: values are validated up front.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import helpers.walks.spec as walkfile
from helpers.embeddings import encode_images, encode_prompts
from helpers.interpolation import circular_walk, interpolation_path, lerp, slerp
from helpers.media import load_image
from helpers.pipelines import tiny_pipeline
from helpers.render import render_frames
from helpers.walks import WalkFolderError, WalkWriteError, read_manifest, render_walk

BASE = "model: tiny-sd\nprompts: [a red apple, a green apple]\nframes: 3\nsteps: 2\n"
UNCLIP = "model: tiny-unclip\nframes: 3\nsteps: 2\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi")
) + "model: *i\n"


def _snapshot(root: Path, out: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except those inside ``out``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and out not in p.parents
    }


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A user's folder: files that no case may change, and an output folder ``out``."""
    (tmp_path / "precious.txt").write_text("my notes")
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "photo.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "a_file").write_text("a file where a folder would go")
    return tmp_path


# ---------------------------------------------------------------------------------------------- walk files


@dataclass
class WalkCase:
    id: str
    text: str | bytes  # the walk file (``{photo}`` is replaced by the path of a real image)
    fact: str  # what the one error line must say
    out: str = "out"


WALK_CASES = [
    WalkCase("fps-nan", BASE + "fps: .nan\n", "fps must be a number from 0.5 to 120, got nan"),
    WalkCase("fps-inf", BASE + "fps: .inf\n", "fps must be a number from 0.5 to 120, got inf"),
    WalkCase("fps-tiny", BASE + "fps: 0.001\n", "fps must be a number from 0.5 to 120"),
    WalkCase("fps-bool", BASE + "fps: true\n", "fps must be a number"),
    WalkCase("guidance-nan", BASE + "guidance: .nan\n", "guidance must be a number from 0 to 100, got nan"),
    WalkCase("guidance-negative", BASE + "guidance: -1\n", "guidance must be a number from 0"),
    WalkCase("seed-2**64", BASE + "seeds: 18446744073709551616\n", "seeds must be a whole number from 0 to 2**64 - 1"),
    WalkCase("seed-negative", BASE + "seeds: [1, -2]\n", "seeds must be a whole number from 0"),
    WalkCase("seeds-empty", BASE + "seeds: []\n", "seeds must be"),
    WalkCase("a-million-frames", BASE.replace("frames: 3", "frames: 1000000"), "frames must be a whole number from 2 to 100000"),
    WalkCase("steps-1e9", BASE.replace("steps: 2", "steps: 1000000000"), "steps must be a whole number from 1 to 1000"),
    WalkCase("size-huge", BASE + "size: 100000\n", "size must be a multiple of 8 up to 4096"),
    WalkCase("batch-zero", BASE + "batch_size: 0\n", "batch_size must be a whole number from 1"),
    WalkCase("unknown-model", BASE.replace("tiny-sd", "tiny-sdd"), "unknown model 'tiny-sdd' (did you mean tiny-sd?)"),
    WalkCase("retired-model", BASE.replace("tiny-sd", "teaching-digits"), "retired"),
    WalkCase("retired-digit-image", UNCLIP + "images: [\"digit:3\", \"digit:8\"]\n", "the digit world was retired"),
    WalkCase("missing-image", UNCLIP + "images: [missing.png, photo.png]\n", "no image file at"),
    WalkCase("not-an-image", UNCLIP + "images: [notes.txt, photo.png]\n", "is not an image Pillow can read"),
    WalkCase("out-under-a-file", BASE, "which is a file", out="a_file/walk"),
    WalkCase("out-is-a-file", BASE, "is a file", out="a_file"),
    WalkCase("not-utf8", BASE.encode() + b"negative_prompt: caf\xe9\n", "is not UTF-8 text"),
    WalkCase("alias-bomb", BOMB, "once its YAML aliases are expanded"),
    WalkCase("too-big", BASE + "#" * (300 * 1024) + "\n", "a walk file is a few lines"),
    WalkCase("python-tag", BASE + "fps: !!python/object/apply:os.system [echo hacked]\n", "is not valid YAML"),
    WalkCase("top-level-list", "- model: tiny-sd\n", "expected a mapping of keys"),
    WalkCase("typo-key", BASE + "promts: [a, b]\n", "did you mean 'prompts'"),
    WalkCase("unclip-with-prompts", UNCLIP + "prompts: [a, b]\n", "use images:, not prompts:"),
]
if not torch.cuda.is_available():
    WALK_CASES.append(WalkCase("cuda-without-cuda", BASE + "device: cuda\n", "no CUDA GPU"))


@pytest.mark.parametrize("case", WALK_CASES, ids=lambda c: c.id)
def test_a_bad_walk_file_is_one_line_and_exit_2_before_any_model_loads(case, world, monkeypatch, capsys):
    walk = world / "walk.yaml"
    text = case.text if isinstance(case.text, bytes) else case.text.encode()
    walk.write_bytes(text)
    out = world / case.out

    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the walk file was validated")

    monkeypatch.setattr(walkfile, "load_model", no_model)
    before = _snapshot(world, out)
    rc = walkfile.main([str(walk), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert case.fact in lines[0]
    assert len(lines[0]) < 600  # nothing quotes an expanded bomb or a huge file
    assert _snapshot(world, out) == before


def test_the_limits_themselves_still_render(world):
    """The edges of the accepted ranges work end to end: fps 0.5, the largest seed."""
    walk = world / "edge.yaml"
    walk.write_text(BASE + "fps: 0.5\nseeds: 18446744073709551615\nformats: [gif, mp4]\n")
    assert walkfile.main([str(walk), "--out", str(world / "edge"), "--no-progress"]) == 0
    with Image.open(world / "edge" / "walk.gif") as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 2000  # 0.5 fps


# ------------------------------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def sd():
    pipe = tiny_pipeline("text2img")
    pipe.set_progress_bar_config(disable=True)
    embeds, negative = encode_prompts(pipe, ["a red apple", "a green apple"])
    return pipe, embeds, negative


@pytest.fixture(scope="module")
def unclip():
    pipe = tiny_pipeline("unclip")
    pipe.set_progress_bar_config(disable=True)
    images = [Image.new("RGB", (32, 32), c) for c in ((250, 0, 0), (0, 250, 0))]
    return pipe, encode_images(pipe, images)


@dataclass
class ApiCase:
    id: str
    call: Callable[..., Any]  # gets the fixtures it names
    error: type[BaseException]
    fact: str
    needs: tuple[str, ...] = ()


def _sd_frames(sd, **kwargs):
    pipe, embeds, negative = sd
    return render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], progress=False, **kwargs)


x3 = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
y3 = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
API_CASES = [
    ApiCase("steps-typo", lambda sd: _sd_frames(sd, num_inference_step=3), TypeError,
            "did you mean 'num_inference_steps'", ("sd",)),
    ApiCase("steps-zero", lambda sd: _sd_frames(sd, num_inference_steps=0), ValueError,
            "num_inference_steps must be a whole number from 1 to 1000", ("sd",)),
    ApiCase("steps-negative", lambda sd: _sd_frames(sd, num_inference_steps=-3), ValueError,
            "num_inference_steps must be a whole number from 1 to 1000", ("sd",)),
    ApiCase("guidance-nan", lambda sd: _sd_frames(sd, num_inference_steps=2, guidance_scale=math.nan), ValueError,
            "guidance_scale must be a finite number", ("sd",)),
    ApiCase("guidance-inf", lambda sd: _sd_frames(sd, num_inference_steps=2, guidance_scale=math.inf), ValueError,
            "guidance_scale must be a finite number", ("sd",)),
    ApiCase("embeddings-of-another-model",
            lambda sd: render_frames(sd[0], prompt_embeds=torch.zeros(2, 16, 768), num_inference_steps=2,
                                     guidance_scale=1.0, progress=False),
            ValueError, "are 768 wide but StableDiffusionPipeline takes 32", ("sd",)),
    ApiCase("unclip-embeddings-of-another-model",
            lambda unclip: render_frames(unclip[0], image_embeddings=torch.zeros(2, 768), progress=False,
                                         decoder_num_inference_steps=2, super_res_num_inference_steps=2),
            ValueError, "are 768 wide", ("unclip",)),
    ApiCase("unclip-one-step",
            lambda unclip: render_frames(unclip[0], image_embeddings=unclip[1], progress=False,
                                         decoder_num_inference_steps=1),
            ValueError, "decoder_num_inference_steps must be a whole number from 2 to 1000", ("unclip",)),
    ApiCase("slerp-dim-out-of-range", lambda: slerp(x3, y3, 0.5, dim=5), ValueError, "`dim` 5 is out of range"),
    ApiCase("slerp-frac-negative", lambda: slerp(x3, 3 * y3, -0.5), ValueError, "frac must lie in [0, 1]"),
    ApiCase("slerp-frac-above-1", lambda: slerp(x3, y3, [0.5, 1.5]), ValueError, "frac must lie in [0, 1]"),
    ApiCase("schedule-not-monotone",
            lambda: interpolation_path([x3, y3, x3 + y3], 7, schedule=lambda u: np.sin(3 * np.pi * u) ** 2),
            ValueError, "map 0 to 0 and 1 to 1"),
    ApiCase("schedule-monotone-but-short", lambda: interpolation_path([x3, y3], 5, schedule=lambda u: u / 2),
            ValueError, "map 0 to 0 and 1 to 1"),
    ApiCase("schedule-wiggles-inside",
            lambda: interpolation_path([x3, y3], 9, schedule=lambda u: u + 0.3 * np.sin(2 * np.pi * u)),
            ValueError, "must be monotone"),
    ApiCase("circular-walk-x-x", lambda: circular_walk(x3, x3.clone(), 8), ValueError, "are parallel"),
    ApiCase("circular-walk-x-0", lambda: circular_walk(x3, torch.zeros_like(x3), 8), ValueError, "all zeros"),
]


def assert_one_clear_error(case: ApiCase, request: pytest.FixtureRequest, world: Path) -> None:
    """Run an API case: it raises ``case.error`` stating ``case.fact``, and no file outside ``world/out`` changed."""
    fixtures = [request.getfixturevalue(name) for name in case.needs]
    before = _snapshot(world, world / "out")
    with pytest.raises(case.error) as info:
        case.call(*fixtures)
    assert case.fact in str(info.value)
    assert _snapshot(world, world / "out") == before


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.id)
def test_bad_api_values_raise_one_clear_error(case, request, world):
    assert_one_clear_error(case, request, world)


def test_render_walk_checks_its_arguments_before_touching_the_folder(sd, world):
    pipe, embeds, negative = sd
    out = world / "out"
    with pytest.raises(TypeError, match="did you mean 'num_inference_steps'"):
        render_walk(pipe, out, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], num_inference_step=2,
                    progress=False)
    assert not out.exists()
    with pytest.raises(WalkFolderError, match="is a file"):
        render_walk(pipe, world / "a_file", prompt_embeds=embeds, num_inference_steps=2, progress=False)


def test_slerp_of_huge_float32_values_is_finite_and_keeps_the_norm():
    # Regression: the squares of 1e20 overflow float32, and slerp returned NaN.
    a = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 1e20
    b = torch.randn(64, generator=torch.Generator().manual_seed(1)) * 1e20
    mid = slerp(a, b, [0.0, 0.5, 1.0])
    assert torch.isfinite(mid).all()
    norms = (mid.double() / 1e20).norm(dim=1)
    want = torch.tensor([(a.double() / 1e20).norm(), 0, (b.double() / 1e20).norm()])
    want[1] = (want[0] + want[2]) / 2  # the norm moves linearly
    assert torch.allclose(norms, want, rtol=1e-5)
    assert torch.allclose(mid[0], a, rtol=1e-5) and torch.allclose(mid[2], b, rtol=1e-5)


def test_lerp_extrapolates_along_the_line():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])
    assert torch.allclose(lerp(a, b, [-1.0, 2.0]), torch.tensor([[2.0, -3.0], [-1.0, 6.0]]))


def test_load_image_scales_16_bit_and_float_images_by_their_range(world):
    ramp16 = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp16).save(world / "deep.png")
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32).astype(np.float32)
    Image.fromarray(ramp, mode="F").save(world / "float.tif")
    deep = np.asarray(load_image(world / "deep.png", mode="L"), dtype=np.float64)
    flt = np.asarray(load_image(world / "float.tif"), dtype=np.float64)
    # Before: the 16-bit ramp saturated at 255 from 1/256 of the way on; the float ramp was black (0 or 1).
    assert np.abs(deep - ramp16 / 257.0).max() <= 0.5
    assert flt.shape == (32, 32, 3) and np.abs(flt[..., 0] - ramp * 255).max() <= 0.5


def test_a_large_walk_warns(sd, world, monkeypatch):
    import helpers.walks.folder as render

    monkeypatch.setattr(render, "LARGE_WALK_FRAMES", 2)
    pipe, embeds, negative = sd
    with pytest.warns(UserWarning, match="a walk of 3 frames is large"):
        render_walk(pipe, world / "out", prompt_embeds=slerp(embeds[0], embeds[1], [0, 0.5, 1]),
                    negative_prompt_embeds=negative[:1], num_inference_steps=2, progress=False)


def test_a_commit_costs_the_same_however_long_the_walk(sd, world, monkeypatch):
    """The manifest is written twice per run (start, end) and each chunk appends one line to the commit log, so
    the work per chunk does not grow with the walk (it was a full manifest rewrite: 119 MB per chunk at a
    million frames)."""
    import helpers.walks.folder as render

    pipe, embeds, negative = sd
    writes: list[int] = []
    real = render._write_manifest
    monkeypatch.setattr(render, "_write_manifest", lambda folder, data: (writes.append(1), real(folder, data)))
    appended: list[int] = []
    real_append = render._append_commit
    monkeypatch.setattr(render, "_append_commit",
                        lambda folder, records: (appended.append(len(records)), real_append(folder, records)))
    kwargs = dict(negative_prompt_embeds=negative[:1], num_inference_steps=2, progress=False, batch_size=1)
    for frames in (3, 9):
        writes.clear(), appended.clear()
        render_walk(pipe, world / f"out{frames}", prompt_embeds=slerp(embeds[0], embeds[1],
                    np.linspace(0, 1, frames)), **kwargs)
        assert len(writes) == 2 and appended == [1] * frames
        assert all(f["status"] == "done" for f in read_manifest(world / f"out{frames}")["frames"])


# ------------------------------------------------------------------------------------------- a full disk


@contextlib.contextmanager
def tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"160k"``) mounted under ``tmp_path`` (root only; the test is skipped
    elsewhere), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                                           capture_output=True).returncode:
        pytest.skip("needs root and mount to make a small disk (tmpfs)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 160 KiB tmpfs, to fill up."""
    with tmpfs(tmp_path, "160k") as mount:
        yield mount


def test_a_full_disk_mid_render_is_one_clear_error_and_resumes_identically(sd, small_disk, tmp_path):
    pipe, embeds, negative = sd
    path = slerp(embeds[0], embeds[1], np.linspace(0, 1, 12))
    kwargs = dict(negative_prompt_embeds=negative[:1], num_inference_steps=2, height=64, width=64,
                  progress=False, batch_size=2)
    reference = render_walk(pipe, tmp_path / "reference", prompt_embeds=path, **kwargs)
    filler = small_disk / "filler.bin"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 20 * 1024))  # room for the manifest and a few frames only
    with pytest.raises(WalkWriteError, match="free some space .* run the same walk again"):
        render_walk(pipe, small_disk / "walk", prompt_embeds=path, **kwargs)
    done = [f["index"] for f in read_manifest(small_disk / "walk")["frames"] if f["status"] == "done"]
    assert len(done) < 12
    filler.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = render_walk(pipe, small_disk / "walk", prompt_embeds=path, **kwargs)
    assert sorted(again.skipped) == done
    assert [p.read_bytes() for p in again.frames] == [p.read_bytes() for p in reference.frames]


# ------------------------------------------------------------------------------------------ loading weights


@pytest.fixture
def sd15_load_kwargs(monkeypatch):
    """``load(dtype)``: the keyword arguments ``load_pipeline("sd15")`` hands ``from_pretrained`` (offline)."""
    from diffusers import StableDiffusionPipeline

    import helpers.pipelines as pipelines

    seen: list[dict] = []

    def fake(source, **kwargs):
        seen.append(kwargs)
        raise OSError("offline")

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", fake)

    def load(dtype: torch.dtype = torch.float32) -> dict:
        seen.clear()
        with pytest.raises(pipelines.ModelUnavailableError):
            pipelines.load_pipeline("sd15", device="cpu", dtype=dtype, memory="none")
        assert len(seen) == 1
        return seen[0]

    return load


def test_weights_never_fall_back_to_pickle_silently(tmp_path, capsys, sd15_load_kwargs):
    """Hub checkpoints load with use_safetensors=True (diffusers then refuses a .bin instead of falling back);
    Karlo (.bin only on the hub) and a folder with pickled components load with one line naming them."""
    import helpers.pipelines as pipelines

    assert sd15_load_kwargs()["use_safetensors"] is True
    assert pipelines._safetensors_choice(pipelines.KARLO_ID) is None
    assert "no safetensors weights, only pickled .bin files, for kakaobrain" in capsys.readouterr().out

    pipe = tiny_pipeline("text2img")
    pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)  # unet and vae as .bin
    loaded = pipelines.load_pipeline(tmp_path / "pickled", device="cpu", dtype=torch.float32, memory="none")
    assert torch.equal(loaded.unet.conv_in.weight, pipe.unet.conv_in.weight)
    note = capsys.readouterr().out
    assert "only pickled .bin files, for unet, vae;" in note
    pipe.save_pretrained(tmp_path / "safe")
    pipelines.load_pipeline(tmp_path / "safe", device="cpu", dtype=torch.float32, memory="none")
    assert "safetensors" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- safety checker


def test_frames_the_safety_checker_flags_are_never_committed(sd, tmp_path, monkeypatch):
    """Regression (issue 16, item 3): blacked-out frames were committed as done and ended up in the videos."""
    from helpers.walks import SafetyCheckerError

    pipe, embeds, negative = sd
    path = slerp(embeds[0], embeds[1], [0.0, 0.5, 1.0])
    kwargs = dict(negative_prompt_embeds=negative[:1], num_inference_steps=2, progress=False, batch_size=1)
    reference = render_walk(pipe, tmp_path / "reference", prompt_embeds=path, **kwargs)
    calls = []

    def checker(image, device, dtype):  # flags the second call's frame, as a false positive would
        calls.append(1)
        flagged = len(calls) == 2
        return (image * 0 if flagged else image), [flagged] * len(image)

    monkeypatch.setattr(pipe, "run_safety_checker", checker)
    with pytest.raises(SafetyCheckerError, match=r"blacked out frame\(s\) \[1\]; they were not committed"):
        render_walk(pipe, tmp_path / "walk", prompt_embeds=path, **kwargs)
    assert [f["status"] for f in read_manifest(tmp_path / "walk")["frames"]] == ["done", "pending", "pending"]
    monkeypatch.undo()
    again = render_walk(pipe, tmp_path / "walk", prompt_embeds=path, **kwargs)
    assert again.skipped == [0] and again.rendered == [1, 2]
    assert [p.read_bytes() for p in again.frames] == [p.read_bytes() for p in reference.frames]


def test_one_walk_policy_deterministic_scheduler_and_no_checker(tmp_path, sd15_load_kwargs):
    from diffusers import DDIMScheduler, PNDMScheduler

    import helpers.pipelines as pipelines

    pipe = tiny_pipeline("text2img")
    pipe.scheduler = PNDMScheduler.from_config(pipe.scheduler.config)  # what SD 1.5 ships with
    pipe.save_pretrained(tmp_path / "pndm")
    loaded = pipelines.load_pipeline(tmp_path / "pndm", device="cpu", dtype=torch.float32, memory="none")
    assert isinstance(loaded.scheduler, DDIMScheduler)
    loaded.safety_checker = torch.nn.Identity()
    assert pipelines.walk_policy(loaded, keep_checker=True).safety_checker is not None
    assert pipelines.walk_policy(loaded).safety_checker is None

    kwargs = sd15_load_kwargs()
    assert kwargs["safety_checker"] is None and kwargs["requires_safety_checker"] is False
    for dtype in (torch.float16, torch.bfloat16):  # bf16 GPUs fetched the 4.3 GB fp32 files (issue 16, item 6)
        assert sd15_load_kwargs(dtype)["variant"] == "fp16"


def test_loading_in_half_precision_warns_nothing_and_casts(tmp_path):
    """Regression (issue 16, item 6): torch_dtype= gave a FutureWarning on every load in diffusers 0.42."""
    import helpers.pipelines as pipelines

    tiny_pipeline("text2img").save_pretrained(tmp_path / "sd")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe = pipelines.load_pipeline(tmp_path / "sd", device="cpu", dtype=torch.float16, memory="none")
        teaching = pipelines.load_pipeline("teaching", device="cpu", dtype=torch.bfloat16)
    assert pipe.unet.dtype == torch.float16 and pipe.vae.dtype == torch.float16
    assert teaching.unet.dtype == torch.bfloat16
