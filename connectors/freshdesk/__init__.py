"""Freshdesk v2: everything deskpulse knows about Freshdesk, in one subpackage.

- ``connector.py``: auth (API key as Basic-auth user), the HTTP client settings (rate-limit headers, the
  plan's Tickets List sub-limit), the stream order, write-back and ``PLUGIN`` (the entry point).
- ``streams.py``: the Link-header listings (full and since-filtered) on the shared framework.
- ``tickets.py``: the ticket streams' quirk: keyset paging over ``updated_since`` (the 300-page cap restart)
  with conversations fetched in the same page.
- ``mapping.py``: Freshdesk payloads -> store rows.
"""

from connectors.freshdesk.connector import PLUGIN, FreshdeskConnector, build_http

__all__ = ["PLUGIN", "FreshdeskConnector", "build_http"]
