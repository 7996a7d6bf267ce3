"""Shared test fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one torch thread; on a shared, oversubscribed CPU two threads spin (5-10x).

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the thread count is restored afterwards.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
