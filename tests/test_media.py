"""Tests for helpers.media: conversions, atomic writes, GIF/MP4 round trips, grids, show, load_image."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageSequence

from helpers import media
from helpers.media import (
    atomic_write,
    export_gif,
    export_mp4,
    image_grid,
    load_image,
    save_image,
    show,
    to_pil,
    to_pil_list,
)

# ----------------------------------------------------------------------------------------------- helpers


def solid_frames(n: int, size: tuple[int, int] = (12, 10), seed: int = 0) -> list[np.ndarray]:
    """n HxWx3 uint8 frames of clearly different solid colours, each with a small contrasting square."""
    rng = np.random.default_rng(seed)
    h, w = size
    frames = []
    for i in range(n):
        colour = np.array([(60 * i) % 256, (255 - 40 * i) % 256, (30 + 97 * i) % 256], np.uint8)
        f = np.broadcast_to(colour, (h, w, 3)).copy()
        y, x = rng.integers(0, max(1, h - 3)), rng.integers(0, max(1, w - 3))
        f[y : y + 3, x : x + 3] = 255 - colour
        frames.append(f)
    return frames


def read_gif(path: Path) -> tuple[list[np.ndarray], list[int], dict]:
    """Frames (RGB, composited by Pillow), per-frame durations in ms, and the first frame's info."""
    with Image.open(path) as im:
        info = dict(im.info)
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info["duration"])
    return frames, durations, info


def read_gif_ffmpeg(path: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """Frames decoded by ffmpeg's own GIF decoder (independent of Pillow), one per stored frame."""
    gen = imageio_ffmpeg.read_frames(str(path), output_params=["-fps_mode", "passthrough"])
    next(gen)  # metadata
    h, w = size
    return [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]


def nearest_index(frame: np.ndarray, refs: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(frame.astype(int) - r.astype(int)).mean() for r in refs]))


# ----------------------------------------------------------------------------------------------- conversion


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from([0, 1, 3, 4]),
    st.data(),
)
def test_every_input_kind_gives_the_same_picture(h, w, c, data):
    shape = (h, w) if c == 0 else (h, w, c)
    a = data.draw(arrays(np.uint8, shape))
    expected = a[..., 0] if c == 1 else a  # one channel → an "L" image
    hwc = a if a.ndim == 3 else a[..., None]
    chw = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    kinds = {
        "uint8": a,
        "float64": a / 255.0,
        "float32": (a / 255.0).astype(np.float32),
        "float16": (a / 255.0).astype(np.float16),
        "int64": a.astype(np.int64),
        "tensor_float": chw.float() / 255,
        "tensor_half": (chw.float() / 255).half(),
        "tensor_uint8": chw,
        "tensor_batch_of_one": (chw.float() / 255)[None],
        "array_batch_of_one": (hwc / 255.0)[None],
        "pil": Image.fromarray(expected),
    }
    for name, frame in kinds.items():
        im = to_pil(frame)
        assert im.mode == {1: "L", 0: "L", 3: "RGB", 4: "RGBA"}[c], name
        assert im.size == (w, h), name
        np.testing.assert_array_equal(np.asarray(im), expected, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, (5, 7, 3)), st.floats(-0.9e-3, 0.9e-3))
def test_float_noise_below_half_a_level_and_tolerated_overshoot_are_absorbed(a, noise):
    # Noise of at most 1e-3 (0.26 of a level) never changes the rounded value; overshoot is clipped.
    im = to_pil(np.clip(a / 255.0 + noise, -0.9e-3, 1 + 0.9e-3))
    np.testing.assert_array_equal(np.asarray(im), a)


def test_bfloat16_tensor_is_within_one_level():
    a = np.random.default_rng(0).integers(0, 256, (3, 9, 9), dtype=np.uint8)
    t = (torch.from_numpy(a).float() / 255).bfloat16()
    diff = np.abs(np.asarray(to_pil(t)).astype(int) - a.transpose(1, 2, 0))
    assert diff.max() <= 1


