"""helpers.unclip on tiny unCLIP pipelines: DDIM decoding, learned-variance decoders and DDIM inversion.

The inversion is checked against an analytic denoiser: for Gaussian data N(0, s²) the exact noise prediction
is known in closed form, so DDIM inversion followed by DDIM decoding must reconstruct the input, better with
more steps — an independent fact that needs no trained weights.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from helpers import tiny_pipeline
from helpers.embeddings import encode_images
from helpers.unclip import ddim_scheduler, decode, invert, resize_images, with_ddim

DATA_STD = 0.25


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline("unclip")


def _latents(pipe, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    d, s = pipe.decoder.config, pipe.super_res_first.config
    dec = torch.randn((n, d.in_channels, d.sample_size, d.sample_size), generator=g)
    sr = torch.randn((n, s.in_channels // 2, s.sample_size, s.sample_size), generator=g)
    return dec, sr


def _images(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 3, 32, 32), generator=g)


def test_tiny_decoder_predicts_learned_variance(pipe):
    assert pipe.decoder.config.out_channels == 2 * pipe.decoder.config.in_channels


def test_decode_is_deterministic_and_batch_independent(pipe):
    emb = encode_images(pipe, _images(3))
    dec, sr = _latents(pipe, 3)
    a = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2)
    b = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2)
    assert a.shape == (3, 3, 32, 32) and a.dtype == torch.float32
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    alone = decode(pipe, emb[1:2], dec[1:2], sr[1:2], num_inference_steps=3, super_res_num_inference_steps=2)
    torch.testing.assert_close(alone[0], a[1], atol=1e-4, rtol=0)  # float batching noise only


def test_decode_renders_in_chunks_that_do_not_change_the_frames(pipe, monkeypatch):
    """Regression (issue 16, item 2): every frame went through one pipeline call (9.4 GiB for Karlo's 16-frame
    morph). Chunks of any size give the same frames, up to float batching noise."""
    emb = encode_images(pipe, _images(5))
    dec, sr = _latents(pipe, 5)
    calls = []
    real = type(pipe).__call__

    def counting(self, *args, **kwargs):
        calls.append(len(kwargs["image_embeddings"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", counting)
    whole = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2, batch_size=5)
    chunked = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2, batch_size=2)
    assert calls == [5, 2, 2, 1]
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=0)
    gens = [torch.Generator().manual_seed(k) for k in range(5)]
    varied = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2, eta=1.0,
                    generator=gens, batch_size=2)  # one generator per frame: sliced with the chunks
    gens = [torch.Generator().manual_seed(k) for k in range(5)]
    varied_whole = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2, eta=1.0,
                          generator=gens, batch_size=5)
    torch.testing.assert_close(varied, varied_whole, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="batch_size"):
        decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2, batch_size=0)


def test_decode_guidance_uses_learned_variance_split(pipe):
    emb = encode_images(pipe, _images(2))
    dec, sr = _latents(pipe, 2)
    plain = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2)
    guided = decode(pipe, emb, dec, sr, num_inference_steps=3, super_res_num_inference_steps=2,
                    guidance_scale=3.0)
    assert guided.shape == plain.shape and torch.isfinite(guided).all()
    assert not torch.equal(guided, plain)


def test_eta_gives_seeded_variations(pipe):
    emb = encode_images(pipe, _images(1))
    dec, sr = _latents(pipe, 1)

    def run(seed):
        return decode(pipe, emb, dec, sr, num_inference_steps=4, super_res_num_inference_steps=2, eta=1.0,
                      generator=torch.Generator().manual_seed(seed))

    base = decode(pipe, emb, dec, sr, num_inference_steps=4, super_res_num_inference_steps=2)
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    assert not torch.equal(run(0), base)


def test_ddim_adapter_accepts_the_pipeline_step_call(pipe):
    scheduler = ddim_scheduler(pipe.decoder_scheduler)
    scheduler.set_timesteps(4)
    sample = torch.randn(2, 3, 16, 16)
    with_variance = torch.cat([torch.randn(2, 3, 16, 16), torch.full((2, 3, 16, 16), 5.0)], dim=1)
    t = scheduler.timesteps[0]
    out = scheduler.step(with_variance, t, sample, prev_timestep=scheduler.timesteps[1]).prev_sample
    ref = scheduler.step(with_variance[:, :3], t, sample).prev_sample
    torch.testing.assert_close(out, ref)
    # The same noise schedule as the unCLIP scheduler it replaces.
    torch.testing.assert_close(scheduler.alphas_cumprod, pipe.decoder_scheduler.alphas_cumprod)


def test_with_ddim_shares_weights(pipe):
    ddim = with_ddim(pipe)
    assert ddim.decoder is pipe.decoder and ddim.image_encoder is pipe.image_encoder
    assert type(ddim.decoder_scheduler).__name__ == "UnCLIPDDIMScheduler"
    assert type(pipe.decoder_scheduler).__name__ == "UnCLIPScheduler"  # the original is untouched


def test_bad_inputs_raise_clear_errors(pipe):
    emb = encode_images(pipe, _images(2))
    dec, sr = _latents(pipe, 2)
    with pytest.raises(ValueError, match="decoder_latents"):
        decode(pipe, emb, dec[:, :, :8], sr)
    with pytest.raises(ValueError, match="rows"):
        decode(pipe, emb, torch.cat([dec, dec]), sr)
    with pytest.raises(ValueError, match="eta"):
        decode(pipe, emb, dec, sr, eta=-0.5)
    with pytest.raises(TypeError, match="unCLIP"):
        invert(tiny_pipeline("text2img"), _images(1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        invert(pipe, _images(1) * 3)


class GaussianOracle(torch.nn.Module):
    """Exact noise prediction for Gaussian data around the conditioning image under a given noise schedule.

    Mimics the call signature of the decoder (``UNet2DConditionModel``) and super-res (``UNet2DModel``) stages
    and, like Karlo's decoder, can append learned-variance channels (filled with garbage that must be ignored).
    """

    def __init__(self, alphas_cumprod, *, in_channels: int, sample_size: int, variance_channels: int = 0,
                 prediction_type: str = "epsilon"):
        super().__init__()
        self.prediction_type = prediction_type
        self.register_buffer("abar", alphas_cumprod.clone())
        self.config = SimpleNamespace(in_channels=in_channels, sample_size=sample_size)
        self.variance_channels = variance_channels
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a dtype and device

    @property
    def dtype(self):
        return self.anchor.dtype

    @property
    def device(self):
        return self.anchor.device

    def forward(self, sample, timestep, encoder_hidden_states=None, class_labels=None, attention_mask=None):
        # Data x0 ~ N(c, DATA_STD²) with c = the conditioning channels (super-res) or 0 (decoder).
        x, c = sample[:, :3], (sample[:, 3:] if sample.shape[1] == 6 else 0.0)
        a = self.abar[int(timestep)]
        eps = (1 - a).sqrt() * (x - a.sqrt() * c) / (a * DATA_STD**2 + 1 - a)
        if self.prediction_type == "sample":  # E[x0 | x_t] of the same Gaussian
            eps = c + a.sqrt() * DATA_STD**2 * (x - a.sqrt() * c) / (a * DATA_STD**2 + 1 - a)
        if self.variance_channels:
            eps = torch.cat([eps, torch.full_like(eps, 7.0)], dim=1)
        return SimpleNamespace(sample=eps)


def _oracle_pipeline(pipe, prediction_type: str):
    from diffusers import UnCLIPScheduler

    dec_sched = UnCLIPScheduler(variance_type="learned_range", prediction_type=prediction_type)
    sr_sched = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type=prediction_type)
    abar = dec_sched.alphas_cumprod
    kw = {"prediction_type": prediction_type}
    components = dict(pipe.components)
    components.update(
        decoder=GaussianOracle(abar, in_channels=3, sample_size=16, variance_channels=3, **kw),
        super_res_first=GaussianOracle(abar, in_channels=6, sample_size=32, **kw),
        super_res_last=GaussianOracle(abar, in_channels=6, sample_size=32, **kw),
        decoder_scheduler=dec_sched,
        super_res_scheduler=sr_sched,
    )
    oracle = type(pipe)(**components)
    oracle.set_progress_bar_config(disable=True)
    return oracle


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_inversion_round_trip_improves_with_steps(pipe, prediction_type):
    oracle = _oracle_pipeline(pipe, prediction_type)
    g = torch.Generator().manual_seed(0)
    images = (0.5 + 0.5 * DATA_STD * torch.randn((2, 3, 32, 32), generator=g)).clamp(0, 1)
    emb = encode_images(oracle, images)
    errors = []
    for steps in (4, 16, 64):
        inv = invert(oracle, images, emb, num_inference_steps=steps, super_res_num_inference_steps=steps,
                     invert_super_res=True)
        assert inv.decoder_latents.shape == (2, 3, 16, 16) and inv.super_res_latents.shape == (2, 3, 32, 32)
        rec = decode(oracle, inv.image_embeddings, inv.decoder_latents, inv.super_res_latents,
                     num_inference_steps=steps, super_res_num_inference_steps=steps)
        errors.append(float(((rec - images) ** 2).mean()))
    assert errors[0] > errors[1] > errors[2]
    # Sample-predicting models invert less precisely: their noise estimate at the clean end is ill-conditioned.
    assert errors[2] < {"epsilon": 1e-4, "sample": 1e-3}[prediction_type]
    if prediction_type == "epsilon":
        # The decoder's inverted noise is its input scaled up to unit variance, as the exact ODE says.
        low = resize_images(images, 16) * 2 - 1
        ratio = float(inv.decoder_latents.std() / low.std())
        assert ratio == pytest.approx(1 / DATA_STD, rel=0.1)


def test_inversion_with_guidance_runs_on_tiny_pipeline(pipe):
    images = _images(2)
    inv = invert(pipe, images, num_inference_steps=3, super_res_num_inference_steps=2, guidance_scale=2.0)
    assert torch.isfinite(inv.decoder_latents).all() and torch.isfinite(inv.super_res_latents).all()
    torch.testing.assert_close(inv.image_embeddings, encode_images(pipe, images))
    # A sample-predicting super-res stage gets one fixed, seeded row of noise instead of an inversion.
    assert torch.equal(inv.super_res_latents[0], inv.super_res_latents[1])
    again = invert(pipe, images, num_inference_steps=3, super_res_num_inference_steps=2)
    assert torch.equal(again.super_res_latents, inv.super_res_latents)


def test_morph_decodes_points_at_the_right_angles_on_both_parts_of_the_latent(pipe, monkeypatch):
    """Independent facts of a slerp at t: the point is at angle t·Ω from the first end and (1 - t)·Ω from the
    second (Ω the angle between them), with the norm interpolated between theirs; lerp's midpoint is the mean."""
    import helpers.unclip as unclip_module
    from helpers.interpolation import lerp
    from helpers.unclip import UnCLIPInversion, morph

    emb = encode_images(pipe, _images(2))
    dec, sr = _latents(pipe, 2)
    inv = UnCLIPInversion(emb, dec, sr)
    seen = []
    real_decode = unclip_module.decode

    def spy(p, e, d, s, **kw):
        seen.append((e.clone(), d.clone(), s.clone()))
        return real_decode(p, e, d, s, **kw)

    monkeypatch.setattr(unclip_module, "decode", spy)

    def angle(x, y):
        x, y = x.flatten().double(), y.flatten().double()
        return torch.arccos((x @ y / (x.norm() * y.norm())).clamp(-1, 1))

    t = [0.0, 0.3, 1.0]
    got = morph(pipe, inv, t, num_inference_steps=3)
    assert got.shape == (3, 3, 32, 32)
    e, d, s = seen[-1]
    for ends, point in ((emb, e[1]), (dec, d[1]), (sr, s[1])):
        whole = angle(ends[0], ends[1])
        assert float(angle(ends[0], point)) == pytest.approx(0.3 * float(whole), rel=1e-3)
        assert float(angle(point, ends[1])) == pytest.approx(0.7 * float(whole), rel=1e-3)
    # t = 0 and t = 1 decode each image's own latent (up to float rounding)
    for x, y in ((e[0], emb[0]), (e[2], emb[1]), (d[0], dec[0]), (d[2], dec[1]), (s[0], sr[0]), (s[2], sr[1])):
        assert torch.allclose(x, y, atol=1e-5)
    ends = real_decode(pipe, emb, dec, sr, num_inference_steps=3)
    assert torch.allclose(got[0], ends[0], atol=1e-5) and torch.allclose(got[-1], ends[1], atol=1e-5)
    # `noise` replaces slerp for the two noises only: lerp's midpoint is the plain mean
    morph(pipe, inv, [0.5], noise=lerp, num_inference_steps=3)
    e, d, s = seen[-1]
    assert torch.allclose(d[0], (dec[0] + dec[1]) / 2, atol=1e-6) and torch.allclose(s[0], (sr[0] + sr[1]) / 2,
                                                                                     atol=1e-6)
    whole = angle(emb[0], emb[1])
    assert float(angle(emb[0], e[0])) == pytest.approx(0.5 * float(whole), rel=1e-3)
