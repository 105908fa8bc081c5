"""How a connector package runs deskpulse's public contract kit against its own simulator: one class.

``deskpulse_engine`` (the real sync engine) comes from deskpulse's pytest plugin ``deskpulse_contract``;
the cases find this package's plugin by kind among the installed ``deskpulse.connectors`` entry points.
"""

from __future__ import annotations

from connectors.testing import ConnectorContract


class TestDesketteContract(ConnectorContract):
    kind = "deskette"