def test_bool_and_pil_modes():
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    assert np.asarray(to_pil(mask))[1, 2] == 255 and np.asarray(to_pil(mask)).sum() == 255
    p = Image.new("P", (3, 3))
    assert to_pil(p).mode == "RGB"
    assert to_pil(Image.new("LA", (3, 3))).mode == "RGBA"
    assert to_pil(Image.new("1", (3, 3))).mode == "L"


def test_batches_lists_and_pipeline_outputs_agree():
    frames = solid_frames(5)
    batch = np.stack(frames)
    nchw = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255

    class PipelineOutput:  # what a diffusers pipeline returns
        images = nchw

    variants = {
        "list_uint8": frames,
        "tuple_pil": tuple(Image.fromarray(f) for f in frames),
        "nhwc_float": batch / 255.0,
        "nchw_tensor": nchw,
        "list_of_chunks": [nchw[:2], nchw[2:]],
        "generator": (f for f in frames),
        "pipeline_output": PipelineOutput(),
    }
    for name, v in variants.items():
        ims = to_pil_list(v)
        assert len(ims) == 5, name
        for im, f in zip(ims, frames):
            np.testing.assert_array_equal(np.asarray(im), f, err_msg=name)
    assert len(to_pil_list(frames[0])) == 1  # one frame is a list of one


@pytest.mark.parametrize(
    ("bad", "error", "phrase"),
    [
        (np.full((4, 4, 3), np.nan), ValueError, "NaN or inf"),
        (np.full((4, 4, 3), np.inf, np.float32), ValueError, "NaN or inf"),
        (np.full((4, 4, 3), 1.01), ValueError, "must be in [0, 1]"),
        (np.linspace(-1, 1, 48).reshape(4, 4, 3), ValueError, "(x + 1) / 2"),
        (np.full((4, 4, 3), 200.0), ValueError, "x / 255"),
        (np.full((4, 4), 300), ValueError, "0..255"),
        (np.zeros(16), ValueError, "HxW or HxWxC"),
        (np.zeros((1, 1, 4, 4, 3)), ValueError, "HxW or HxWxC"),
        (np.zeros((2, 4, 4, 3)), ValueError, "to_pil_list"),
        (np.zeros((4, 4, 2)), ValueError, "1, 3 or 4 channels"),
        (np.zeros((3, 32, 32)), ValueError, "transpose(1, 2, 0)"),
        (np.zeros((0, 4, 3)), ValueError, "at least one pixel"),
        (np.zeros((4, 4), complex), TypeError, "dtype"),
        (torch.zeros(32, 32, 3), ValueError, "permute(2, 0, 1)"),
        (torch.zeros(2, 3, 8, 8), ValueError, "to_pil_list"),
        (torch.zeros(8), ValueError, "CxHxW or HxW"),
        (torch.full((3, 4, 4), -0.5), ValueError, "(x + 1) / 2"),
        ("frame.png", TypeError, "load_image"),
        ([np.zeros((4, 4, 3))], TypeError, "to_pil_list"),
        (object(), TypeError, "PIL image"),
    ],
)
def test_to_pil_errors_say_what_to_do(bad, error, phrase):
    with pytest.raises(error) as err:
        to_pil(bad)
    assert phrase in str(err.value)


@pytest.mark.parametrize(
    ("bad", "error", "phrase"),
    [
        ([], ValueError, "No frames"),
        (np.zeros((0, 8, 8, 3)), ValueError, "No frames"),
        (iter(()), ValueError, "No frames"),
        (np.zeros((1, 2, 3, 4, 3)), ValueError, "batch"),
        ("walk.gif", TypeError, "load_image"),
        (42, TypeError, "list of frames"),
        ([np.zeros((4, 4, 3)), np.full((4, 4, 3), np.nan)], ValueError, "NaN"),
    ],
)
def test_to_pil_list_errors(bad, error, phrase):
    with pytest.raises(error, match=re.escape(phrase)):
        to_pil_list(bad)


# ----------------------------------------------------------------------------------------------- atomic_write


