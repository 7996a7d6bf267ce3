"""Hostile and careless values at the public API, second round (issue 30; review 2026-12-06, cases 85-110,
139-161, 195, 198-200): interpolation paths, render_frames, morph and unCLIP.

One row per review case (ids ``r2-NNN-…``). Error rows assert the exception type, the key fact of its message and
that no file outside the output folder changed; the rows of cases that behaved guard them as they are. Then the
one gate for numbers: NumPy scalars pass wherever Python numbers do, and no frame made of NaN is ever returned.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_hostile
import torch
from PIL import Image
from test_hostile import ApiCase, _snapshot, assert_one_clear_error

from helpers.embeddings import encode_prompts, make_latents
from helpers.interpolation import circular_walk, interpolation_path, lerp, slerp, walk_around
from helpers.metrics import walk_report
from helpers.morph import (
    attention_interpolation,
    chained_img2img,
    invert_images,
    morph_inputs,
    prepare_images,
    render_morph,
)
from helpers.pipelines import load_pipeline
from helpers.render import NonFiniteFramesError, render_frames
from helpers.smooth import adain_interpolate, retime
from helpers.unclip import UnCLIPInversion, decode, invert, prior_embeddings, prior_text_walk
from helpers.unclip import morph as unclip_morph
from helpers.walks import render_walk

sd, unclip, world = test_hostile.sd, test_hostile.unclip, test_hostile.world  # fixtures, used by name
x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
y = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
RED, BLUE = Image.new("RGB", (32, 32), (220, 20, 20)), Image.new("RGB", (32, 32), (20, 20, 220))
APPLES = ("a big red apple", "a big green apple")


@pytest.fixture(scope="module")
def teach():
    """The teaching text-to-image unCLIP pipeline (it has the diffusion prior)."""
    pipe = load_pipeline("teaching-unclip-text")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def teaching_sd():
    """The 32 px teaching text-to-image model and the embeddings of two prompts."""
    pipe = load_pipeline("teaching")
    pipe.set_progress_bar_config(disable=True)
    return pipe, encode_prompts(pipe, list(APPLES))[0]


@pytest.fixture(scope="module")
def i2(sd):
    """``I2``: the inversion of a red and a blue square by the tiny Stable Diffusion."""
    return invert_images(sd[0], [RED, BLUE], num_inference_steps=2)


@pytest.fixture(scope="module")
def up_inputs(unclip):
    """The tiny unCLIP's (embeddings, decoder noise, super-res noise) for two frames."""
    pipe, emb = unclip
    return emb, make_latents(pipe, [0, 1]), make_latents(pipe, [0, 1], kind="super_res")


def _path(sd):
    return slerp(sd[1][0], sd[1][1], [0.0, 0.5, 1.0])


def _frames(sd, **kwargs):
    """``render_frames(sd, prompt_embeds=path, **kw, **kwargs)``: the review's ``kw`` unless overridden."""
    pipe, _, negative = sd
    kw: dict[str, Any] = dict(negative_prompt_embeds=negative[:1], num_inference_steps=2, progress=False)
    return render_frames(pipe, prompt_embeds=_path(sd), **{**kw, **kwargs})


def _decode(unclip, up_inputs, **kwargs):
    return decode(unclip[0], *up_inputs, num_inference_steps=2, super_res_num_inference_steps=2, **kwargs)


def _bomb(folder: Path) -> Path:
    """A 1x1 PNG whose header claims 100000 x 100000 pixels (Pillow's decompression-bomb refusal)."""
    path = folder / "bomb.png"
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 100_000, 100_000)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # its CRC
    path.write_bytes(bytes(data))
    return path


