"""helpers.morph on flow-matching pipelines (SD 3, FLUX): inversion up the flow ODE, morphs down it, and the
joint-attention processor that mixes the image tokens only.

References: diffusers' own joint-attention processors (a disabled processor must be them, to the bit), a joint
attention written out by hand from the layer's projections, the pipelines' own samplers, and the pictures the
morph starts from (a morph's endpoints must come back)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import JointAttnProcessor2_0

from helpers import encode_prompts, flow, load_pipeline, make_latents, morph, tiny_pipeline, to_pil
from helpers.pipeline_info import output_size


@pytest.fixture(scope="module", params=["sd3", "flux"])
def tiny(request):
    return tiny_pipeline(request.param)


@pytest.fixture(scope="module")
def sd3():
    return tiny_pipeline("sd3")


def _pictures(pipe, n: int = 2) -> list[np.ndarray]:
    h, w = output_size(pipe)
    rng = np.random.default_rng(3)
    return [rng.random((h, w, 3)) for _ in range(n)]


# --------------------------------------------------------------------------------------------------
# The joint-attention processor
# --------------------------------------------------------------------------------------------------


def _joint_by_hand(attn, hidden, context, weights, mode):
    """SD 3's joint attention written out, row by row: image tokens first, then text tokens; the frame rows
    attend to keys/values whose *image* part is the endpoints' (rows 0 and 1) mixed at their weight."""
    heads = attn.heads

    def norm(layer, x):
        return x if layer is None else layer(x)

    def split(x):  # (rows, seq, heads*d) -> (rows, heads, seq, d)
        return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

    q = torch.cat([norm(attn.norm_q, split(attn.to_q(hidden))),
                   norm(attn.norm_added_q, split(attn.add_q_proj(context)))], 2)
    k = torch.cat([norm(attn.norm_k, split(attn.to_k(hidden))),
                   norm(attn.norm_added_k, split(attn.add_k_proj(context)))], 2)
    v = torch.cat([split(attn.to_v(hidden)), split(attn.add_v_proj(context))], 2)
    n_img = hidden.shape[1]

    def attend(q_, k_, v_):
        return torch.softmax(q_ @ k_.transpose(-1, -2) / q_.shape[-1] ** 0.5, dim=-1) @ v_

    def image_from(row, src):  # row's keys or values with the image tokens of src
        out = row.clone()
        out[:, :n_img] = src[:, :n_img]
        return out

    outs = []
    for r, t in enumerate(weights):
        km = image_from(k[r], (1 - t) * k[0] + t * k[1])
        vm = image_from(v[r], (1 - t) * v[0] + t * v[1])
        if mode == "inner":
            o = attend(q[r], km, vm)
        elif mode == "outer":
            o = (1 - t) * attend(q[r], image_from(k[r], k[0]), image_from(v[r], v[0])) + \
                t * attend(q[r], image_from(k[r], k[1]), image_from(v[r], v[1]))
        else:
            o = attend(q[r], torch.cat([k[r], km], 1), torch.cat([v[r], vm], 1))
        outs.append(o.transpose(0, 1).reshape(o.shape[1], -1))
    out = torch.stack(outs)
    return attn.to_out[0](out[:, :n_img]), attn.to_add_out(out[:, n_img:])


@pytest.mark.parametrize("mode", morph.ATTENTION_MODES)
def test_the_joint_processor_mixes_the_image_tokens_only(sd3, mode) -> None:
    block = sd3.transformer.transformer_blocks[0]
    attn = block.attn
    if attn.context_pre_only:  # pragma: no cover - diffusers' tiny config has a full first block
        pytest.skip("the first block's attention drops the text output")
    torch.manual_seed(0)
    weights = [0.0, 1.0, 0.3]
    hidden = torch.randn(3, 16, attn.to_q.in_features)
    context = torch.randn(3, 5, attn.add_q_proj.in_features)
    with torch.no_grad():
        got = morph.JointAttentionInterpolation(weights, mode=mode)(attn, hidden, context)
        want = _joint_by_hand(attn, hidden, context, weights, mode)
        stock = JointAttnProcessor2_0()(attn, hidden, context)
        other = context.clone()
        other[2] = torch.randn_like(other[2])
        moved = morph.JointAttentionInterpolation(weights, mode=mode)(attn, hidden, other)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
    for g, s in zip(got, stock):  # the endpoint rows are their own joint attention
        torch.testing.assert_close(g[:2], s[:2], rtol=1e-5, atol=1e-6)
    # the frame still reads its own caption: its text tokens' keys and values are not mixed away
    assert (moved[0][2] - got[0][2]).abs().max() > 1e-3


def test_a_disabled_joint_processor_is_the_stock_attention(tiny) -> None:
    """Every joint layer of the transformer (SD 3's, FLUX's double and single blocks) under the processor, turned
    off, gives diffusers' own velocity to the bit."""
    embeds, _ = encode_prompts(tiny, ["a cat"] * 3)
    x = torch.cat([make_latents(tiny, s) for s in range(3)])
    velocity = flow.velocity_fn(tiny, embeds)
    stock = velocity(x, 0.6)
    with morph.attention_interpolation(tiny.transformer, [0.0, 1.0, 0.4], image_tokens=flow.image_tokens(tiny)) as proc:
        assert isinstance(proc, morph.JointAttentionInterpolation)
        assert set(tiny.transformer.attn_processors.values()) == {proc}
        proc.enabled = False
        off = velocity(x, 0.6)
        proc.enabled = True
        on = velocity(x, 0.6)
    assert torch.equal(off, stock)
    torch.testing.assert_close(on[:2], stock[:2], rtol=1e-4, atol=1e-5)  # endpoints: their own attention
    assert (on[2] - stock[2]).abs().max() > 1e-4
    assert all(not isinstance(p, morph.AttentionInterpolation) for p in tiny.transformer.attn_processors.values())


