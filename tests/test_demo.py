"""``make demo`` (``python -m helpers.demo``) renders every walk the issue lists, on the teaching models, offline."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

import helpers.teaching as teaching
from helpers import demo
from helpers.pipelines import load_pipeline
from helpers.teaching.data import DigitClassifier

WALKS = ("two_prompt_walk", "all_digits_walk", "circular_noise_loop", "unclip_interpolation", "text_diff")


def test_demo_writes_gif_mp4_and_contact_sheet_for_every_walk(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--frames", "6", "--steps", "8"]) == 0
    printed = capsys.readouterr().out
    for name in WALKS:
        for ext in ("gif", "mp4", "png"):
            path = tmp_path / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
            assert str(path) in printed  # the demo says what it wrote
        gif = iio.imread(tmp_path / f"{name}.gif", index=None)
        mp4 = iio.imread(tmp_path / f"{name}.mp4", plugin="FFMPEG")
        assert gif.ndim == 4 and len(gif) >= 4 and mp4.ndim == 4 and len(mp4) >= 4
        assert np.ptp(gif.astype(np.int16), axis=0).max() > 0  # an animation, not one still frame
        with Image.open(tmp_path / f"{name}.png") as sheet:
            assert sheet.width > sheet.height / 2 and sheet.width >= 6 * 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_unclip_walk_endpoints_reconstruct_the_held_out_digits_and_the_text_diff_moves():
    settings = demo.Settings(model="teaching", out=None, frames=5)
    images = demo._endpoint_images(settings, prompt_frames=[])
    pipe = load_pipeline("teaching-unclip")
    walks = demo.image_walks(pipe, images, settings)
    frames = walks["unclip_interpolation"]
    assert len(frames) == 5
    for frame, image in ((frames[0], images[0]), (frames[-1], images[1])):
        got = torch.from_numpy(np.asarray(frame, dtype=np.float32) / 255).permute(2, 0, 1)
        assert got.shape == image.shape
        assert float(((got - image) ** 2).mean()) <= 0.01  # the reconstruction bound
    judge = DigitClassifier()
    labels = judge.predict([frames[0], frames[-1]])
    assert list(labels) == [3, 8]
    diff = walks["text_diff"]
    first, last = (np.asarray(diff[i], dtype=np.float32) / 255 for i in (0, -1))
    assert np.abs(first - last).mean() > 0.01


def test_missing_teaching_weights_are_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(teaching, "WEIGHTS_DIR", tmp_path / "nothing-here")
    assert demo.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "make teaching-models" in err and "Traceback" not in err


def test_bad_frame_count_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path), "--frames", "1"])


def test_sd15_demo_code_path_runs_on_tiny_real_pipelines(tmp_path, monkeypatch):
    # `make demo MODEL=sd15` needs a GPU and the hub; its code path runs here on tiny random components of the
    # same pipeline classes (SD 1.5 -> tiny "sd", Karlo -> tiny "unclip").
    import helpers.pipelines as pipelines

    loaded = []

    def fake_load(name, *args, **kwargs):
        loaded.append(name)
        return pipelines.tiny_pipeline({"sd15": "sd", "karlo": "unclip"}[name])

    monkeypatch.setattr(pipelines, "load_pipeline", fake_load)
    written = demo.run(demo.Settings(model="sd15", out=tmp_path, frames=4, steps=2))
    assert loaded == ["sd15", "karlo"]
    names = {p.stem for p in written}
    assert names == {"two_prompt_walk", "multi_prompt_walk", "circular_noise_loop", "unclip_interpolation",
                     "text_diff"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in written) and len(written) == 15
