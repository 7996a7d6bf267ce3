"""Import the project's scripts in tools/ (not part of the installed package) from the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module, loaded once per test session (``load_tool("notebooks")``)."""
    module_name = f"lw_tools_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def ended_by(returncode: int, output: str, sig: int) -> bool:
    """Whether a child Python process ended because of the signal ``sig``.

    For SIGINT, Python normally ends an uncaught ``KeyboardInterrupt`` by SIGINT itself (return code -2). When
    torch's compiler stack is loaded (diffusers loads it), its exit hook ``torch._dynamo.utils.dump_compile_times``
    imports ``tabulate`` for the first time while Python exits, and CPython then exits with status 1 instead
    (measured 2026-12-07 with torch 2.13.0; tabulate comes with the course site's packages). Both mean the
    process was interrupted by the Ctrl-C: status 1 counts only with ``KeyboardInterrupt`` as its last word.
    """
    import signal

    if returncode == -sig:
        return True
    return sig == signal.SIGINT and returncode == 1 and output.rstrip().endswith("KeyboardInterrupt")
