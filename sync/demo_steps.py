"""The demo's steps after the sync: each shows one capability on the synced store.

Kept apart from ``sync/demo.py`` so each capability adds its own step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Step = Callable[..., dict[str, Any] | None]

STEPS: list[Step] = []