def test_flux_needs_the_image_token_count() -> None:
    flux = tiny_pipeline("flux")
    embeds, _ = encode_prompts(flux, ["a cat"] * 2)
    x = torch.cat([make_latents(flux, s) for s in range(2)])
    with morph.attention_interpolation(flux.transformer, [0.0, 1.0]), pytest.raises(RuntimeError, match="image_tokens"):
        flow.velocity_fn(flux, embeds)(x, 0.5)


# --------------------------------------------------------------------------------------------------
# Inversion and morphs
# --------------------------------------------------------------------------------------------------


def test_a_morph_is_deterministic_chunked_and_keeps_its_endpoints(tiny) -> None:
    inv = morph.invert_images(tiny, _pictures(tiny), ["a cat", "a dog"], num_inference_steps=6)
    assert inv.solver == "fireflow" and inv.latents.shape == (2, *make_latents(tiny, 0).shape[1:])
    ts = [0.0, 0.3, 0.7, 1.0]
    plain = morph.render_morph(tiny, inv, ts, progress=False)
    assert plain.shape == (4, inv.height, inv.width, 3) and 0 <= plain.min() and plain.max() <= 1
    np.testing.assert_array_equal(plain, morph.render_morph(tiny, inv, ts, progress=False))
    np.testing.assert_allclose(morph.render_morph(tiny, inv, ts, batch_size=1, progress=False), plain, atol=1e-5)
    attended = morph.render_morph(tiny, inv, ts, attention="inner", progress=False)
    chunked = morph.render_morph(tiny, inv, ts, attention="inner", batch_size=2, progress=False)
    np.testing.assert_allclose(chunked, attended, atol=1e-5)  # the endpoints ride along in every chunk
    np.testing.assert_allclose(attended[[0, -1]], plain[[0, -1]], atol=1e-5)
    assert np.abs(attended[1:3] - plain[1:3]).max() > 1e-3
    # attention for none of the steps is no attention at all
    np.testing.assert_allclose(morph.render_morph(tiny, inv, ts, attention="inner", attention_steps=0.0,
                                                  progress=False), plain, atol=1e-5)


def test_the_morph_samples_with_the_solver_the_inversion_used(sd3) -> None:
    """Rendering an inversion is integrating its noises back down with the same solver and grid."""
    inv = morph.invert_images(sd3, _pictures(sd3), num_inference_steps=5, solver="midpoint")
    velocity = flow.velocity_fn(sd3, inv.prompt_embeds)
    back = flow.integrate(velocity, inv.latents, flow.sigmas(sd3, 5), "midpoint")
    want = flow.decode_latents(sd3, back).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(morph.render_morph(sd3, inv, [0.0, 1.0], progress=False), want, atol=1e-5)


@pytest.fixture(scope="module")
def teaching_flow():
    return load_pipeline("teaching-flow")


def test_the_teaching_flow_model_gives_the_pictures_back(teaching_flow) -> None:
    """The round trip on a trained model: with a second-order solver the morph's endpoints are the pictures up
    to the autoencoder's own error; reverse Euler at the same steps is several times worse."""
    from helpers.teaching import scenes

    pair = scenes.example_scenes(["red apple", "green apple"], seed=0)
    images = [to_pil(im) for im in pair.images]
    pixels = teaching_flow.image_processor.preprocess(images)
    ends = flow.decode_latents(teaching_flow, flow.encode_image_latents(teaching_flow, pixels))
    floor = float(((ends.permute(0, 2, 3, 1).double().numpy() - morph.images_to_array(images)) ** 2).mean())
    errors = {}
    for solver in ("euler", "fireflow"):
        inv = morph.invert_images(teaching_flow, images, num_inference_steps=8, solver=solver)
        errors[solver] = morph.endpoint_error(morph.render_morph(teaching_flow, inv, [0.0, 1.0], progress=False), inv)
    assert errors["fireflow"] < 1.2 * floor + 1e-4, (errors, floor)
    assert errors["euler"] > 4 * errors["fireflow"], errors


def test_bad_morph_inputs_are_refused(sd3) -> None:
    with pytest.raises(ValueError, match="solver must be one of"):
        morph.invert_images(sd3, _pictures(sd3), solver="rk4")
    with pytest.raises(ValueError, match="inverted with DDIM"):
        morph.invert_images(tiny_pipeline("text2img"), _pictures(sd3), solver="midpoint")
    sd_inversion = morph.invert_images(tiny_pipeline("text2img"), _pictures(sd3), num_inference_steps=2)
    with pytest.raises(ValueError, match="invert the images with this StableDiffusion3Pipeline"):
        morph.render_morph(sd3, sd_inversion, [0.0, 1.0], progress=False)
    with pytest.raises(TypeError, match="Stable-Diffusion-style"):
        morph.chained_img2img(sd3, morph.invert_images(sd3, _pictures(sd3), num_inference_steps=2), [0.0, 1.0])
