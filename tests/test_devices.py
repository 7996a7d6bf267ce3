"""Device, dtype policy and seeded generators (helpers.devices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.devices import clone_generator, describe_device, get_device, make_generator, pick_dtype


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend a CUDA GPU of a given compute capability is present."""

    def install(capability: tuple[int, int], name: str = "Fake GPU") -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        # A T4 claims bf16 support (by emulation): the policy must not believe it.
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)

    return install


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((6, 1), torch.float16),  # Pascal (P100 is 6.0, GTX 10x0 6.1)
        ((7, 0), torch.float16),  # V100
        ((7, 5), torch.float16),  # T4, Colab's free GPU: bf16 only emulated
        ((8, 0), torch.bfloat16),  # A100
        ((8, 6), torch.bfloat16),  # RTX 30x0
        ((8, 9), torch.bfloat16),  # L4, RTX 40x0
        ((9, 0), torch.bfloat16),  # H100
    ],
)
def test_pick_dtype_by_compute_capability(fake_cuda, capability, expected):
    fake_cuda(capability)
    assert pick_dtype("cuda") == expected
    assert pick_dtype(torch.device("cuda", 0)) == expected


@pytest.mark.parametrize("name", ["NVIDIA GeForce GTX 1650", "NVIDIA GeForce GTX 1660 SUPER"])
def test_gtx_16xx_cards_get_float32(fake_cuda, name):
    # Regression (issue 16, item 6): capability 7.5 like a T4, but widely reported to give black fp16 frames.
    fake_cuda((7, 5), name)
    assert pick_dtype("cuda") == torch.float32
    fake_cuda((7, 5), "Tesla T4")
    assert pick_dtype("cuda") == torch.float16


def test_pick_dtype_float32_off_cuda():
    assert pick_dtype("cpu") == torch.float32
    assert pick_dtype(torch.device("mps")) == torch.float32


def test_pick_dtype_default_device_follows_get_device(monkeypatch, fake_cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_dtype() == torch.float32
    fake_cuda((8, 0))
    assert pick_dtype() == torch.bfloat16


def test_pick_dtype_rejects_non_devices():
    with pytest.raises(TypeError, match="device"):
        pick_dtype(3.5)


def test_make_generator_reproducible_and_on_cpu():
    g1, g2 = make_generator(1234), make_generator(1234)
    assert g1.device == torch.device("cpu")
    a, b = torch.randn(1000, generator=g1), torch.randn(1000, generator=g2)
    assert torch.equal(a, b)
    c = torch.randn(1000, generator=make_generator(1235))
    assert not torch.allclose(a, c)
    # the same numbers as torch's own seeding of a CPU generator (independent reference)
    assert torch.equal(a, torch.randn(1000, generator=torch.Generator().manual_seed(1234)))


def test_make_generator_accepts_numpy_ints_and_large_seeds():
    a = torch.randn(10, generator=make_generator(np.int64(7)))
    assert torch.equal(a, torch.randn(10, generator=make_generator(7)))
    make_generator(2**64 - 1)


@pytest.mark.parametrize(
    ("seed", "error"),
    [
        (True, TypeError),
        (1.5, TypeError),
        ("3", TypeError),
        (None, TypeError),
        (-1, ValueError),
        (2**64, ValueError),
    ],
)
def test_make_generator_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        make_generator(seed)


def test_clone_generator_copies_state_without_consuming():
    g = make_generator(5)
    torch.randn(3, generator=g)  # advance it
    copy = clone_generator(g)
    assert torch.equal(torch.randn(8, generator=copy), torch.randn(8, generator=g))
    with pytest.raises(TypeError):
        clone_generator(5)


def test_describe_device_cpu_names_device_and_dtype():
    text = describe_device("cpu")
    assert "CPU" in text and "float32" in text


def test_describe_device_cuda(fake_cuda):
    fake_cuda((7, 5), name="Tesla T4")
    text = describe_device("cuda")
    assert "Tesla T4" in text and "7.5" in text and "float16" in text and "bfloat16" not in text.split(":")[0]
    fake_cuda((8, 0), name="A100")
    assert "bfloat16" in describe_device("cuda")


def test_cpu_threads_are_half_the_usable_cores(monkeypatch):
    import os

    from helpers.devices import cpu_threads, use_cpu_threads

    for cores, want in ((1, 1), (2, 1), (3, 1), (8, 4), (16, 8), (64, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert cpu_threads() == want
    before = torch.get_num_threads()
    try:
        assert use_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="positive int"):
            use_cpu_threads(0)
    finally:
        torch.set_num_threads(before)


def test_choose_backend_on_the_cpu_sets_the_threads_without_saying_so(monkeypatch):
    import os

    from helpers.backends import choose_backend

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    before = torch.get_num_threads()
    try:
        backend = choose_backend("tiny-random", "text2img")
        assert torch.get_num_threads() == 4
        assert "thread" not in backend.describe()  # infrastructure stays out of the printed reason
    finally:
        torch.set_num_threads(before)