API_CASES = [
    # ---------------------------------------------------------------------------------- paths (85-101)
    ApiCase("r2-087-slerp-int", lambda: slerp(torch.arange(4), torch.arange(4) + 1, 0.5), TypeError,
            "must hold floating-point numbers, got torch.int64"),
    ApiCase("r2-088-slerp-complex", lambda: slerp(torch.ones(4, dtype=torch.complex64),
                                                  torch.ones(4, dtype=torch.complex64), 0.5),
            TypeError, "complex64"),
    ApiCase("r2-089-slerp-empty", lambda: slerp(torch.empty(0), torch.empty(0), 0.5), ValueError, "empty input"),
    ApiCase("r2-091-slerp-frac-None", lambda: slerp(x, y, None), TypeError, "frac must be a number"),
    ApiCase("r2-093-slerp-0d-opposite", lambda: slerp(torch.tensor(1.0), torch.tensor(-1.0), 0.5), ValueError,
            "exactly opposite"),
    ApiCase("r2-094-lerp-inf-frac", lambda: lerp(x, y, math.inf), ValueError, "NaN or infinite"),
    ApiCase("r2-097-path-huge-frames", lambda: interpolation_path([torch.randn(4, 64, 64)] * 2, 10**8), ValueError,
            "100000000 frames of shape (4, 64, 64) would allocate 6,553.6 GB"),
    ApiCase("r2-098-circular-int-numpy", lambda: circular_walk(np.arange(4), np.arange(4), 6), TypeError,
            "got numpy dtype int64"),
    ApiCase("r2-100-walk-around-generator-int", lambda: walk_around(x, 6, radius=0.1, generator=42), TypeError,
            "generator must be a torch.Generator"),
    ApiCase("r2-101-walk-around-radius-1e300", lambda: walk_around(x, 6, radius=1e300), ValueError,
            "overflows torch.float32"),
    ApiCase("r2-101-walk-around-radius-nan", lambda: walk_around(x, 6, radius=math.nan), ValueError,
            "radius must be a finite number > 0, got nan"),
    # ------------------------------------------------------------------------------- render (102-110)
    ApiCase("r2-102-latents-wrong-shape", lambda sd: _frames(sd, latents=torch.randn(3, 4, 8, 8)), ValueError,
            "latents must be (N, 4, 16, 16) for this pipeline, got (3, 4, 8, 8)", ("sd",)),
    ApiCase("r2-103-batch-0", lambda sd: _frames(sd, batch_size=0), ValueError,
            "batch_size must be a positive int or None, got 0", ("sd",)),
    ApiCase("r2-103-batch--2", lambda sd: _frames(sd, batch_size=-2), ValueError,
            "batch_size must be a positive int or None, got -2", ("sd",)),
    ApiCase("r2-103-batch-2.0", lambda sd: _frames(sd, batch_size=2.0), ValueError,
            "batch_size must be a positive int or None, got 2.0", ("sd",)),
    ApiCase("r2-104-seed-float", lambda sd: _frames(sd, seed=1.0), TypeError, "seed must be a non-negative int",
            ("sd",)),
    ApiCase("r2-105-height-17", lambda sd: _frames(sd, height=17), ValueError,
            "height must be a positive multiple of 2", ("sd",)),
    ApiCase("r2-105-width-4x-native", lambda sd: _frames(sd, width=256), ValueError,
            "width must be a positive multiple of 2 up to 128 (4x this model's native 32 px), got 256", ("sd",)),
    ApiCase("r2-028-teaching-size-2048", lambda teaching_sd: render_frames(
        teaching_sd[0], prompt_embeds=teaching_sd[1], height=2048, width=2048, progress=False), ValueError,
            "height must be a positive multiple of 4 up to 128 (4x this model's native 32 px), got 2048",
            ("teaching_sd",)),
    ApiCase("r2-106-steps-1e6", lambda sd: _frames(sd, num_inference_steps=10**6), ValueError,
            "num_inference_steps must be a whole number from 1 to 1000, got 1000000", ("sd",)),
    ApiCase("r2-107-guidance-1e30", lambda sd: _frames(sd, guidance_scale=1e30), ValueError,
            "guidance_scale must be a finite number from 0 to 100, got 1e+30", ("sd",)),
    ApiCase("r2-107-guidance-negative", lambda sd: _frames(sd, guidance_scale=-3.0), ValueError,
            "guidance_scale must be a finite number from 0 to 100", ("sd",)),
    ApiCase("r2-108-eta-nan", lambda sd: _frames(sd, eta=math.nan), ValueError,
            "eta must be a finite number from 0 to 1, got nan", ("sd",)),
    ApiCase("r2-108-eta-2", lambda sd: _frames(sd, eta=2), ValueError, "eta must be a finite number from 0 to 1",
            ("sd",)),
    ApiCase("r2-108-rescale-inf", lambda sd: _frames(sd, guidance_rescale=math.inf), ValueError,
            "guidance_rescale must be a finite number from 0 to 1", ("sd",)),
    ApiCase("r2-110-embeds-numpy", lambda sd: render_frames(sd[0], prompt_embeds=_path(sd).numpy(), progress=False),
            TypeError, "prompt_embeds must be a torch.Tensor", ("sd",)),
    ApiCase("r2-unknown-kwarg", lambda sd: _frames(sd, gudiance_scale=3.0), TypeError,
            "takes no argument 'gudiance_scale' (did you mean 'guidance_scale'?)", ("sd",)),
    ApiCase("r2-render-walk-guidance-inf", lambda sd, world: render_walk(
        sd[0], world / "out", prompt_embeds=_path(sd), num_inference_steps=2, guidance_scale=math.inf,
        progress=False), ValueError, "guidance_scale must be a finite number", ("sd", "world")),
    # -------------------------------------------------------------------------------- morph (139-151)
    ApiCase("r2-139-prepare-size-True", lambda: prepare_images([RED], True), ValueError,
            "size must be a whole number from 1 to 4096, got True"),
    ApiCase("r2-140-prepare-size-float", lambda: prepare_images([RED], 32.0), ValueError,
            "size must be a whole number from 1 to 4096, got 32.0 (float)"),
    ApiCase("r2-140-prepare-size-huge", lambda: prepare_images([RED], (10**6, 32)), ValueError,
            "size must be a whole number from 1 to 4096, got 1000000"),
    ApiCase("r2-141-prepare-bomb-path", lambda world: prepare_images([_bomb(world / "out")], 32), ValueError,
            "bomb.png", ("world",)),
    ApiCase("r2-144-prepare-I16-array", lambda: prepare_images([np.full((8, 8), 60000, np.uint16)], 32),
            ValueError, "divide by 257"),
    ApiCase("r2-145-invert-3-then-morph", lambda sd: morph_inputs(
        invert_images(sd[0], [RED, BLUE, RED], num_inference_steps=2), [0, 0.5, 1]), ValueError,
            "a morph needs exactly 2 images, this inversion has 3", ("sd",)),
    ApiCase("r2-146-invert-captions-mismatch", lambda sd: invert_images(sd[0], [RED, BLUE], ["a", "b", "c"]),
            ValueError, "prompts must be one string, or one string per image (2)", ("sd",)),
    ApiCase("r2-147-morph-ts-string", lambda i2: morph_inputs(i2, "abc"), ValueError,
            "ts must be a number or a 1-D sequence of finite numbers in [0, 1]", ("i2",)),
    ApiCase("r2-147-morph-ts-empty", lambda i2: morph_inputs(i2, []), ValueError, "ts is empty", ("i2",)),
    ApiCase("r2-149-render-morph-unclip", lambda unclip, i2: render_morph(unclip[0], i2, [0.5]), TypeError,
            "UnCLIPImageVariationPipeline has no vae", ("unclip", "i2")),
    ApiCase("r2-151-attn-on-linear", lambda: attention_interpolation(torch.nn.Linear(2, 2), [0, 1]).__enter__(),
            ValueError, "Linear has no self-attention layers"),
    ApiCase("r2-morph-steps-1e6", lambda sd, i2: render_morph(sd[0], i2, [0.5], num_inference_steps=10**6),
            ValueError, "num_inference_steps must be a whole number from 1 to 1000", ("sd", "i2")),
    ApiCase("r2-morph-guidance-nan", lambda sd, i2: render_morph(sd[0], i2, [0.5], guidance_scale=math.nan),
            ValueError, "guidance_scale must be a finite number from 0 to 100, got nan", ("sd", "i2")),
    ApiCase("r2-morph-invert-width-4x", lambda sd: invert_images(sd[0], [RED, BLUE], width=512), ValueError,
            "width must be a positive multiple of 2 up to 128", ("sd",)),
    ApiCase("r2-img2img-strength-nan", lambda sd, i2: chained_img2img(sd[0], i2, [0, 1], strength=math.nan), ValueError, "strength must be a finite number above 0", ("sd", "i2")),
    # ------------------------------------------------------------------------------- unCLIP (152-161)
    ApiCase("r2-152-decode-guidance-inf", lambda unclip, up_inputs: _decode(unclip, up_inputs,
                                                                             guidance_scale=math.inf),
            ValueError, "guidance_scale must be a finite number from 0 to 100, got inf", ("unclip", "up_inputs")),
    ApiCase("r2-152-decode-guidance-nan", lambda unclip, up_inputs: _decode(unclip, up_inputs,
                                                                             guidance_scale=math.nan),
            ValueError, "guidance_scale must be a finite number from 0 to 100, got nan", ("unclip", "up_inputs")),
    ApiCase("r2-153-decode-eta-nan", lambda unclip, up_inputs: _decode(unclip, up_inputs, eta=math.nan),
            ValueError, "eta must be a finite number from 0 to 1, got nan", ("unclip", "up_inputs")),
    ApiCase("r2-154-decode-wrong-latents", lambda unclip, up_inputs: decode(
        unclip[0], up_inputs[0], torch.randn(2, 3, 8, 8), up_inputs[2]), ValueError,
            "decoder_latents rows must have shape (3, 16, 16)", ("unclip", "up_inputs")),
    ApiCase("r2-155-invert-empty", lambda unclip: invert(unclip[0], []), ValueError, "No frames were given",
            ("unclip",)),
    ApiCase("r2-156-morph-pair-out-of-range", lambda unclip, up_inputs: unclip_morph(
        unclip[0], UnCLIPInversion(*up_inputs), [0, 1], pair=(0, 5)), ValueError, "pair names image 5 of 2",
            ("unclip", "up_inputs")),
    ApiCase("r2-156-morph-typo", lambda unclip, up_inputs: unclip_morph(
        unclip[0], UnCLIPInversion(*up_inputs), [0, 1], num_inference_step=2), TypeError,
            "did you mean 'num_inference_steps'", ("unclip", "up_inputs")),
    ApiCase("r2-157-prior-walk-t-empty", lambda teach: prior_text_walk(teach, *APPLES, []), ValueError, "t is empty",
            ("teach",)),
    ApiCase("r2-158-prior-walk-steps-1", lambda teach: prior_text_walk(teach, *APPLES, [0.5], num_inference_steps=1),
            ValueError, "num_inference_steps must be a whole number from 2 to 1000", ("teach",)),
    ApiCase("r2-159-prior-walk-steps-0", lambda teach: prior_text_walk(teach, *APPLES, [0.5], num_inference_steps=0),
            ValueError, "num_inference_steps must be a whole number from 2 to 1000", ("teach",)),
    ApiCase("r2-160-prior-walk-prompt-None", lambda teach: prior_text_walk(teach, None, APPLES[1], [0.5]), TypeError,
            "prompt_a must be a string", ("teach",)),
    ApiCase("r2-161-prior-guidance-nan", lambda teach: prior_embeddings(teach, [APPLES[0]], guidance_scale=math.nan),
            ValueError, "guidance_scale must be a finite number from 0 to 100, got nan", ("teach",)),
    ApiCase("r2-161-prior-guidance-inf", lambda teach: prior_embeddings(teach, [APPLES[0]], guidance_scale=math.inf),
            ValueError, "guidance_scale must be a finite number from 0 to 100, got inf", ("teach",)),
    ApiCase("r2-161-prior-walk-guidance-inf", lambda teach: prior_text_walk(teach, *APPLES, [0.5],
                                                                             guidance_scale=math.inf),
            ValueError, "guidance_scale must be a finite number", ("teach",)),
    # ---------------------------------------------------------------------------------- misc (195-200)
    ApiCase("r2-195-make-latents-seed-set", lambda sd: make_latents(sd[0], {1, 2}), TypeError,
            "seeds must be an int or a list of ints, got {1, 2}", ("sd",)),
    ApiCase("r2-199-retime-budget-0", lambda: retime(lambda ts: np.zeros((len(ts), 4, 4, 3)), 5, budget=0),
            ValueError, "budget=0 is too small"),
    ApiCase("r2-200-adain-constant-input", lambda: adain_interpolate(torch.zeros(4, 8, 8), torch.ones(4, 8, 8),
                                                                     [0, 0.5, 1]),
            ValueError, "adain_interpolate needs two non-zero noises, but `a` is all zeros"),
]


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.id)
def test_bad_api_values_raise_one_clear_error(case, request, world):
    (world / "out").mkdir(exist_ok=True)
    assert_one_clear_error(case, request, world)


