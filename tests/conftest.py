"""Shared test settings: every test runs torch on one CPU thread.

Tiny models run fastest on one thread, and on a shared, oversubscribed CPU two threads spin: one slow test took
119 s with torch's default threads on a busy machine against 16.8 s with one. Subprocesses (notebook kernels,
the command line) inherit ``OMP_NUM_THREADS=1``. A test that measures threads sets its own; the count is
restored after every test.

``make test`` spreads the tests over both cores with pytest-xdist (``--dist loadgroup``): each test goes to
whichever worker is free, except the modules in ``XDIST_WHOLE_MODULES``, whose module-scoped fixtures (a judge
fitted on fresh scenes, a trained toy model, a reference render) would otherwise be built once per worker.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")


XDIST_WHOLE_MODULES = {
    "test_demo",
    "test_morph",
    "test_resume",
    "test_single_file",
    "test_teaching_quality",
    "test_teaching_toy2d",
    "test_teaching_unclip",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.stem
        if module in XDIST_WHOLE_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(autouse=True)
def _one_torch_thread():  # per test, so one that changes the threads cannot slow the next
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
