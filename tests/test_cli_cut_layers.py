"""The cut between the CLI and the pipeline (issue 12, item 3).

- every command installs redaction (the root callback does it, not each command): a configured secret in an
  error is masked by ``kpi``, ``distress``, ``status``, ``import-survey`` ... alike, through the console script;
- the CLI lists its commands explicitly: a command module that cannot be imported is an import error of the CLI,
  never a command silently missing;
- the import contracts in pyproject.toml hold (``lint-imports``), and they do catch the shapes they forbid (the
  pipeline importing the CLI: the old ``pipeline -> cmd_writeback`` and ``demo -> cli`` edges).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sync.cli.root as root
from tests.test_cli_exit_codes import deskpulse

REPO = Path(__file__).resolve().parents[1]
#: a secret of the config (a Zendesk API token) that the test makes appear in an error message: the store's
#: file name, which every store error names
TOKEN = "tok-CLICUT-s3cret-4242"
CONFIG = f'[[sources]]\nname = "zd"\nkind = "zendesk"\nemail = "a@b.test"\napi_token = "{TOKEN}"\n' \
    'base_url = "https://acme.zendesk.com"\n'

console_script = pytest.mark.skipif(shutil.which("deskpulse") is None, reason="console script not installed")
lint_imports = pytest.mark.skipif(shutil.which("lint-imports") is None,
                                  reason="import-linter is not installed (python3 -m pip install -e '.[dev]')")

#: one invocation per command that opens the store (each fails on the broken store named after the token)
STORE_COMMANDS = [
    ("status",), ("kpi",), ("kpi", "--format", "json"), ("distress",), ("report", "--out", "r.html"),
    ("digest",), ("writeback",), ("import-survey", "answers.csv", "--kind", "nps"), ("sync",),
    ("daemon", "--once"),
]


@console_script
@pytest.mark.parametrize("args", STORE_COMMANDS, ids=lambda a: "-".join(a))
def test_every_command_masks_configured_secrets_in_its_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Before the cut only ``sync``, ``writeback``, ``digest --post`` and ``daemon`` installed redaction: ``kpi``,
    ``distress``, ``status`` and ``import-survey`` printed the token in this error."""
    config = tmp_path / "deskpulse.toml"
    config.write_text(CONFIG)
    db = tmp_path / f"{TOKEN}.db"
    db.write_bytes(b"this is not an SQLite database, " * 64)
    (tmp_path / "answers.csv").write_text("email,score,date\na@b.test,9,2026-11-02\n")
    out = deskpulse("--config", str(config), "--db", str(db), *args, cwd=tmp_path)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert TOKEN not in out.stdout + out.stderr
    assert "***" in out.stderr, out.stderr
    assert out.stderr.splitlines()[-1].startswith("error: ") and "internal error" not in out.stderr, out.stderr


@console_script
def test_a_secret_in_an_error_raised_before_the_command_loads_its_settings_is_masked(tmp_path: Path) -> None:
    """``kpi --format <token>`` fails before ``kpi`` reads the config; the error printer loads it to mask."""
    config = tmp_path / "deskpulse.toml"
    config.write_text(CONFIG)
    out = deskpulse("--config", str(config), "kpi", "--format", TOKEN, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert TOKEN not in out.stderr and "unknown --format '***'" in out.stderr, out.stderr


@console_script
def test_a_broken_config_is_still_one_line_exit_2(tmp_path: Path) -> None:
    """Settings load lazily, and the error printer's second try at loading them must not change the error."""
    config = tmp_path / "deskpulse.toml"
    config.write_text("[kpi\n")
    for args in (("kpi",), ("status",), ("distress",)):
        out = deskpulse("--config", str(config), *args, cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.splitlines()) == 1 and "not valid TOML" in out.stderr, out.stderr


def test_the_cli_lists_every_command_module_explicitly() -> None:
    names = {c.name or c.callback.__name__.replace("_", "-") for c in root.app.registered_commands}  # type: ignore[union-attr]
    assert names == {"sync", "status", "sim", "demo", "kpi", "import-survey", "distress", "writeback", "digest",
                     "report", "daemon"}
    assert len(root.COMMANDS) == len(root.app.registered_commands)
    assert all(module.__name__.startswith("sync.cli.") for module in root.COMMANDS)


def test_every_command_module_in_the_package_is_in_the_list() -> None:
    """A command module added to ``sync/cli/`` but not to ``COMMANDS`` would be dead code, not a command."""
    support = {"__init__", "__main__", "root", "context", "demo_steps", "fit"}  # fit: table-width helpers
    modules = {p.stem for p in (REPO / "sync" / "cli").glob("*.py")} - support
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in root.COMMANDS}


@pytest.mark.parametrize("module", ["sync.cli.distress", "sync.cli.daemon", "sync.cli.survey"])
def test_a_command_module_that_cannot_be_imported_is_an_import_error(module: str) -> None:
    """The old ``_register_commands`` skipped a command module that raised ModuleNotFoundError for itself (e.g.
    ``sync.cmd_distress`` or ``sync.daemon`` missing): the command was then unknown instead of a broken install."""
    code = f"import sys; sys.modules[{module!r}] = None; import sync.cli; print('imported')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode != 0 and "imported" not in out.stdout
    assert "ModuleNotFoundError" in out.stderr and module in out.stderr, out.stderr


def test_importing_the_pipeline_imports_no_cli() -> None:
    """Every pipeline module imported, none pulls ``sync.cli`` in (the import-time half of the contract)."""
    pipeline = sorted(p.stem for p in (REPO / "sync").glob("*.py") if p.stem != "__init__")
    code = ("import importlib, sys\n"
            f"for name in {pipeline!r}:\n"
            "    importlib.import_module('sync.' + name)\n"
            "print(sorted(m for m in sys.modules if m == 'sync.cli' or m.startswith('sync.cli.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(["lint-imports", "--no-cache"], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=env)


@lint_imports
def test_the_import_contracts_hold() -> None:
    out = _lint(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout


@lint_imports
@pytest.mark.parametrize(("path", "line", "broken"), [
    # a new pipeline module importing a command (the old pipeline -> cmd_writeback edge)
    ("sync/daemon_probe.py", "from sync.cli.writeback import print_plan\n", "the pipeline never imports the CLI"),
    ("connectors/sync_probe.py", "from sync.store import Store\n", "connectors is not allowed to import sync"),
    # appended to the vendor itself (a package since the framework's move, or a module before it)
    ("connectors/zendesk", "import connectors.freshdesk\n",
     "connectors.zendesk is not allowed to import connectors.freshdesk"),
    # cycles: store -> pipeline -> store, and the old kpi_engine parallel -> engine -> parallel
    ("sync/store.py", "import sync.pipeline\n", "No cycles are allowed in sync"),
    ("kpi_engine/parallel.py", "import kpi_engine.engine\n", "No cycles are allowed in kpi_engine"),
])
def test_the_contracts_catch_what_they_forbid(tmp_path: Path, path: str, line: str, broken: str) -> None:
    """On a copy of the packages with one forbidden import added: ``lint-imports`` fails, naming the contract."""
    for name in ("config", "connectors", "kpi_engine", "sync"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    if target.is_dir():
        target = target / "__init__.py"
    elif not target.exists() and target.with_suffix(".py").exists():
        target = target.with_suffix(".py")
    target.write_text((target.read_text() if target.exists() else "") + "\n" + line)
    out = _lint(tmp_path)
    assert out.returncode != 0
    assert broken in " ".join(out.stdout.split()), out.stdout[-3000:]
