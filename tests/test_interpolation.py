"""slerp, lerp and paths, checked against independent facts (angles, norms, a reference slerp)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation, Slerp

from helpers import (
    circular_walk,
    cosine_schedule,
    interpolation_path,
    lerp,
    normalize,
    schedule_values,
    slerp,
    text_diff,
    walk_around,
)


def angle(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double().flatten(), y.double().flatten()
    return math.acos(max(-1.0, min(1.0, float(x @ y / (x.norm() * y.norm())))))


def pair(shape=(4, 16, 16), seed=0, equal_norm=True):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    if equal_norm:
        b = b / b.norm() * a.norm()
    return a, b


# ---------------------------------------------------------------------------------------------- slerp


def test_slerp_endpoints_are_exact():
    a, b = pair()
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)


def test_slerp_angle_to_a_is_linear_in_t_and_norm_is_preserved():
    a, b = pair()
    omega = angle(a, b)
    ts = np.linspace(0, 1, 11)
    path = slerp(a, b, ts)
    assert path.shape == (11, *a.shape)
    for t, x in zip(ts, path):
        assert angle(a, x) == pytest.approx(t * omega, abs=1e-4)
        assert angle(x, b) == pytest.approx((1 - t) * omega, abs=1e-4)
        assert float(x.norm() / a.norm()) == pytest.approx(1.0, abs=1e-5)


def test_slerp_matches_the_classical_formula_for_equal_norms():
    a, b = pair(shape=(64,), seed=3)
    ad, bd = a.double(), b.double()
    omega = math.acos(float(ad @ bd / (ad.norm() * bd.norm())))
    for t in (0.1, 0.5, 0.77):
        expected = (math.sin((1 - t) * omega) * ad + math.sin(t * omega) * bd) / math.sin(omega)
        assert torch.allclose(slerp(a, b, t).double(), expected, atol=1e-5)


def test_slerp_agrees_with_scipy_quaternion_slerp():
    """Unit quaternions are 4-D unit vectors; scipy's rotation Slerp is an independent implementation."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        q0, q1 = rng.normal(size=(2, 4))
        q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
        if q0 @ q1 < 0:  # scipy takes the shorter arc; so do we for positive dot
            q1 = -q1
        times = np.linspace(0, 1, 7)
        ref = Slerp([0, 1], Rotation.from_quat([q0, q1]))(times).as_quat()
        ours = slerp(q0, q1, times)
        # a quaternion and its negative are the same rotation: compare up to sign
        signs = np.sign(np.sum(ref * ours, axis=1, keepdims=True))
        np.testing.assert_allclose(ours, ref * signs, atol=1e-6)


def test_slerp_keeps_numpy_dtype_with_float64_t():
    a, b = (x.numpy() for x in pair())
    out = slerp(a, b, np.linspace(0, 1, 4))  # float64 t must not promote (the cookbook's bug)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, *a.shape)
    assert slerp(a.astype(np.float64), b.astype(np.float64), 0.3).dtype == np.float64


def test_slerp_large_fp16_latents_do_not_overflow():
    a, b = pair(shape=(4, 128, 128), seed=1)
    a16, b16 = (a * 20).half(), (b * 20).half()  # norm ≈ 5,120: its square overflows fp16
    out = slerp(a16, b16, [0.0, 0.5, 1.0])
    assert out.dtype == torch.float16 and bool(torch.isfinite(out).all())
    ratio = out.float().flatten(1).norm(dim=1) / a16.float().norm()
    assert torch.allclose(ratio, torch.ones(3), atol=2e-3)


