"""Intercom: everything deskpulse knows about Intercom, in one subpackage.

- ``connector.py``: the regional hosts, the HTTP client (Bearer token, ``Intercom-Version``, 10-second
  rate-limit windows), the stream order, write-back and ``PLUGIN`` (the entry point).
- ``streams.py``: admins and teams lists, the company scroll (scroll contention and restarts) and the
  search-driven contacts/conversations (bookmark, overlap de-duplication) on the shared framework.
- ``mapping.py``: Intercom payloads -> store rows.
"""

from connectors.intercom.connector import API_HOSTS, PLUGIN, IntercomConnector, build_http, check_base_url

__all__ = ["API_HOSTS", "PLUGIN", "IntercomConnector", "build_http", "check_base_url"]
