"""The ``deskpulse`` command line, a layer over the pipeline that the pipeline never imports.

``sync.cli.root`` holds the Typer app, the root callback and :func:`main` (the console script
``deskpulse = "sync.cli:main"``); every other module here is one command (``register(app)`` adds it), plus
``context`` (what commands share) and ``demo_steps`` (the demo's steps).
"""

from __future__ import annotations

from sync.cli.root import app, main

__all__ = ["app", "main"]