def test_atomic_write_success_creates_parents_and_normal_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "out.gif"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".gif" and tmp != target
        tmp.write_bytes(b"hello")
    assert target.read_bytes() == b"hello"
    assert os.listdir(target.parent) == ["out.gif"]
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_atomic_write_keeps_the_mode_of_a_replaced_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_atomic_write_failure_leaves_no_trace(tmp_path, exc, existing):
    target = tmp_path / "out.png"
    if existing:
        target.write_bytes(b"precious bytes")
    with pytest.raises(type(exc)):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise exc
    if existing:
        assert target.read_bytes() == b"precious bytes"
        assert os.listdir(tmp_path) == ["out.png"]
    else:
        assert os.listdir(tmp_path) == []


def test_atomic_write_refuses_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        with atomic_write(tmp_path):
            pass


@pytest.mark.parametrize("existing", [False, True])
def test_gif_encoder_failure_midway_leaves_target_intact(tmp_path, monkeypatch, existing):
    target = tmp_path / "walk.gif"
    if existing:
        export_gif(solid_frames(3), target)
    before = target.read_bytes() if existing else None
    written = {}

    def failing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a" + b"\0" * 100)  # some bytes of a GIF, then the encoder dies
        written["path"] = Path(fp)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        export_gif(solid_frames(4, seed=1), target)
    assert written["path"].parent == tmp_path and written["path"] != target
    assert sorted(os.listdir(tmp_path)) == (["walk.gif"] if existing else [])
    if existing:
        assert target.read_bytes() == before


@pytest.mark.parametrize("existing", [False, True])
def test_mp4_encoder_failure_midway_leaves_target_intact(tmp_path, monkeypatch, existing):
    target = tmp_path / "walk.mp4"
    if existing:
        target.write_bytes(b"an older video")
    real_get_writer = iio2.get_writer
    seen = {}

    def get_writer(path, *args, **kwargs):
        writer = real_get_writer(path, *args, **kwargs)
        real_append, real_close, count = writer.append_data, writer.close, [0]

        def append_data(frame):
            count[0] += 1
            if count[0] == 3:
                raise RuntimeError("encoder crashed (simulated)")
            real_append(frame)

        def close():
            real_close()
            seen["bytes_written"] = Path(path).stat().st_size

        writer.append_data, writer.close = append_data, close
        return writer

    monkeypatch.setattr(iio2, "get_writer", get_writer)
    with pytest.raises(RuntimeError, match="simulated"):
        export_mp4(solid_frames(6, size=(32, 32)), target)
    assert seen["bytes_written"] > 0  # ffmpeg really wrote part of a file before the failure
    if existing:
        assert target.read_bytes() == b"an older video"
        assert os.listdir(tmp_path) == ["walk.mp4"]
    else:
        assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------- GIF


def test_gif_round_trip_distinct_frames(tmp_path):
    frames = solid_frames(6)
    path = export_gif(frames, tmp_path / "walk.gif", fps=10)
    assert path == tmp_path / "walk.gif"
    got, durations, info = read_gif(path)
    assert len(got) == 6 and durations == [100] * 6 and info["loop"] == 0
    for g, f in zip(got, frames):
        np.testing.assert_array_equal(g, f)  # few colours: GIF quantisation is exact
    assert Image.open(path).size == (10, 12)


@pytest.mark.parametrize("fps", [1, 7, 12.5, 24, 30, 50])
def test_gif_durations_follow_fps_to_the_nearest_10ms(tmp_path, fps):
    _, durations, _ = read_gif(export_gif(solid_frames(3), tmp_path / "a.gif", fps=fps))
    assert all(d % 10 == 0 and abs(d - 1000 / fps) <= 5 for d in durations)


@pytest.mark.parametrize(("loop", "expected"), [(0, 0), (3, 3), (None, None)])
def test_gif_loop_count(tmp_path, loop, expected):
    _, _, info = read_gif(export_gif(solid_frames(3), tmp_path / "a.gif", loop=loop))
    assert info.get("loop") == expected