def test_slerp_nearly_parallel_falls_back_to_lerp():
    a = torch.randn(32, generator=torch.Generator().manual_seed(0))
    b = a + 1e-4 * torch.randn(32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(slerp(a, b, 0.3), lerp(a, b, 0.3), atol=1e-6)
    assert torch.allclose(slerp(a, a, 0.5), a, atol=1e-6)  # the community slerp gives 1.41·a here


def test_slerp_exactly_opposite_is_deterministic_and_stays_on_the_sphere():
    a = torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    mid1, mid2 = slerp(a, -a, 0.5), slerp(a, -a, 0.5)
    assert torch.equal(mid1, mid2)
    assert float(mid1.norm() / a.norm()) == pytest.approx(1.0, abs=1e-5)
    assert angle(mid1, a) == pytest.approx(math.pi / 2, abs=1e-4)
    assert torch.allclose(slerp(a, -a, 1.0), -a, atol=1e-5)


def test_slerp_per_slice_equals_row_by_row():
    a, b = torch.randn(5, 12), torch.randn(5, 12)
    batched = slerp(a, b, [0.25, 0.6], dim=-1)
    for i in range(5):
        assert torch.allclose(batched[:, i], slerp(a[i], b[i], [0.25, 0.6]), atol=1e-6)


def test_unequal_norms_interpolate_linearly_in_norm():
    a, b = pair(shape=(100,), seed=4, equal_norm=False)
    b = b / b.norm() * 3 * a.norm()
    for t in (0.25, 0.5):
        assert float(slerp(a, b, t).norm()) == pytest.approx(float((1 - t) * a.norm() + t * b.norm()), rel=1e-5)


@pytest.mark.parametrize(
    ("a", "b", "t", "exc", "phrase"),
    [
        (torch.ones(3), torch.ones(4), 0.5, ValueError, "same shape"),
        (torch.tensor([1.0, float("nan")]), torch.ones(2), 0.5, ValueError, "NaN"),
        (torch.zeros(3), torch.ones(3), 0.5, ValueError, "zero norm"),
        (torch.ones(3, dtype=torch.int64), torch.ones(3, dtype=torch.int64), 0.5, TypeError, "floating-point"),
        (torch.ones(3), torch.ones(3), [[0.1]], ValueError, "1-D"),
        (torch.ones(3), torch.ones(3), [], ValueError, "empty"),
        (torch.ones(3), torch.ones(3), float("inf"), ValueError, "NaN or infinite"),
        ([1.0, 2.0], [1.0, 2.0], 0.5, TypeError, "torch.Tensor or a numpy array"),
    ],
)
def test_slerp_rejects_bad_input_with_a_plain_message(a, b, t, exc, phrase):
    with pytest.raises(exc, match=phrase):
        slerp(a, b, t)


def test_slerp_zero_slice_is_reported():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    a[1] = 0
    with pytest.raises(ValueError, match="slice"):
        slerp(a, b, 0.5, dim=-1)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    ts=st.lists(st.floats(0, 1), min_size=1, max_size=5),
    seed=st.integers(0, 10_000),
)
def test_slerp_properties_hold_for_random_shapes_and_t(shape, ts, seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    if a.norm() < 1e-3 or b.norm() < 1e-3 or (a.numel() == 1 and float(a * b) < 0):
        return  # zero vectors and opposite 1-element vectors are refused (tested separately)
    b = b / b.norm() * a.norm()
    omega = angle(a, b)
    out = slerp(a, b, ts)
    assert out.shape == (len(ts), *shape) and out.dtype == torch.float64
    for t, x in zip(ts, out):
        assert float(x.norm() / a.norm()) == pytest.approx(1.0, abs=1e-6)
        if omega > 0.05:  # below the parallel threshold the fallback is lerp, which is off the sphere
            assert angle(a, x) == pytest.approx(t * omega, abs=1e-5)


def test_lerp_matches_formula_and_keeps_dtype():
    a, b = pair(shape=(8,))
    assert torch.allclose(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)
    out = lerp(a.numpy(), b.numpy(), np.array([0.0, 1.0]))
    assert out.dtype == np.float32 and np.allclose(out[1], b.numpy())


def test_normalize_gives_unit_vectors():
    x = torch.randn(3, 7)
    assert torch.allclose(normalize(x, dim=-1).norm(dim=-1), torch.ones(3), atol=1e-6)
    with pytest.raises(ValueError, match="non-zero"):
        normalize(torch.zeros(3))


# ---------------------------------------------------------------------------------------------- paths


def _no_consecutive_duplicates(frames) -> bool:
    return all(not torch.allclose(frames[i], frames[i + 1]) for i in range(len(frames) - 1))


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_open_path_visits_each_keypoint_once_without_duplicates(method):
    keys = [torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    frames = interpolation_path(keys, 16, method=method)
    assert frames.shape == (16, 4, 8, 8)
    assert _no_consecutive_duplicates(frames)
    for k in keys:  # every keypoint is exactly one frame
        assert sum(torch.allclose(f, k, atol=1e-5) for f in frames) == 1
    assert torch.allclose(frames[0], keys[0]) and torch.allclose(frames[-1], keys[-1], atol=1e-6)


def test_closed_path_does_not_repeat_its_first_frame():
    keys = [torch.randn(16, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    frames = interpolation_path(keys, 12, closed=True)
    assert frames.shape == (12, 16)
    assert torch.allclose(frames[0], keys[0])
    assert not torch.allclose(frames[-1], keys[0])
    assert _no_consecutive_duplicates(torch.cat([frames, frames[:1]]))


def test_frames_are_shared_in_proportion_to_segment_angles():
    e = torch.eye(3)
    a, b = e[0], e[1]
    c = slerp(b, e[2], 1 / 3)  # segment a→b spans 90°, b→c spans 30°
    frames = interpolation_path([a, b, c], 9)  # 8 steps: 6 on the first segment, 2 on the second
    index_of_b = next(i for i, f in enumerate(frames) if torch.allclose(f, b, atol=1e-6))
    assert index_of_b == 6
    steps = [angle(frames[i], frames[i + 1]) for i in range(8)]
    assert np.allclose(steps, steps[0], atol=1e-4)  # uniform angular speed across the join


def test_path_schedules_and_errors():
    keys = [torch.randn(8, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    eased = interpolation_path(keys, 5, schedule="cosine")
    steps = [angle(eased[i], eased[i + 1]) for i in range(4)]
    assert steps[0] < steps[1] and steps[3] < steps[2]  # slow at the ends
    custom = interpolation_path(keys, 3, schedule=[0.0, 0.5, 1.0])
    assert torch.allclose(custom[1], slerp(keys[0], keys[1], 0.5), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 keypoints"):
        interpolation_path(keys[:1], 4)
    with pytest.raises(ValueError, match="at least 3 frames"):
        interpolation_path(keys + [keys[0] * 2], 2)
    with pytest.raises(ValueError, match="monotone"):
        interpolation_path(keys, 3, schedule=[0.0, 0.8, 0.5])
    with pytest.raises(ValueError, match="same shape"):
        interpolation_path([torch.ones(3), torch.ones(4)], 4)


def test_schedules():
    c = cosine_schedule(9)
    assert c[0] == 0 and c[-1] == 1 and (np.diff(c) > 0).all() and c.dtype == np.float32
    assert schedule_values(None, 4, endpoint=False).tolist() == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="unknown schedule"):
        schedule_values("bouncy", 4)


def test_circular_walk_keeps_gaussian_norm_while_lerp_midpoint_shrinks():
    d = 4 * 64 * 64
    x, y = pair(shape=(d,), seed=7, equal_norm=False)
    loop = circular_walk(x, y, 24)
    assert loop.shape == (24, d)
    norms = loop.norm(dim=1)
    assert float(norms.mean()) == pytest.approx(math.sqrt(d), rel=0.01)
    assert float(lerp(x, y, 0.5).norm()) == pytest.approx(math.sqrt(0.5) * math.sqrt(d), rel=0.02)
    # seamless: the step from the last frame back to the first equals the other steps
    steps = (torch.cat([loop[1:], loop[:1]]) - loop).norm(dim=1)
    assert torch.allclose(steps, steps.mean().expand(24), rtol=0.02)
    assert not torch.allclose(loop[-1], loop[0])


def test_walk_around_is_a_circle_of_the_requested_radius():
    c = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(0))
    loop = walk_around(c, 10, radius=0.1, generator=torch.Generator().manual_seed(1))
    dist = (loop - c).flatten(1).norm(dim=1)
    assert torch.allclose(dist, torch.full((10,), 0.1 * float(c.norm())), rtol=1e-4)
    again = walk_around(c, 10, radius=0.1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(loop, again)
    with pytest.raises(ValueError, match="radius"):
        walk_around(c, 10, radius=-1)


def test_text_diff_starts_at_the_image_and_turns_towards_the_text_change():
    g = torch.Generator().manual_seed(0)
    z_i, z_t, z_t0 = (torch.randn(2, 32, generator=g) for _ in range(3))
    path = text_diff(z_i, z_t[0], z_t0[0], [0.0, 0.25, 0.5])
    assert path.shape == (3, 2, 32)
    assert torch.allclose(path[0], z_i, atol=1e-5)
    assert torch.allclose(path.norm(dim=-1), z_i.norm(dim=-1).expand(3, 2), rtol=1e-5)
    d = z_t[0] - z_t0[0]
    cos_to_d = [float(torch.nn.functional.cosine_similarity(p[0], d, dim=0)) for p in path]
    assert cos_to_d[0] < cos_to_d[1] < cos_to_d[2]
    with pytest.raises(ValueError, match="no direction"):
        text_diff(z_i, z_t[0], z_t[0], [0.1])


def test_opposite_one_element_vectors_are_refused():
    with pytest.raises(ValueError, match="opposite"):
        slerp(torch.ones(1), -torch.ones(1), 0.5)