@dataclass
class OkCase:
    id: str
    call: Callable[..., Any]
    check: Callable[[Any], bool]  # what the result must be
    needs: tuple[str, ...] = ()


def _finite(a: Any) -> bool:
    return bool(np.isfinite(np.asarray(torch.as_tensor(a).float())).all())


def _modes() -> list[Image.Image]:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    return [Image.new("CMYK", (8, 8)), Image.new("I;16", (8, 8)), Image.new("P", (8, 8)),
            Image.new("LA", (8, 8)), clear]


OK_CASES = [
    OkCase("r2-085-slerp-fp16", lambda: slerp(x.half(), y.half(), [0, 0.5, 1]),
           lambda r: r.dtype == torch.float16 and _finite(r)),
    OkCase("r2-086-slerp-bf16", lambda: slerp(x.bfloat16(), y.bfloat16(), 0.5),
           lambda r: r.dtype == torch.bfloat16 and _finite(r)),
    OkCase("r2-090-slerp-numpy-torch", lambda: slerp(x.numpy(), y, 0.5),
           lambda r: isinstance(r, np.ndarray) and _finite(r)),
    OkCase("r2-092-slerp-frac-str", lambda: slerp(x, y, "0.5"), lambda r: torch.equal(r, slerp(x, y, 0.5))),
    OkCase("r2-092-slerp-frac-np-float32", lambda: slerp(x, y, np.float32(0.5)),
           lambda r: torch.allclose(r, slerp(x, y, 0.5))),
    OkCase("r2-093-slerp-0d-parallel", lambda: slerp(torch.tensor(1.0), torch.tensor(3.0), 0.5),
           lambda r: float(r) == pytest.approx(2.0)),
    OkCase("r2-095-path-1d-tensor", lambda: interpolation_path(torch.tensor([1.0, 2.0, 3.0]), 5),
           lambda r: r.shape == (5,)),
    OkCase("r2-096-path-generator", lambda: interpolation_path((k for k in [x, y, x + y]), 7),
           lambda r: r.shape == (7, 2, 3, 4)),
    OkCase("r2-097-path-np-int64-frames", lambda: interpolation_path([x, y], np.int64(4)),
           lambda r: r.shape == (4, 2, 3, 4)),
    OkCase("r2-099-walk-around-np-float32", lambda: walk_around(x, 6, radius=np.float32(0.1)),
           lambda r: r.shape == (6, 2, 3, 4) and _finite(r)),
    OkCase("r2-101-walk-around-float64-large-radius", lambda: walk_around(x.double(), 6, radius=1e30),
           lambda r: _finite(r)),
    OkCase("r2-109-output-type-bogus", lambda sd: _frames(sd, output_type="bogus"),
           lambda r: isinstance(r, np.ndarray) and r.shape == (3, 32, 32, 3), ("sd",)),
    OkCase("r2-numpy-scalars-render", lambda sd: _frames(sd, num_inference_steps=np.int64(2), batch_size=np.int64(2),
                                                         guidance_scale=np.float32(3.0), eta=np.float64(0.0),
                                                         height=np.int64(32)),
           lambda r: len(r) == 3, ("sd",)),
    OkCase("r2-142-prepare-large-pil", lambda: prepare_images([Image.new("RGB", (3000, 2000))], 32),
           lambda r: r[0].size == (32, 32)),
    OkCase("r2-143-prepare-modes", lambda: prepare_images(_modes(), np.int64(32)),
           lambda r: all(im.mode == "RGB" and im.size == (32, 32) for im in r)
           and r[-1].getpixel((0, 0)) == (255, 255, 255)),
    OkCase("r2-148-render-morph-1-frame-attn", lambda sd, i2: render_morph(sd[0], i2, [0.5], attention="inner",
                                                                           progress=False),
           lambda r: r.shape == (1, 32, 32, 3), ("sd", "i2")),
    OkCase("r2-152-decode-numpy-scalars", lambda unclip, up_inputs: _decode(unclip, up_inputs,
                                                                             guidance_scale=np.float32(2.0)),
           lambda r: r.shape == (2, 3, 32, 32) and _finite(r), ("unclip", "up_inputs")),
    OkCase("r2-158-prior-walk-steps-2", lambda teach: prior_text_walk(teach, *APPLES, np.float32(0.5),
                                                                      num_inference_steps=np.int64(2)),
           lambda r: r.shape[0] == 1 and _finite(r), ("teach",)),
    OkCase("r2-198-walk-report-static", lambda: walk_report([RED, RED, RED]),
           lambda r: r.path_length == 0),
]


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.id)
def test_values_that_make_sense_keep_working(case, request, world):
    fixtures = [request.getfixturevalue(name) for name in case.needs]
    before = _snapshot(world, world / "out")
    assert case.check(case.call(*fixtures))
    assert _snapshot(world, world / "out") == before