@pytest.mark.parametrize("pattern", [[0, 0], [0, 0, 0], [0, 1, 1, 1, 2, 3, 3], [0, 1, 0, 0, 1]])
def test_gif_keeps_repeated_frames(tmp_path, pattern):
    refs = solid_frames(4)
    frames = [refs[i] for i in pattern]
    path = export_gif(frames, tmp_path / "rep.gif", fps=20)
    got, durations, _ = read_gif(path)
    assert len(got) == len(pattern) and durations == [50] * len(pattern)
    for g, f in zip(got, frames):
        np.testing.assert_array_equal(g, f)
    # ffmpeg's decoder (what video tools see) agrees, frame by frame.
    by_ffmpeg = read_gif_ffmpeg(path, (12, 10))
    assert len(by_ffmpeg) == len(pattern)
    for g, f in zip(by_ffmpeg, frames):
        np.testing.assert_array_equal(g, f)


def test_gif_of_smooth_frames_with_many_colours_stays_close(tmp_path):
    y, x = np.mgrid[0:120, 0:160] / 159.0  # larger than the 96-px palette sample, > 255 colours
    frames = [np.stack([x, y * 0.7, (x + t) % 1.0], -1) for t in np.linspace(0, 0.3, 4)]
    got, _, _ = read_gif(export_gif(frames + [frames[-1]], tmp_path / "s.gif"))
    assert len(got) == 5
    for g, f in zip(got, frames + [frames[-1]]):
        assert np.abs(g / 255.0 - f).mean() < 0.02


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_pingpong_order_read_back(tmp_path, n):
    refs = solid_frames(n)
    got, _, _ = read_gif(export_gif(refs, tmp_path / "pp.gif", pingpong=True))
    order = [nearest_index(g, refs) for g in got]
    expected = list(range(n)) + list(range(n - 2, 0, -1))
    assert order == expected
    # Looping: the last frame is a neighbour of the first, so no frame shows twice in a row.
    if n > 1:
        assert len(order) == 2 * n - 2 and abs(order[-1] - order[0]) == 1


def test_gif_scale_upsamples_with_nearest_neighbour(tmp_path):
    frames = solid_frames(2, size=(4, 5))
    got, _, _ = read_gif(export_gif(frames, tmp_path / "big.gif", scale=3))
    assert got[0].shape == (12, 15, 3)
    np.testing.assert_array_equal(got[1], np.repeat(np.repeat(frames[1], 3, 0), 3, 1))


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"fps": 60}, "export_mp4"),
        ({"fps": 0}, "fps must be a finite number > 0"),
        ({"fps": float("nan")}, "fps must be a finite number > 0"),
        ({"loop": -1}, "loop"),
        ({"scale": 0}, "scale"),
    ],
)
def test_gif_option_errors_write_nothing(tmp_path, kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        export_gif(solid_frames(3), tmp_path / "x.gif", **kwargs)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("writer", "name"), [(export_gif, "x.gif"), (export_mp4, "x.mp4")])
def test_animations_refuse_empty_mixed_sizes_and_wrong_names(tmp_path, writer, name):
    with pytest.raises(ValueError, match="No frames"):
        writer([], tmp_path / name)
    mixed = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"same size.*frame 2 is 8x9"):
        writer(mixed, tmp_path / name)
    with pytest.raises(ValueError, match=f"{writer.__name__} needs a file name ending in .{name[2:]}"):
        writer(solid_frames(2), tmp_path / "walk.png")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------- MP4


def smooth_frames(n: int, h: int, w: int) -> list[np.ndarray]:
    y, x = np.mgrid[0:h, 0:w]
    return [
        np.stack([x / max(w - 1, 1), y / max(h - 1, 1), np.full((h, w), i / max(n - 1, 1))], -1)
        for i in range(n)
    ]


