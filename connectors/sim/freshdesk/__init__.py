"""The Freshdesk v2 simulator: ``sim.py`` (the server's routes), ``index.py`` (ticket listing, filters and
page caps) and ``render.py`` (the vendor JSON)."""

from connectors.sim.freshdesk.sim import FreshdeskSim

__all__ = ["FreshdeskSim"]
