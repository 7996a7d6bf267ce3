"""Hostile and careless walk files and command lines, second round (issue 30; audit numbers r2-NNN of
``shared/reviews/reliability-review-2026-12-06.md``, cases 1-63 and 77-83).

Each row runs ``python -m helpers.walks WALK.yaml`` in-process from a user's folder (the working directory, with
``$HOME`` inside it). A bad row asserts exit code 2, one ``error:`` line with no traceback, the key fact of the
message, and, unless the check needs the loaded model, that no model loaded first. A good row asserts exit code
0 and the frames it rendered. Every row asserts that no file outside the output folder changed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_hostile
import torch
from PIL import Image
from test_hostile import BASE, UNCLIP, _snapshot

import helpers.walks.spec as walkfile

PROMPTS = "prompts: [a red apple, a green apple]"
TEACHING = "model: teaching\nprompts: [a big red heart, a big blue heart]\nframes: 2\nsteps: 2\nformats: []\n"
LONG = "very " * 40  # past the teaching model's 12-token limit
world = test_hostile.world  # the fixture: a user's folder with files no case may change


def _prompts(line: str) -> str:
    """BASE with another ``prompts:`` line."""
    return BASE.replace(PROMPTS, line)


def _frames(line: str) -> str:
    return BASE.replace("frames: 3", line)


def _keyframes(entries: str) -> str:
    return "model: tiny-sd\nsteps: 2\nformats: [mp4]\nkeyframes:\n" + entries


#: A timeline of two keyframes: 3 frames eased, then the last keyframe (4 frames).
TIMELINE = _keyframes("  - prompt: a big red heart\n    frames: 3\n    easing: cosine\n"
                      "  - prompt: a big blue heart\n    seed: 2\n")
TIMELINE_AUDIO = _keyframes("  - prompt: a big red heart\n  - prompt: a big blue heart\n")


def _beat(root: Path, silent: bool = False) -> None:
    """A one-second click track (or one second of silence) beside the walk file."""
    from helpers.audio import click_track, write_audio

    y = click_track(240, 1.0)
    write_audio(root / ("silence.wav" if silent else "beat.wav"), 0 * y if silent else y)


def _png(width: int, height: int, idat: bytes) -> bytes:
    """A PNG with valid chunk CRCs whatever its header claims and its IDAT holds."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _images(root: Path, *names: str) -> None:
    for name, colour in zip(names, ((250, 0, 0), (0, 250, 0), (0, 0, 250))):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), colour).save(root / name)


