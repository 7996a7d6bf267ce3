"""The explorers, driven headless: sliders set from code change the picture; the cache spares re-renders; the live
explorer renders the frame under its sliders (the flow sampler's own picture) and drops stale positions."""

from __future__ import annotations

import io
import math
import threading

import ipywidgets as w
import numpy as np
import pytest
from PIL import Image

from helpers.widgets import FlowFrameRenderer, FrameCache, FrameExplorer, LiveExplorer, WalkExplorer


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


def frac_slider(value: float = 0.0) -> w.FloatSlider:
    return w.FloatSlider(value=value, min=0.0, max=1.0, step=0.05, description="λ")


def test_live_explorer_renders_every_position_without_a_cache() -> None:
    calls = []

    def render(frac):
        calls.append(frac)
        return grey(frac)

    explorer = LiveExplorer(render, {"frac": frac_slider()}, background=False)
    assert calls == [0.0] and _decode(explorer.image.value)[0, 0, 0] == 0
    for frac in (0.5, 1.0, 0.5):
        explorer.sliders["frac"].value = frac
        assert _decode(explorer.image.value)[0, 0, 0] == round(255 * frac)
    assert calls == [0.0, 0.5, 1.0, 0.5], "coming back to λ = 0.5 renders it again: nothing is cached"
    assert explorer.renders == explorer.requests == 4 and explorer.dropped == 0
    assert len(explorer.timings) == 4 and "ms/frame" in explorer.status.value and "λ = 0.50" in explorer.status.value


def test_live_explorer_renders_only_the_latest_of_a_fast_drag() -> None:
    started, release, calls = threading.Event(), threading.Event(), []

    def render(frac):
        calls.append(frac)
        if len(calls) == 2:  # the first move after the opening frame: hold it while the drag goes on
            started.set()
            assert release.wait(10)
        return grey(frac)

    explorer = LiveExplorer(render, {"frac": frac_slider()})
    explorer.sliders["frac"].value = 0.1
    assert started.wait(10)
    for frac in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):  # sent while the frame of λ = 0.1 renders
        explorer.sliders["frac"].value = frac
    release.set()
    assert explorer.wait(10)
    assert calls == [0.0, 0.1, 0.7], "the positions passed over while a frame rendered are dropped, not queued"
    assert explorer.requests == 8 and explorer.renders == 3 and explorer.dropped == 5
    assert _decode(explorer.image.value)[0, 0, 0] == round(255 * 0.7)
    assert "5 stale" in explorer.status.value


def test_live_explorer_static_view_sweeps_the_first_slider(tmp_path) -> None:
    angle = w.FloatSlider(value=90.0, min=0.0, max=360.0, description="θ")
    explorer = LiveExplorer(lambda frac, angle: grey(frac * abs(math.sin(math.radians(angle)))),
                            {"frac": frac_slider(), "angle": angle}, num_frames=5, background=False,
                            out_dir=tmp_path, name="live")
    assert explorer.labels() == ["lambda=0.00", "lambda=0.25", "lambda=0.50", "lambda=0.75", "lambda=1.00"]
    arr = np.asarray(explorer.contact_sheet().convert("L"))
    assert arr.min() == 0 and arr.max() == 255  # λ = 0 and λ = 1 at θ = 90° are on the sheet
    with Image.open(explorer.export("gif")) as im:
        assert im.n_frames == 5


def test_live_explorer_reports_errors_and_refuses_bad_input() -> None:
    def render(frac):
        if frac > 0.5:
            raise ValueError("too far")
        return grey(frac)

    explorer = LiveExplorer(render, {"frac": frac_slider()}, background=False)
    shown = explorer.image.value
    explorer.sliders["frac"].value = 0.9
    assert "too far" in explorer.status.value and explorer.image.value == shown
    assert isinstance(explorer.last_error, ValueError)
    with pytest.raises(ValueError, match="too far"):  # a render that fails on the opening frame fails loudly
        LiveExplorer(render, {"frac": frac_slider(0.9)})
    with pytest.raises(ValueError, match="empty"):
        LiveExplorer(grey, {})
    with pytest.raises(TypeError, match="slider"):
        LiveExplorer(grey, {"frac": 0.5})
    with pytest.raises(ValueError, match="sweep"):
        LiveExplorer(grey, {"frac": frac_slider()}, sweep="seed")
    with pytest.raises(TypeError, match="callable"):
        LiveExplorer(None, {"frac": frac_slider()})


