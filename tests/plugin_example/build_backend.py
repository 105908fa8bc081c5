"""A minimal in-tree PEP 517 build backend: this example plugin builds with the standard library only.

Why not setuptools: the test run installs the plugin offline with ``--no-build-isolation``, and the
interpreter's setuptools may predate building wheels without the ``wheel`` package. The wheel holds the
``deskette`` package and a ``.dist-info`` whose ``entry_points.txt`` comes from ``[project.entry-points]``.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dist_name(project: dict[str, Any]) -> str:
    return project["name"].replace("-", "_")


def _metadata(project: dict[str, Any]) -> dict[str, str]:
    info = f"{_dist_name(project)}-{project['version']}.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project.get('description', '')}", f"Requires-Python: {project.get('requires-python', '')}"]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    entry_points = ""
    for group, items in project.get("entry-points", {}).items():
        entry_points += f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in items.items()) + "\n"
    return {
        f"{info}/METADATA": "\n".join(lines) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: deskette-build-backend\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
        f"{info}/entry_points.txt": entry_points,
        f"{info}/top_level.txt": "deskette\n",
    }


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    files = _metadata(_project())
    for name, text in files.items():
        path = Path(metadata_directory) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return next(iter(files)).split("/")[0]


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    project = _project()
    files = {str(p.relative_to(ROOT)).replace("\\", "/"): p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "deskette").rglob("*.py"))}
    files.update(_metadata(project))
    wheel = f"{_dist_name(project)}-{project['version']}-py3-none-any.whl"
    record_name = next(n for n in files if n.endswith("/METADATA")).rsplit("/", 1)[0] + "/RECORD"
    record = []
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            data = text.encode("utf-8")
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
            zf.writestr(name, data)
        zf.writestr(record_name, "\n".join([*record, f"{record_name},,"]) + "\n")
    return wheel
