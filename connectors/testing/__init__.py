"""The public connector contract kit: run DESIGN.md's sync contract against any helpdesk plugin.

``ConnectorContract`` (a base test class; ``connectors.testing.contract``) holds the cases; ``ContractSpec``
(``connectors.testing.kit``) is what a plugin declares for them. Names are imported lazily, so a test
package can call ``pytest.register_assert_rewrite("connectors.testing")`` before the first import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConnectorContract": "connectors.testing.contract",
    "ContractSpec": "connectors.testing.kit",
    "Harness": "connectors.testing.kit",
    "harness": "connectors.testing.kit",
    "contract_spec": "connectors.testing.kit",
    "contract_specs": "connectors.testing.kit",
    "contract_world": "connectors.testing.kit",
    "FakeTime": "connectors.testing.clock",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors.testing' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