@pytest.mark.parametrize(("h", "w"), [(32, 32), (48, 64)])
def test_mp4_round_trip(tmp_path, h, w):
    frames = smooth_frames(10, h, w)
    path = export_mp4(frames, tmp_path / "walk.mp4", fps=12)
    assert path == tmp_path / "walk.mp4"
    meta = iio.immeta(path, plugin="FFMPEG")
    got = iio.imread(path, plugin="FFMPEG")
    assert got.shape == (10, h, w, 3)
    assert meta["fps"] == pytest.approx(12)
    for g, f in zip(got, frames):
        assert np.abs(g / 255.0 - f).mean() < 0.03  # lossy, but the same picture


def test_mp4_odd_size_is_padded_not_resampled(tmp_path):
    frames = smooth_frames(4, 17, 33)
    got = iio.imread(export_mp4(frames, tmp_path / "odd.mp4", fps=8), plugin="FFMPEG")
    assert got.shape == (4, 18, 34, 3)  # one repeated row and column
    for g, f in zip(got, frames):
        assert np.abs(g[:17, :33] / 255.0 - f).mean() < 0.03
        assert np.abs(g[17, :33] / 255.0 - f[16]).mean() < 0.05


def test_mp4_pingpong_and_scale(tmp_path):
    refs = solid_frames(4, size=(16, 16))
    got = iio.imread(export_mp4(refs, tmp_path / "pp.mp4", pingpong=True, scale=2), plugin="FFMPEG")
    assert got.shape == (6, 32, 32, 3)
    small = [np.repeat(np.repeat(r, 2, 0), 2, 1) for r in refs]
    assert [nearest_index(g, small) for g in got] == [0, 1, 2, 3, 2, 1]


