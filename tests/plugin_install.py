"""Install the example connector plugin (tests/plugin_example, helpdesk "deskette") for the test session.

Why really install it: the point is that deskpulse finds a helpdesk it never names, through the
``deskpulse.connectors`` entry point of an installed distribution. pip builds the package into a temporary
``--target`` directory (``--no-index --no-deps --no-build-isolation``: offline, nothing else installed);
that directory goes on ``sys.path`` for this process and on ``PYTHONPATH`` for the ``deskpulse``
subprocesses, where ``importlib.metadata`` finds its ``.dist-info`` and entry point. Called from
``tests/conftest.py``'s ``pytest_configure``, i.e. before collection, so the contract suite can
parametrize over every installed plugin.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "plugin_example"


def install_example_plugin() -> Path:
    """Build and install the example plugin into a new temporary directory; return that directory."""
    root = Path(tempfile.mkdtemp(prefix="deskpulse-plugin-"))
    src, site = root / "src", root / "site"
    # a copy, so nothing the build writes lands in the source tree
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not install the example plugin: {done.stderr.strip()[-2000:]}")
    sys.path.append(str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    importlib.invalidate_caches()
    from connectors.plugin import installed

    installed.cache_clear()  # discovery may have run before the plugin was on the path
    from sync.registry import register_source_models

    register_source_models()
    return root


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
