"""Shared test settings: every test runs torch on one CPU thread.

Tiny models run fastest on one thread, and on a shared, oversubscribed CPU two threads spin: one slow test took
119 s with torch's default threads on a busy machine against 16.8 s with one. Subprocesses (notebook kernels,
the command line) inherit ``OMP_NUM_THREADS=1`` and, on x86, torch's AVX2 kernels
(:func:`helpers.teaching.common.pin_cpu_kernels`), so a judge fitted in a test is the same file on the AMD EPYC's
AVX2 and AVX-512 kernels (an Intel Xeon fits other bytes that read scenes alike). A test that measures threads
sets its own; the count is restored after every test.

``make test`` spreads the tests over both cores with pytest-xdist: each test goes to whichever worker is free,
except the modules in ``XDIST_WHOLE_MODULES``, whose module-scoped fixtures (a judge fitted on fresh scenes, a
trained toy model, a reference render) would otherwise be built again whenever a worker comes back to them.
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.teaching.common import pin_cpu_kernels

os.environ.setdefault("OMP_NUM_THREADS", "1")
pin_cpu_kernels()  # before torch picks its kernels: judges fitted in a test are the same on AVX2 and AVX-512 CPUs

import pytest  # noqa: E402
import torch  # noqa: E402

#: Modules that are one unit of work for pytest-xdist, the costliest first (they also run first, see below).
XDIST_WHOLE_MODULES = (
    "test_teaching_quality",
    "test_teaching_unclip",
    "test_resume",
    "test_demo",
    "test_morph",
    "test_teaching_toy2d",
    "test_teaching_toy_flow",
    "test_teaching_flow",
    "test_single_file",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the whole-module units first, the costliest first, so that no worker is left with a long one at the
    end while the other idles; every other test keeps its place (a stable sort, the same on every worker)."""
    rank = {name: i for i, name in enumerate(XDIST_WHOLE_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown (and never called) without xdist
def pytest_xdist_make_scheduler(config, log):
    """Tests go to whichever worker is free, except that a module of ``XDIST_WHOLE_MODULES`` is one unit of work.

    (``--dist loadgroup`` with ``xdist_group`` marks would do this, but pytest-xdist 3.8 marks the group by
    rewriting ``item._nodeid``, which pytest 9 no longer reads: the groups were split across the workers.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class WholeCostlyModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if Path(module).stem in XDIST_WHOLE_MODULES else nodeid

    return WholeCostlyModules(config, log)


@pytest.fixture(autouse=True)
def _one_torch_thread():  # per test, so one that changes the threads cannot slow the next
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
