"""The one fake clock of the test suite: time moves only when something sleeps or a test moves it.

It is the public contract kit's (``connectors.testing.clock``), so plugin packages and deskpulse's own tests
share one implementation.
"""

from __future__ import annotations

from connectors.testing.clock import FakeTime

__all__ = ["FakeTime"]
