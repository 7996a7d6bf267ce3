"""Load the project's scripts in tools/ (not part of the installed package) as modules, once per process.

The tools, their tests and the site's Sphinx configuration all load them through :func:`load_tool`, so each
script is one module wherever it is used (a plain ``import notebooks`` could also find the ``notebooks/``
folder of the repository instead of ``tools/notebooks.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parent


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as the module ``lw_tools_<name>``, loaded once (``load_tool("notebooks")``)."""
    module_name = f"lw_tools_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
