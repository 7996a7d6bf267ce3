"""The explorers, driven headless: sliders set from code change the picture; the cache spares re-renders."""

from __future__ import annotations

import io

import ipywidgets as w
import numpy as np
import pytest
from PIL import Image

from helpers.widgets import FrameCache, FrameExplorer, WalkExplorer


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def grey(value: float, size: int = 8) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.float32)


def test_frame_cache_renders_each_key_once() -> None:
    calls = []
    cache = FrameCache(lambda k: calls.append(k) or k * 2)
    assert [cache.get(k) for k in (1, 2, 1, 1, 2)] == [2, 4, 2, 2, 4]
    assert calls == [1, 2] and cache.renders == 2 and cache.hits == 3 and len(cache) == 2
    with pytest.raises(TypeError):
        FrameCache(42)


def test_frame_explorer_slider_changes_the_picture_and_hits_the_cache() -> None:
    values = [0.0, 0.5, 1.0]
    explorer = FrameExplorer(grey, values, description="t")
    assert explorer.cache.renders == 1  # only the starting value is rendered
    first = explorer.image.value
    assert _decode(first)[0, 0, 0] == 0
    explorer.slider.value = 2
    assert explorer.image.value != first
    assert _decode(explorer.image.value)[0, 0, 0] == 255
    explorer.slider.value = 0
    explorer.slider.value = 2
    assert explorer.cache.renders == 2 and explorer.cache.hits >= 2
    assert explorer.image.value != first and "(cached)" in explorer.status.value


def test_small_frames_are_scaled_up_crisply_for_display() -> None:
    explorer = FrameExplorer(grey, [0.25], display_width=64)
    shown = _decode(explorer.image.value)
    assert shown.shape == (64, 64, 3)
    assert len(np.unique(shown)) == 1  # nearest-neighbour: no blurred edges


def test_contact_sheet_is_the_static_fallback_with_every_frame() -> None:
    explorer = FrameExplorer(grey, [0.0, 0.5, 1.0])
    sheet = explorer.contact_sheet()
    assert explorer.cache.renders == 3  # the fallback needs every frame
    assert sheet.width > 3 * 8 * 10  # 8-px frames scaled up to readable tiles
    arr = np.asarray(sheet.convert("L"))
    assert arr.min() == 0 and (arr == 128).any()  # the black frame and the grey one are both on the sheet


def test_walk_explorer_scrubs_without_rerendering() -> None:
    seed = w.IntText(value=3)
    calls = []

    def walk(num_frames, seed):
        calls.append((num_frames, seed))
        return [grey(i / (num_frames - 1)) for i in range(num_frames)]

    explorer = WalkExplorer(walk, {"seed": seed}, num_frames=5)
    assert calls == [(5, 3)]
    first = explorer.image.value
    for frac in (0.25, 0.5, 1.0, 0.0, 0.75):
        explorer.frac.value = frac
        assert explorer.index == round(frac * 4)
        assert _decode(explorer.image.value)[0, 0, 0] == round(255 * explorer.index / 4)
    assert explorer.image.value != first or explorer.index == 0
    assert calls == [(5, 3)], "scrubbing λ must not render again"
    seed.value = 4
    assert calls[-1] == (5, 4)
    seed.value = 3
    explorer.num_frames.value = 3
    assert calls == [(5, 3), (5, 4), (3, 3)], "coming back to seed 3 is served from the cache"
    assert explorer.frac.step == pytest.approx(0.5)


def test_walk_explorer_reports_errors_in_the_widget() -> None:
    text = w.Text(value="ok")

    def walk(num_frames, prompt):
        if not prompt:
            raise ValueError("give a prompt")
        return [grey(0.5)] * num_frames

    explorer = WalkExplorer(walk, {"prompt": text}, num_frames=2)
    shown = explorer.image.value
    text.value = ""
    assert "give a prompt" in explorer.status.value
    assert explorer.image.value == shown


def test_export_writes_gif_and_mp4_of_every_frame(tmp_path) -> None:
    explorer = WalkExplorer(lambda num_frames: [grey(i / 3) for i in range(num_frames)], num_frames=4,
                            out_dir=tmp_path, name="demo")
    gif = explorer.export("gif")
    assert gif == tmp_path / "demo.gif"
    with Image.open(gif) as im:
        assert im.n_frames == 4
    mp4 = explorer.export("mp4")
    assert mp4.stat().st_size > 0
    explorer.export_format.value = "gif"
    explorer.export_button.click()
    assert "demo.gif" in explorer.status.value
    with pytest.raises(ValueError, match="gif"):
        explorer.export("avi")


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="empty"):
        FrameExplorer(grey, [])
    with pytest.raises(ValueError, match="labels"):
        FrameExplorer(grey, [0.0, 1.0], labels=["a"])
    with pytest.raises(ValueError, match="file name"):
        FrameExplorer(grey, [0.0], name="a/b")
    with pytest.raises(ValueError, match="num_frames"):
        WalkExplorer(lambda num_frames: [], num_frames=1)
    with pytest.raises(TypeError, match="widget"):
        WalkExplorer(lambda num_frames: [], {"seed": 3})