@pytest.fixture(scope="module")
def sd3():
    import helpers

    pipe = helpers.tiny_pipeline("sd3")
    embeds, negative = helpers.encode_prompts(pipe, ["a red house", "a blue boat"], negative_prompt="a cat")
    return pipe, embeds, negative


def test_live_flow_explorer_shows_what_render_frames_gives(sd3) -> None:
    import helpers

    pipe, embeds, negative = sd3
    settings = {"num_inference_steps": 3, "guidance_scale": 3.0, "height": 32, "width": 32}
    noise = helpers.make_latents(pipe, [5, 6], height=32, width=32)
    renderer = FlowFrameRenderer(pipe, embeds, negative[:1], noise, **settings)
    assert renderer.evaluations == 6  # 3 steps, each the guided and the unguided row
    angle = w.FloatSlider(value=0.0, min=0.0, max=360.0, description="θ")
    explorer = LiveExplorer(renderer, {"frac": frac_slider(), "angle": angle})
    explorer.sliders["frac"].value = 0.3
    shown = np.asarray(explorer.current_frame())
    # The pipeline's own call, with the seed's noise drawn by render_frames itself.
    expected = helpers.render_frames(pipe, prompt_embeds=helpers.slerp(embeds[0], embeds[1], [0.3]),
                                     negative_prompt_embeds=negative[:1], seed=5, progress=False, **settings)[0]
    assert np.array_equal(shown, np.asarray(expected))
    assert np.array_equal(_decode(explorer.image.value)[::8, ::8], shown)  # the picture in the widget: 8x, crisp
    angle.value = 90.0  # a quarter of the loop: seed 6's noise (up to cos 90° ≈ 6e-17 of seed 5's)
    expected = helpers.render_frames(pipe, prompt_embeds=helpers.slerp(embeds[0], embeds[1], [0.3]),
                                     negative_prompt_embeds=negative[:1], seed=6, progress=False, **settings)[0]
    assert np.array_equal(np.asarray(explorer.current_frame()), np.asarray(expected))
    assert explorer.renders == 3 and not explorer.last_error


def test_the_live_renderer_draws_flux_frames_as_its_pipeline_does() -> None:
    """FLUX: packed tokens and its distilled guidance, one transformer row per step."""
    import helpers

    pipe = helpers.tiny_pipeline("flux")
    embeds, _ = helpers.encode_prompts(pipe, ["a red house", "a blue boat"])
    settings = {"num_inference_steps": 3, "guidance_scale": 3.5}
    renderer = FlowFrameRenderer(pipe, embeds, None, helpers.make_latents(pipe, [5, 6]), **settings)
    assert renderer.evaluations == 3
    expected = helpers.render_frames(pipe, prompt_embeds=helpers.slerp(embeds[0], embeds[1], [0.4]), seed=5,
                                     progress=False, **settings)[0]
    np.testing.assert_allclose(np.asarray(renderer(0.4), dtype=float), np.asarray(expected, dtype=float), atol=1)


def test_flow_frame_renderer_refuses_other_pipelines_and_bad_input(sd3) -> None:
    import helpers

    pipe, embeds, negative = sd3
    noise = helpers.make_latents(pipe, [0, 1], height=32, width=32)
    with pytest.raises(TypeError, match="SD 3- or FLUX-class.*WalkExplorer"):
        FlowFrameRenderer(helpers.tiny_pipeline("text2img"), embeds, negative, noise, num_inference_steps=2)
    with pytest.raises(ValueError, match="latents is missing"):
        FlowFrameRenderer(pipe, embeds, negative, num_inference_steps=2)
    with pytest.raises(ValueError, match="1 or 2 rows"):
        FlowFrameRenderer(pipe, embeds.repeat(2, 1, 1), negative[:1], noise, num_inference_steps=2)
    with pytest.raises(ValueError, match="latents rows"):
        FlowFrameRenderer(pipe, embeds, negative, noise[:, :, :2], num_inference_steps=2)
    with pytest.raises(ValueError, match="num_inference_steps"):
        FlowFrameRenderer(pipe, embeds, negative, noise, num_inference_steps=0)
    renderer = FlowFrameRenderer(pipe, embeds, negative, noise[:1], num_inference_steps=2)
    with pytest.raises(ValueError, match="frac must be"):
        renderer(1.5)
    with pytest.raises(ValueError, match="two rows of latents"):
        renderer(0.5, 30.0)