@pytest.mark.parametrize(("kwargs", "phrase"), [({"quality": 11}, "quality"), ({"fps": -1}, "fps must be a finite number > 0")])
def test_mp4_option_errors(tmp_path, kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        export_mp4(solid_frames(2), tmp_path / "x.mp4", **kwargs)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------- image_grid


def test_grid_default_layout_and_size_arithmetic():
    tiles = solid_frames(6, size=(12, 10))
    g = image_grid(tiles, pad=2)
    assert g.size == (6 * 10 + 7 * 2, 12 + 2 * 2)  # ≤ 8 frames: one row
    g = image_grid(solid_frames(10), pad=3)
    assert g.size == (4 * 10 + 5 * 3, 3 * 12 + 4 * 3)  # 10 frames: ceil(sqrt(10)) = 4 columns, 3 rows
    g = image_grid(solid_frames(7), cols=3, pad=0)
    assert g.size == (30, 36)
    assert image_grid(solid_frames(2), cols=5, pad=0).size == (20, 12)  # never more columns than frames


def test_grid_places_each_tile_in_reading_order():
    tiles = solid_frames(7, size=(6, 5))
    g = np.asarray(image_grid(tiles, cols=3, pad=1, bg="black"))
    for i, t in enumerate(tiles):
        r, c = divmod(i, 3)
        y, x = 1 + r * 7, 1 + c * 6
        np.testing.assert_array_equal(g[y : y + 6, x : x + 5], t)
    np.testing.assert_array_equal(g[-7:-1, 13:18], 0)  # the empty 9th cell is background


def test_grid_labels_add_a_strip_under_each_row():
    tiles = solid_frames(5, size=(24, 40))
    plain = image_grid(tiles, cols=3, pad=2)
    labelled = image_grid(tiles, cols=3, pad=2, labels=[f"t={i / 4:.2f}" for i in range(5)])
    assert labelled.width == plain.width
    extra = labelled.height - plain.height
    assert extra > 0 and extra % 2 == 0  # two rows, the same label height each
    label_h = extra // 2
    g = np.asarray(labelled)
    np.testing.assert_array_equal(g[2 : 2 + 24, 2 : 2 + 40], tiles[0])  # tiles untouched
    strip = g[2 + 24 : 2 + 24 + label_h, 2 : 2 + 40]
    assert (strip.sum(-1) < 200).any()  # dark text on the white background
    lone = np.asarray(image_grid(tiles, cols=3, pad=2, labels=["a", None, None, None, None]))
    second_strip = lone[2 + 24 : 2 + 24 + label_h, 44 : 44 + 40]
    assert (second_strip == 255).all()  # None: no text


def test_grid_long_labels_stay_inside_their_tile():
    tiles = [np.zeros((8, 8, 3), np.uint8)] * 2
    g = np.asarray(image_grid(tiles, pad=4, bg="white", labels=["a very long label indeed", "x"]))
    assert (g[:, :4] == 255).all() and (g[:, 12:16] == 255).all()  # gutters stay clean


def test_grid_mixed_sizes_and_alpha():
    big = np.zeros((10, 10, 3), np.uint8)
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # one transparent pixel shows the background
    g = np.asarray(image_grid([big, rgba], pad=0, bg=(0, 0, 255)))
    assert g.shape == (10, 20, 3)
    y0, x0 = (10 - 4) // 2, 10 + (10 - 6) // 2  # centred in its cell
    np.testing.assert_array_equal(g[y0, x0], [0, 0, 255])
    np.testing.assert_array_equal(g[y0 + 1, x0 + 1], [0, 0, 0])
    np.testing.assert_array_equal(g[0, 10], [0, 0, 255])


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"labels": ["a"]}, "one label per frame"),
        ({"cols": 0}, "cols"),
        ({"pad": -1}, "pad"),
        ({"bg": "not-a-colour"}, "not a colour"),
        ({"scale": 1.5}, "scale"),
    ],
)
def test_grid_errors(kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        image_grid(solid_frames(3), **kwargs)


# ----------------------------------------------------------------------------------------------- save / load


def test_save_image_png_round_trip_and_formats(tmp_path):
    frame = solid_frames(1)[0]
    path = save_image(frame / 255.0, tmp_path / "sub" / "f.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), frame)
    grid = image_grid(solid_frames(3))
    np.testing.assert_array_equal(
        np.asarray(Image.open(save_image(grid, tmp_path / "g.png"))), np.asarray(grid)
    )
    rgba = np.zeros((4, 4, 4), np.uint8)
    assert Image.open(save_image(rgba, tmp_path / "x.jpg")).mode == "RGB"
    with pytest.raises(ValueError, match=r"\.png"):
        save_image(frame, tmp_path / "noext")


def test_load_image_sizes_modes_and_exif(tmp_path):
    src = np.zeros((40, 60, 3), np.uint8)
    src[:, :30] = (255, 0, 0)
    Image.fromarray(src).save(tmp_path / "wide.png")
    im = load_image(tmp_path / "wide.png")
    assert im.mode == "RGB" and im.size == (60, 40)
    assert load_image(str(tmp_path / "wide.png"), mode="L").mode == "L"
    sq = load_image(tmp_path / "wide.png", size=20)
    assert sq.size == (20, 20)
    # centre-cropped, not stretched: left half red, right half black
    a = np.asarray(sq).astype(int)
    assert (a[:, :8, 0] > 200).all() and (a[:, 12:, 0] < 50).all()
    assert load_image(tmp_path / "wide.png", size=(30, 10)).size == (30, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display upright
    Image.fromarray(src).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (40, 60)


def test_load_image_missing_file(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError) as err:
        load_image(missing)
    assert str(missing) in str(err.value) and "upload" in str(err.value)


@pytest.mark.parametrize(
    ("content", "phrase"),
    [(b"this is not an image", "PNG, JPEG"), (None, "truncated")],
)
def test_load_image_unreadable_file_is_a_short_value_error(tmp_path, content, phrase):
    path = tmp_path / "broken.png"
    if content is None:  # the first half of a real PNG
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            buf, "PNG"
        )
        content = buf.getvalue()[: len(buf.getvalue()) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        load_image(path)
    message = str(err.value)
    assert str(path) in message and phrase in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained PIL traceback


@pytest.mark.parametrize(
    ("kwargs", "phrase"), [({"mode": "CMYK"}, "mode"), ({"size": 0}, "size"), ({"size": (3, 4, 5)}, "size")]
)
def test_load_image_argument_errors(tmp_path, kwargs, phrase):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=phrase):
        load_image(tmp_path / "a.png", **kwargs)


def test_load_image_folder(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        load_image(tmp_path)


# ----------------------------------------------------------------------------------------------- show


def decode_bundle(anim) -> tuple[str, bytes, dict]:
    """The mime type, decoded bytes and metadata that Jupyter receives for ``anim``."""
    data, metadata = anim._repr_mimebundle_()
    (mime, encoded), = data.items()
    return mime, base64.b64decode(encoded), metadata[mime]


def test_show_headless_returns_an_animation(capsys):
    refs = solid_frames(4, size=(16, 16))
    anim = show(refs, fps=5, pingpong=True)
    assert capsys.readouterr().out == ""  # outside Jupyter nothing is printed
    mime, data, metadata = decode_bundle(anim)
    assert mime == "image/gif" and data == anim.data and metadata == {"width": 256}
    with Image.open(io.BytesIO(data)) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        assert im.info["loop"] == 0 and im.info["duration"] == 200
    small = [f[::16, ::16] for f in frames]
    assert frames[0].shape == (256, 256, 3)  # 16 px scaled up 16x before encoding, by nearest neighbour:
    np.testing.assert_array_equal(frames[0], small[0].repeat(16, axis=0).repeat(16, axis=1))  # crisp blocks
    assert [nearest_index(f, refs) for f in small] == [0, 1, 2, 3, 2, 1]
    assert "6 frames" in repr(anim)


def test_show_large_frames_and_stills(tmp_path):
    big = show([np.zeros((20, 300, 3))] * 2)
    mime, data, metadata = decode_bundle(big)
    assert metadata == {"width": 300} and Image.open(io.BytesIO(data)).size == (300, 20)  # not scaled
    still = show(solid_frames(1)[0], width=100)
    mime, data, metadata = decode_bundle(still)
    assert mime == "image/png" and metadata == {"width": 100}
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)))[::10, ::10], solid_frames(1)[0])
    saved = still.save(tmp_path / "still.png")
    assert saved.read_bytes() == still.data
    with pytest.raises(ValueError, match="width"):
        show(solid_frames(2), width=0)
    with pytest.raises(ValueError, match="export_mp4"):
        show(solid_frames(2), fps=100)


