"""Shared test settings: every test runs torch on one CPU thread.

Tiny models run fastest on one thread, and on a shared, oversubscribed CPU two threads spin: one slow test took
119 s with torch's default threads on a busy machine against 16.8 s with one. Subprocesses (notebook kernels,
the command line) inherit ``OMP_NUM_THREADS=1``. A test that measures threads sets its own; the count is
restored after every test.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _one_torch_thread():  # per test, so one that changes the threads cannot slow the next
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