class _Evil:
    """Pickles as a call that makes the folder ``marker`` when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (self.marker,)


def _evil_ckpt(root: Path) -> None:
    torch.save({"state_dict": {"evil": _Evil(str(root / "marker"))}}, root / "evil.ckpt")


def _wrong_keys(root: Path) -> None:
    from safetensors.torch import save_file

    save_file({"foo": torch.zeros(3)}, str(root / "wrong.safetensors"))


def _tiny_model(folder: Path) -> None:
    from helpers.pipelines import tiny_pipeline

    tiny_pipeline("text2img").save_pretrained(folder)


def _foreign_manifest(root: Path) -> None:
    (root / "webapp").mkdir()
    (root / "webapp" / "manifest.json").write_text('{"name": "My App", "start_url": "/"}')


def _odd_images(root: Path) -> None:
    Image.new("CMYK", (32, 32), (0, 200, 200, 0)).save(root / "cmyk.jpg")
    Image.new("I;16", (32, 32), 40000).save(root / "deep16.png")
    frames = [Image.new("P", (32, 32), i) for i in (1, 2)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:])


def _palette_la(root: Path) -> None:
    Image.new("P", (32, 32), 3).save(root / "palette.png")
    Image.new("LA", (32, 32), (120, 128)).save(root / "la.png")


@dataclass
class Case:
    id: str
    text: str | bytes  # the walk file
    fact: str | None  # what the one error line says; None: the walk renders (exit code 0)
    setup: Callable[[Path], Any] | None = None  # makes the user's files (in the world, the working directory)
    argv: tuple[str, ...] = ("--out", "out")  # after the walk file
    walk: str = "walk.yaml"  # where the walk file is, in the world
    out: str = "out"  # the output folder, left out of the snapshot
    loads: bool = False  # the check needs the loaded model, so the model may load before the error
    frames: int = 3  # a good row: the frames it renders
    absent: tuple[str, ...] = ()  # paths in the world that must not exist afterwards (folders, link targets)
    stdout: str = ""  # a good row: a line its output must hold exactly once


CASES = [
    # --- prompts, seeds, frames
    Case("r2-001-prompts-numbers", _prompts("prompts: [1, 2]"), "prompts must be a list of non-empty strings, got [1, 2]"),
    Case("r2-002-prompts-nested-list", _prompts("prompts: [[a, b], c]"), "prompts must be a list of non-empty strings"),
    Case("r2-003-prompts-mapping", _prompts("prompts: {a: 1, b: 2}"), "prompts must be a list of non-empty strings"),
    Case("r2-004-prompts-one-string", _prompts("prompts: a red apple"), "a walk needs at least 2 prompts, got 1"),
    Case("r2-005-prompts-empty-list", _prompts("prompts: []"), "a walk needs at least 2 prompts, got 0"),
    Case("r2-006-prompts-zero-width", _prompts('prompts: ["\\u200b", "\\u200b"]'), None),
    Case("r2-007-seeds-true", BASE + "seeds: true\n", "seeds must be a whole number from 0 to 2**64 - 1"),
    Case("r2-008-seeds-float", BASE + "seeds: 1.5\n", "got 1.5"),
    Case("r2-009-seeds-1e3", BASE + "seeds: 1e3\n", "YAML reads 1e3 as text, not a number: write 1000"),
    Case("r2-009-steps-2e0", BASE.replace("steps: 2", "steps: 2e0"), "YAML reads 2e0 as text, not a number: write 2"),
    Case("r2-010-seeds-date", BASE + "seeds: 2024-01-01\n", "seeds must be a whole number"),
    Case("r2-011-frames-negative", _frames("frames: -5"), "frames must be a whole number from 2 to 100000, got -5 (int)"),
    Case("r2-012-frames-float", _frames("frames: 3.0"), "got 3.0 (float)"),
    Case("r2-013-frames-1e30", _frames("frames: " + "1" + "0" * 30), "frames must be a whole number from 2 to 100000"),
    Case("r2-014-frames-quoted", _frames("frames: '3'"), "got '3' (str)"),
    Case("r2-015-frames-inf", _frames("frames: .inf"), "frames must be a whole number from 2 to 100000, got inf"),
    # --- the YAML itself
    Case("r2-016-duplicate-key", BASE + "frames: 4\n", "the key 'frames' is given twice (lines 3 and 5)"),
    Case("r2-016-duplicate-key-flow", "{model: tiny-sd, model: teaching}\n", "the key 'model' is given twice"),
    Case("r2-017-empty-file", "", "expected a mapping of keys"),
    Case("r2-018-yaml-bom", "\ufeff" + BASE, None),
    Case("r2-019-yaml-tab", BASE + "formats:\n\t- gif\n", "is not valid YAML"),
    Case("r2-020-null-key", BASE + "~: 3\n", "unknown key(s) None"),
    # --- what the model reads
    Case("r2-021-rtl-unicode-prompts", _prompts("prompts: [\"\u202etfel ot thgir\", \u05ea\u05e4\u05d5\u05d7 \u0623\u062d\u0645\u0631]"), None),
    Case("r2-022-prompt-10k-chars", _prompts(f"prompts: [{'apple ' * 1700}, a green apple]"), None),
    Case("r2-023-prompts-equal-after-truncation",
         TEACHING.replace("a big red heart, a big blue heart", f"{LONG}a big red heart, {LONG}a big blue heart"),
         "reads only the first 12 tokens of a prompt (its token limit), and these differ only after that",
         loads=True),
    Case("r2-024-teaching-out-of-vocab",
         TEACHING.replace("a big red heart, a big blue heart", "a purple dragon breathing fire, a golden unicorn"),
         None, frames=2),
    Case("r2-025-negative-prompt-list", BASE + "negative_prompt: [blurry, ugly]\n", "negative_prompt must be a string"),
    # --- size against the model's native size
    Case("r2-026-size-8", BASE + "size: 8\n", None),
    Case("r2-027-size-512x8", BASE + "size: [512, 8]\n",
         "size (height) must be a positive multiple of 8 up to 128 (4x this model's native 32 px), got 512",
         loads=True),
    Case("r2-028-teaching-size-2048", TEACHING + "size: 2048\n",
         "size must be a positive multiple of 8 up to 128 (4x this model's native 32 px), got 2048"),
    Case("r2-028-sd15-size-4096", BASE.replace("tiny-sd", "sd15") + "size: 4096\n",
         "up to 2048 (4x this model's native 512 px), got 4096"),
    Case("r2-028-tiny-size-after-load", BASE + "size: 256\n", "up to 128 (4x this model's native 32 px)", loads=True),
    # --- render options
    Case("r2-029-formats-png", BASE + "formats: [png]\n", None),
    Case("r2-030-formats-empty", BASE + "formats: []\n", None),
    Case("r2-031-dtype-float16-cpu", TEACHING + "dtype: float16\ndevice: cpu\n", None, frames=2,
         stdout="note: dtype float16 on the CPU"),
    Case("r2-032-dtype-bfloat16-cpu", TEACHING + "dtype: bfloat16\ndevice: cpu\n", None, frames=2),
    Case("r2-033-compile-cpu", BASE + "compile: true\ndevice: cpu\n", None, stdout="compile: skipped on cpu"),
    Case("r2-034-device-cpu0", BASE + "device: cpu:0\n", "device must be one of auto, cpu, cuda, mps; got 'cpu:0'"),
    Case("r2-035-batch-size-huge", BASE + "batch_size: 100000\n", None),
    Case("r2-036-guidance-100", BASE + "guidance: 100\n", None),
    # --- where the output goes
    Case("r2-037-out-empty-string", BASE, "--out is empty", argv=("--out", ""), out="nowhere"),
    Case("r2-038-out-dangling-symlink", BASE, "is a symbolic link to", argv=("--out", "link"), out="nowhere",
         setup=lambda root: (root / "link").symlink_to(root / "missing"), absent=("missing",)),
    Case("r2-039-out-symlink-to-folder", BASE, None, argv=("--out", "link"), out="elsewhere",
         setup=lambda root: ((root / "elsewhere").mkdir(), (root / "link").symlink_to(root / "elsewhere"))),
    Case("r2-040-out-tilde-in-walk-file", BASE + "out: ~/walk_out\n", None, argv=(), walk="walks/x.yaml",
         out="home/walk_out", absent=("walks/~",)),
    Case("r2-041-images-tilde", UNCLIP + 'images: ["~/red.png", "~/green.png"]\n', None, argv=(),
         walk="walks/x.yaml", out="walks/x", setup=lambda root: _images(root / "home", "red.png", "green.png"),
         absent=("walks/~",)),
    Case("r2-042-out-dotdot", BASE + "out: ../../escaped_walk\n", None, argv=(), walk="a/b/walk.yaml",
         out="escaped_walk"),
    Case("r2-044-out-foreign-manifest", BASE, "is not a render_walk manifest", argv=("--out", "webapp", "--overwrite"),
         out="nowhere", setup=_foreign_manifest, loads=True),
    # --- model: a path
    Case("r2-047-model-non-model-folder", BASE.replace("tiny-sd", "./notamodel"), "model_index.json",
         setup=lambda root: ((root / "notamodel").mkdir(), (root / "notamodel" / "readme.txt").write_text("hi")),
         loads=True),
    Case("r2-048-model-path-vs-walk-file", BASE.replace("tiny-sd", "./mymodel"), None, walk="walks/w.yaml",
         setup=lambda root: _tiny_model(root / "walks" / "mymodel")),
    Case("r2-048-model-path-only-beside-cwd", BASE.replace("tiny-sd", "./mymodel"),
         "(model paths in a walk file are relative to its folder", walk="walks/w.yaml",
         setup=lambda root: (root / "mymodel").mkdir()),
    Case("r2-049-model-zero-byte-safetensors", BASE.replace("tiny-sd", "./empty.safetensors"),
         "cannot read the checkpoint", setup=lambda root: (root / "empty.safetensors").write_bytes(b"")),
    Case("r2-050-model-txt-file", BASE.replace("tiny-sd", "./notes.txt"), "is a file but not a checkpoint"),
    Case("r2-051-model-wrong-keys", BASE.replace("tiny-sd", "./wrong.safetensors"),
         "holds no Stable Diffusion weights", setup=_wrong_keys),
    Case("r2-052-model-evil-ckpt", BASE.replace("tiny-sd", "./evil.ckpt"), "cannot read the checkpoint",
         setup=_evil_ckpt, absent=("marker",)),
    # --- images
    Case("r2-054-image-directory", UNCLIP + "images: [imgdir.png/, photo.png]\n", "no image file at",
         setup=lambda root: (root / "imgdir.png").mkdir()),
    Case("r2-055-image-zero-byte", UNCLIP + "images: [zero.png, photo.png]\n", "is not an image Pillow can read",
         setup=lambda root: (root / "zero.png").write_bytes(b"")),
    Case("r2-056-image-truncated", UNCLIP + "images: [half.png, photo.png]\n", "is not an image Pillow can read",
         setup=lambda root: (root / "half.png").write_bytes((root / "photo.png").read_bytes()[:40])),
    Case("r2-057-image-corrupt-idat", UNCLIP + "images: [idat.png, photo.png]\n", "is not an image Pillow can read",
         setup=lambda root: (root / "idat.png").write_bytes(_png(16, 16, b"this is not zlib data"))),
    Case("r2-058-image-bomb-header", UNCLIP + "images: [bomb.png, photo.png]\n", "is not an image Pillow can read",
         setup=lambda root: (root / "bomb.png").write_bytes(_png(100_000, 100_000, zlib.compress(b"")))),
    Case("r2-060-image-cmyk-16bit-gif", UNCLIP + "images: [cmyk.jpg, deep16.png, anim.gif]\n", None,
         setup=_odd_images),
    Case("r2-061-image-1x1", UNCLIP + "images: [one.png, photo.png]\n", None,
         setup=lambda root: Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "one.png")),
    Case("r2-062-image-url", UNCLIP + 'images: ["https://example.com/a.png", photo.png]\n',
         "URLs are not supported; download the image and give its path"),
    Case("r2-063-image-palette-la", UNCLIP + "images: [palette.png, la.png]\n", None, setup=_palette_la),
    # --- timelines (issue 34): keyframes, loops, image keyframes, audio
    Case("tl-01-good", TIMELINE, None, frames=4),
    Case("tl-02-good-loop-image", TIMELINE.replace("  - prompt: a big blue heart\n    seed: 2\n",
                                                   "  - image: photo.png\n    frames: 2\n") + "loop: true\n",
         None, frames=5),
    Case("tl-03-good-audio", _keyframes("  - prompt: a big red heart\n  - prompt: a big blue heart\n    at: 0.5\n"
                                         "  - prompt: a big cat face\n") + "audio: beat.wav\nfps: 8\n", None,
         setup=_beat, frames=8),
    Case("tl-04-keyframes-not-list", _keyframes("") .replace("keyframes:\n", "keyframes: a red heart\n"),
         "keyframes must be a list of at least 2 entries"),
    Case("tl-05-keyframe-unknown-key", TIMELINE.replace("    easing: cosine", "    easeing: cosine"),
         "unknown key 'easeing' (did you mean 'easing'?)"),
    Case("tl-06-bad-easing", TIMELINE.replace("easing: cosine", "easing: bounce"),
         "easing must be one of linear, cosine, ease-in, ease-out, cubic; got 'bounce'"),
    Case("tl-07-frames-and-seconds", TIMELINE.replace("    frames: 3\n", "    frames: 3\n    seconds: 1.0\n"),
         "exactly one of them"),
    Case("tl-08-no-length", TIMELINE.replace("    frames: 3\n", ""), "give its length to the next keyframe"),
    Case("tl-09-at-without-audio", TIMELINE.replace("    frames: 3\n", "    frames: 3\n    at: 1.0\n"),
         "at= pins a keyframe to a time in the music; give the timeline audio="),
    Case("tl-10-mixed-with-prompts", TIMELINE + "prompts: [a, b]\n", "prompts: describes a plain walk"),
    Case("tl-11-loop-on-plain-walk", BASE + "loop: true\n", "use closed: true to loop a plain walk"),
    Case("tl-12-neither-prompt-nor-image", TIMELINE.replace("prompt: a big blue heart\n    seed: 2", "seed: 4"),
         "keyframe 1 needs a prompt: (the text to draw) or an image:"),
    Case("tl-13-image-missing", TIMELINE.replace("prompt: a big blue heart", "image: nothere.png"),
         "no image file at"),
    Case("tl-14-image-not-an-image", TIMELINE.replace("prompt: a big blue heart", "image: notes.txt"),
         "is not an image Pillow can read"),
    Case("tl-15-audio-missing", TIMELINE_AUDIO + "audio: nothere.wav\n", "audio: no audio file at"),
    Case("tl-16-audio-not-audio", TIMELINE_AUDIO + "audio: notes.txt\n", "notes.txt is not audio that librosa can decode"),
    Case("tl-17-audio-with-frames", TIMELINE + "audio: beat.wav\n", "with audio the music sets the segments' lengths",
         setup=_beat),
    Case("tl-18-smooth-without-audio", TIMELINE + "smooth: 0.5\n", "give audio: too"),
    Case("tl-19-smooth-out-of-range", TIMELINE_AUDIO + "audio: beat.wav\nsmooth: 2\n",
         "smooth must be a number from 0 to 1, got 2", setup=_beat),
    Case("tl-20-pins-on-one-frame", _keyframes("  - prompt: a big red heart\n  - prompt: a big blue heart\n"
                                               "    at: 0.5\n  - prompt: a big cat face\n    at: 0.51\n")
         + "audio: beat.wav\nfps: 8\nloop: true\n", "fall on the same frame of the music", setup=_beat, loads=True),
    Case("tl-21-unclip-prompt-keyframe", UNCLIP.replace("frames: 3\n", "") + "keyframes:\n  - image: photo.png\n"
         "    frames: 2\n  - prompt: a red apple\n", "walks between images: give every keyframe an image:"),
    Case("tl-22-good-unclip", UNCLIP.replace("frames: 3\n", "") + "keyframes:\n  - image: photo.png\n"
         "    frames: 2\n  - image: \"scene:red apple\"\n", None, frames=3),
    Case("tl-23-audio-silent", TIMELINE_AUDIO + "audio: silence.wav\n", "the audio has no onsets",
         setup=lambda root: _beat(root, silent=True), loads=True),
]


def _prepare(case: Case, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the walk file and make ``root`` the working directory, with ``$HOME`` inside it."""
    for name in ("transformers", "diffusers"):  # their log handlers may hold an earlier test's closed stderr
        for handler in logging.getLogger(name).handlers:
            if type(handler) is logging.StreamHandler:
                monkeypatch.setattr(handler, "stream", sys.stderr)
                monkeypatch.setattr(handler, "flush", sys.stderr.flush)  # transformers pins the flush too
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root / "home"))
    (root / "home").mkdir(exist_ok=True)
    walk = root / case.walk
    walk.parent.mkdir(parents=True, exist_ok=True)
    walk.write_bytes(case.text if isinstance(case.text, bytes) else case.text.encode())


