"""helpers.morph: morphing the user's own images (notebook 08).

Independent facts: attention written out with einsum and softmax (not SDPA) as the reference for the
processor, colours and crops of hand-made images, the teaching model's inputs as ground truth for the
endpoints, and the processors diffusers had installed before the context manager ran.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from PIL import Image

from helpers import morph, tiny_pipeline, walk_report
from helpers.backends import choose_backend
from helpers.teaching import scenes


@pytest.fixture(scope="module")
def teaching():
    return choose_backend("teaching", "text2img", device="cpu")


@pytest.fixture(scope="module")
def pair(teaching):
    """Two held-out-style example scenes, inverted with their captions."""
    names = ("cat face", "dog face")
    images = teaching.example_images(objects=names)
    captions = [scenes.caption(n, "big", "white") for n in names]
    return morph.invert_images(teaching.pipe, images, captions, num_inference_steps=teaching.steps)


@pytest.fixture(scope="module")
def tiny():
    return tiny_pipeline("text2img")


# --------------------------------------------------------------------------------------------------
# prepare_images
# --------------------------------------------------------------------------------------------------


def test_prepare_images_crops_the_long_side_instead_of_stretching() -> None:
    im = np.zeros((48, 64, 3), np.uint8)
    im[:, :8] = (255, 0, 0)  # red bands on the far left and right: outside the centred 48x48 square
    im[:, -8:] = (255, 0, 0)
    im[:, 8:-8] = (0, 0, 255)
    (out,) = morph.prepare_images([Image.fromarray(im)], 32)
    arr = np.asarray(out)
    assert out.size == (32, 32) and out.mode == "RGB"
    assert arr[..., 0].max() < 20 and arr[..., 2].min() > 235


def test_prepare_images_puts_transparency_on_white_and_reads_every_mode(tmp_path) -> None:
    clear = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    grey = Image.new("L", (16, 16), 100)
    palette = Image.new("RGB", (16, 16), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    wide = Image.fromarray(np.full((16, 16), 65535 // 2, np.uint16))  # 16-bit: half of its range
    path = tmp_path / "mine.png"
    Image.new("RGB", (40, 20), (0, 128, 255)).save(path)
    out = [np.asarray(x, np.int32) for x in morph.prepare_images([clear, grey, palette, wide, str(path)], 8)]
    assert (out[0] == 255).all()
    assert (out[1] == 100).all()
    assert np.abs(out[2] - (10, 200, 30)).max() <= 2
    assert np.abs(out[3] - 127).max() <= 1
    assert np.abs(out[4] - (0, 128, 255)).max() <= 1


@pytest.mark.parametrize("bad, match", [([], "non-empty"), (5, "non-empty"), (["missing.png"], "No image file")])
def test_prepare_images_refuses_what_is_not_an_image(bad, match) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        morph.prepare_images(bad, 32)


# --------------------------------------------------------------------------------------------------
# The processor against attention written out by hand
# --------------------------------------------------------------------------------------------------


def _reference(attn: Attention, x: torch.Tensor, w: list[float], mode: str, rows_per_group: int) -> torch.Tensor:
    """Self-attention with einsum + softmax, mixing rows 0 and 1 of every group of ``rows_per_group`` rows."""
    heads, d = attn.heads, attn.to_q.out_features // attn.heads

    def split(y):  # (B, S, H*d) -> (B, H, S, d)
        return y.view(y.shape[0], y.shape[1], heads, d).transpose(1, 2)

    def attend(q, k, v):
        p = torch.softmax(torch.einsum("hsd,htd->hst", q, k) / math.sqrt(d), dim=-1)
        return torch.einsum("hst,htd->hsd", p, v)

    q, k, v = split(attn.to_q(x)), split(attn.to_k(x)), split(attn.to_v(x))
    out = []
    for row in range(x.shape[0]):
        g0 = row - row % rows_per_group
        ka, kb, va, vb = k[g0], k[g0 + 1], v[g0], v[g0 + 1]
        t = w[row % rows_per_group]
        km, vm = (1 - t) * ka + t * kb, (1 - t) * va + t * vb
        if mode == "inner":
            o = attend(q[row], km, vm)
        elif mode == "outer":
            o = (1 - t) * attend(q[row], ka, va) + t * attend(q[row], kb, vb)
        else:
            o = attend(q[row], torch.cat([k[row], km], 1), torch.cat([v[row], vm], 1))
        out.append(o.transpose(0, 1).reshape(x.shape[1], heads * d))
    return attn.to_out[0](torch.stack(out))


@pytest.mark.parametrize("mode", morph.ATTENTION_MODES)
@pytest.mark.parametrize("groups", [1, 2])  # 2: classifier-free guidance stacks an unconditional group first
def test_the_processor_is_attention_with_mixed_keys_and_values(mode, groups) -> None:
    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    w = [0.0, 1.0, 0.3, 0.8]
    x = torch.randn(groups * len(w), 5, 16)
    with torch.no_grad():
        got = morph.AttentionInterpolation(w, mode=mode)(attn, x)
        want = _reference(attn, x, w, mode, len(w))
        plain = AttnProcessor2_0()(attn, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g in range(groups):  # the endpoint rows are untouched: their own self-attention
        torch.testing.assert_close(got[g * 4:g * 4 + 2], plain[g * 4:g * 4 + 2], rtol=1e-5, atol=1e-6)
    assert (got[2] - plain[2]).abs().max() > 1e-3


def test_a_disabled_processor_is_plain_self_attention() -> None:
    torch.manual_seed(1)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    x = torch.randn(3, 5, 16)
    proc = morph.AttentionInterpolation([0.0, 1.0, 0.5])
    proc.enabled = False
    with torch.no_grad():
        torch.testing.assert_close(proc(attn, x), AttnProcessor2_0()(attn, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weights, anchors, match", [
    ([0.0, 0.5], (0, 1), "weights 0 and 1"),
    ([0.0, 1.0, 1.5], (0, 1), r"\[0, 1\]"),
    ([0.0, 1.0], (0, 0), "two different rows"),
])
def test_bad_weights_are_refused(weights, anchors, match) -> None:
    with pytest.raises(ValueError, match=match):
        morph.AttentionInterpolation(weights, anchors=anchors)
    with pytest.raises(ValueError, match="mode"):
        morph.AttentionInterpolation([0.0, 1.0], mode="sideways")


# --------------------------------------------------------------------------------------------------
# Installing and removing it
# --------------------------------------------------------------------------------------------------


def test_the_context_manager_touches_only_self_attention_and_restores_everything(tiny) -> None:
    unet = tiny.unet
    before = dict(unet.attn_processors)
    modules = dict(unet.named_modules())
    cross = [n for n in before if modules[n.removesuffix(".processor")].is_cross_attention]
    assert cross and len(cross) < len(before)
    with pytest.raises(RuntimeError, match="boom"):
        with morph.attention_interpolation(unet, [0.0, 1.0]) as proc:
            during = unet.attn_processors
            assert all(during[n] is proc for n in before if n not in cross)
            assert all(during[n] is before[n] for n in cross)
            raise RuntimeError("boom")
    after = unet.attn_processors
    assert all(after[n] is before[n] for n in before)


def test_a_unet_without_self_attention_is_refused(tiny, pair, teaching) -> None:
    unet = UNet2DConditionModel(sample_size=4, block_out_channels=(8, 16), layers_per_block=1,
                                down_block_types=("DownBlock2D", "DownBlock2D"), mid_block_type=None,
                                up_block_types=("UpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=4)  # convolutions only
    assert morph.self_attention_layers(unet) == []
    with pytest.raises(ValueError, match="no self-attention"):
        with morph.attention_interpolation(unet, [0.0, 1.0]):
            pass


# --------------------------------------------------------------------------------------------------
# Inversion and morphs on the teaching model
# --------------------------------------------------------------------------------------------------


def test_the_endpoints_reconstruct_the_inputs(teaching, pair) -> None:
    frames = morph.render_morph(teaching.pipe, pair, [0.0, 1.0], progress=False)
    err = morph.endpoint_error(frames, pair)
    inputs = morph.images_to_array(pair.images)
    swapped = float(np.mean((frames[::-1] - inputs) ** 2))  # each endpoint against the other input
    print(f"endpoint MSE {err:.4f}; against the other image {swapped:.4f}")
    assert err <= 0.005
    assert swapped > 10 * err


def test_attention_changes_the_middle_and_never_the_endpoints(teaching, pair) -> None:
    ts = [0.0, 0.25, 0.5, 0.75, 1.0]
    naive = morph.render_morph(teaching.pipe, pair, ts, progress=False)
    for mode in morph.ATTENTION_MODES:
        mixed = morph.render_morph(teaching.pipe, pair, ts, attention=mode, progress=False)
        assert np.abs(mixed[[0, -1]] - naive[[0, -1]]).max() < 1e-4
        assert np.abs(mixed[2] - naive[2]).mean() > 1e-3
    none = morph.render_morph(teaching.pipe, pair, ts, attention="inner", attention_steps=0.0, progress=False)
    assert np.abs(none - naive).max() < 1e-4  # switched off from the first step: the plain morph


def test_morphs_are_deterministic_and_do_not_depend_on_batching(teaching, pair) -> None:
    ts = np.linspace(0, 1, 5)
    a = morph.render_morph(teaching.pipe, pair, ts, noise="adain", attention="inner", progress=False)
    b = morph.render_morph(teaching.pipe, pair, ts, noise="adain", attention="inner", batch_size=2,
                           progress=False)
    c = morph.render_morph(teaching.pipe, pair, ts, noise="adain", attention="inner", progress=False)
    assert np.abs(a - b).max() < 1e-4
    assert np.array_equal(a, c)


def test_re_timing_the_full_morph_evens_it_out_without_moving_the_endpoints(teaching, pair) -> None:
    from helpers import retime

    ts = np.linspace(0, 1, 9)
    naive = morph.render_morph(teaching.pipe, pair, ts, progress=False)
    full = retime(lambda t: morph.render_morph(teaching.pipe, pair, t, noise="adain", attention="inner",
                                               progress=False), 9, coarse=9, budget=27)
    before, after = walk_report(list(naive)), full.report
    print(f"PDV {before.pdv:.5f} -> {after.pdv:.5f}; 1 - Gini {before.smoothness:.3f} -> {after.smoothness:.3f}")
    assert after.pdv < before.pdv and after.smoothness > before.smoothness
    assert morph.endpoint_error(np.stack(full.frames), pair) <= morph.endpoint_error(naive, pair) + 1e-6


def test_the_img2img_chain_starts_from_the_first_image(teaching, pair) -> None:
    frames = morph.chained_img2img(teaching.pipe, pair, np.linspace(0, 1, 4), strength=0.5, progress=False)
    assert frames.shape == (4, 32, 32, 3)
    assert np.array_equal(frames[0], morph.images_to_array(pair.images[:1])[0])
    d = walk_report(list(frames)).distances
    assert (d > 0).all()
    with pytest.raises(ValueError, match="strength"):
        morph.chained_img2img(teaching.pipe, pair, [0.0, 1.0], strength=0.0)


# --------------------------------------------------------------------------------------------------
# The real-model path (tiny random components of the same classes) and bad input
# --------------------------------------------------------------------------------------------------


def test_the_same_functions_run_a_stable_diffusion_pipeline(tiny, capfd) -> None:
    images = [Image.new("RGB", (50, 40), (200, 30, 30)), Image.new("LA", (20, 20), (90, 128))]
    inv = morph.invert_images(tiny, images, ["a red square", "a grey square"], num_inference_steps=3)
    side = tiny.unet.config.sample_size  # the model's size, whatever size the inputs had
    assert inv.latents.shape == (2, tiny.unet.config.in_channels, side, side)
    assert inv.height == inv.width == side * tiny.vae_scale_factor
    frames = morph.render_morph(tiny, inv, [0.0, 0.5, 1.0], noise="adain", attention="fused",
                                guidance_scale=2.0, progress=False)
    chain = morph.chained_img2img(tiny, inv, [0.0, 0.5, 1.0], strength=0.6, progress=False)
    assert frames.shape == chain.shape == (3, inv.height, inv.width, 3)
    assert np.isfinite(frames).all() and 0 <= frames.min() and frames.max() <= 1
    assert capfd.readouterr().err == ""  # no library notices (e.g. about the missing safety checker)


def test_bad_input_gets_one_clear_error(teaching, pair, tiny) -> None:
    three = morph.invert_images(teaching.pipe, pair.images + pair.images[:1], num_inference_steps=2)
    with pytest.raises(ValueError, match="exactly 2 images"):
        morph.render_morph(teaching.pipe, three, [0.5])
    with pytest.raises(ValueError, match="one string per image"):
        morph.invert_images(teaching.pipe, pair.images, ["only one caption in a list"])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        morph.render_morph(teaching.pipe, pair, [0.0, 1.2])
    with pytest.raises(ValueError, match="attention must be"):
        morph.render_morph(teaching.pipe, pair, [0.5], attention="cross")
    with pytest.raises(ValueError, match="noise must be"):
        morph.render_morph(teaching.pipe, pair, [0.5], noise="lerp")
    with pytest.raises(ValueError, match="multiple of"):
        morph.invert_images(teaching.pipe, pair.images, height=30)
    unclip = tiny_pipeline("unclip")
    with pytest.raises(TypeError, match="text-to-image"):
        morph.invert_images(unclip, pair.images)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        morph.endpoint_error(np.zeros((2, 16, 16, 3)), pair)
