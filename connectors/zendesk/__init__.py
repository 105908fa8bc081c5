"""Zendesk Support: everything deskpulse knows about Zendesk, in one subpackage.

- ``connector.py``: auth, the HTTP client settings (export budget, rate-limit headers), the stream order,
  write-back (tags, custom fields) and ``PLUGIN`` (the ``deskpulse.connectors`` entry point).
- ``streams.py``: the stream declarations and Zendesk's quirks around the shared framework
  (``connectors.streams``/``connectors.pagination``): the 504 page shrink, the role book, the CSAT sweep.
- ``mapping.py``: Zendesk payloads -> store rows.
"""

from connectors.zendesk.connector import PLUGIN, BearerAuth, ZendeskConnector, build_http

__all__ = ["PLUGIN", "BearerAuth", "ZendeskConnector", "build_http"]