def test_show_in_ipython_displays_once_per_cell(monkeypatch):
    import IPython.display

    class FakeShell:
        execution_count = 5

    shell = FakeShell()
    shown: list = []
    monkeypatch.setattr(media, "_get_ipython", lambda: shell)
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    anim = show(solid_frames(3))
    assert shown == [anim]  # displayed at once (works inside loops)
    anim._ipython_display_()  # IPython echoing the cell's value: not shown a second time
    assert len(shown) == 1
    shell.execution_count = 6  # the object shown again in a later cell
    anim._ipython_display_()
    assert len(shown) == 2 and "image/gif" in shown[-1]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped elsewhere), unmounted afterwards."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount to make a small full disk (tmpfs)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_export_on_a_full_disk_raises_and_keeps_the_old_file(tiny_disk, suffix):
    # Regression (issue 12, defect 2): ffmpeg logged "No space left on device" and export_mp4 returned success,
    # replacing a good MP4 with a broken one.
    from helpers.media import ExportError, export_gif, export_mp4

    export = export_mp4 if suffix == ".mp4" else export_gif
    rng = np.random.default_rng(0)
    small = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(4)]
    good = export(small, tiny_disk / f"walk{suffix}", fps=8)
    before = good.read_bytes()
    filler = tiny_disk / "filler.bin"
    free = shutil.disk_usage(tiny_disk).free
    filler.write_bytes(b"\0" * max(0, free - 24 * 1024))  # leave about 24 KiB
    noisy = [Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)) for _ in range(24)]
    with pytest.raises(ExportError, match="Nothing was replaced"):
        export(noisy, tiny_disk / f"walk{suffix}", fps=8)
    assert good.read_bytes() == before  # the good file is untouched
    assert not [p for p in tiny_disk.iterdir() if ".part" in p.name]  # no half-written file left
