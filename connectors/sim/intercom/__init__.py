"""The Intercom simulator: ``sim.py`` (the server's routes), ``directory.py`` (contacts, companies and
their scroll), ``search.py`` (the search index, its date rules and lag) and ``render.py`` (the vendor JSON)."""

from connectors.sim.intercom.sim import IntercomSim

__all__ = ["IntercomSim"]