def _run(case: Case, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = walkfile.main([case.walk, *case.argv, "--no-progress"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _error_line(rc: int, err: str) -> str:
    """The one ``error:`` line of a refused run (exit code 2, no traceback)."""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_hostile_walk_file(case: Case, world: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture) -> None:
    if case.setup is not None:
        case.setup(world)
    if case.fact is not None and not case.loads:
        def no_model(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a model was loaded before the walk file was checked")

        monkeypatch.setattr(walkfile, "load_model", no_model)
    _prepare(case, world, monkeypatch)
    out = world / case.out
    before = _snapshot(world, out)
    rc, stdout, err = _run(case, capsys)
    if case.fact is None:
        assert rc == 0 and "Traceback" not in err, err
        assert len(list(out.glob("frame_*.png"))) == case.frames
        if case.stdout:
            assert stdout.count(case.stdout) == 1, stdout
            assert "cannot run with" not in err
    else:
        assert case.fact in _error_line(rc, err)
    assert _snapshot(world, out) == before
    for path in case.absent:
        assert not os.path.lexists(world / path), path


def test_r2_077_a_second_cli_run_into_a_busy_folder_is_one_error(world, monkeypatch, capsys):
    """r2-077: while another render holds the folder, a second run stops with one line and changes nothing."""
    from helpers.walks.folder import _RUN_LOCK_NAME

    out = world / "out"
    out.mkdir()
    case = Case("busy", BASE, "another render is writing")
    _prepare(case, world, monkeypatch)
    with open(out / _RUN_LOCK_NAME, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        before = _snapshot(world, world / "nowhere")
        rc, _, err = _run(case, capsys)
    assert case.fact in _error_line(rc, err)
    assert _snapshot(world, world / "nowhere") == before


@pytest.fixture
def disk(tmp_path):
    """A 4 MiB tmpfs, to remount read-only."""
    with test_hostile.tmpfs(tmp_path, "4m") as mount:
        yield mount


@pytest.mark.parametrize("finished", [False, True], ids=["r2-080-read-only-fresh", "r2-081-read-only-finished"])
def test_a_read_only_disk_is_one_error(finished, disk, world, monkeypatch, capsys):
    case = Case("ro", BASE + "formats: [gif]\n", "Read-only file system", argv=("--out", str(disk / "walk")))
    _prepare(case, world, monkeypatch)
    if finished:
        assert _run(case, capsys)[0] == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
    before = _snapshot(disk, disk / "nowhere")
    rc, _, err = _run(case, capsys)
    assert case.fact in _error_line(rc, err)
    assert _snapshot(disk, disk / "nowhere") == before
