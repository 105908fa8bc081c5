"""The Zendesk Support simulator: ``sim.py`` (the server's routes), ``export.py`` (incremental exports and
their cursors), ``events.py`` (ticket events and audits), ``lists.py`` (list endpoints), ``render.py``
(the vendor JSON) and ``writes.py`` (ticket updates, tags)."""

from connectors.sim.zendesk.sim import Fault, ZendeskSim, main, zendesk_sim_from_args

__all__ = ["Fault", "ZendeskSim", "main", "zendesk_sim_from_args"]