def test_r2_150_the_attention_processor_refuses_a_batch_it_was_not_made_for(sd):
    """Case 150: a UNet call with 4 rows under a processor made for 3."""
    pipe, embeds, _ = sd
    with attention_interpolation(pipe.unet, [0, 1, 0.5]), pytest.raises(RuntimeError, match="not a multiple of the 3"):
        pipe.unet(torch.randn(4, 4, 16, 16), 1, encoder_hidden_states=embeds[:1].expand(4, -1, -1))


@pytest.fixture
def nan_frame_1(sd, monkeypatch):
    """The tiny SD's VAE decodes the second frame of every call as NaN (as a half-precision overflow would)."""
    pipe = sd[0]
    real = pipe.vae.decode

    def decode_with_nan(latents, *args, **kwargs):
        out = real(latents, *args, **kwargs)
        if len(out[0]) > 1:
            out[0][1] = math.nan
        return out

    monkeypatch.setattr(pipe.vae, "decode", decode_with_nan)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_frames_made_of_nan_are_refused_by_index_not_returned_black(sd, nan_frame_1, output_type):
    with pytest.raises(NonFiniteFramesError, match=r"NaN or inf pixels for frame\(s\) \[1\]") as info:
        _frames(sd, output_type=output_type, batch_size=3)
    assert info.value.frames == [1]

