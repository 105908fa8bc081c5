"""The public connector contract kit (``connectors.testing``), run for every installed connector plugin.

The cases live in ``connectors.testing.contract.ConnectorContract``; here they are parametrized over the
contract specs of the plugins discovered through the ``deskpulse.connectors`` entry points: the built-in
three, and the example plugin ``tests/plugin_example`` that the test session installs (it is registered
only through its own entry point, see tests/plugin_install.py).
"""

from __future__ import annotations

import pytest

from connectors.testing import ConnectorContract, ContractSpec, contract_specs

SPECS = contract_specs()


def test_the_contract_runs_for_every_installed_plugin_the_example_included() -> None:
    assert {spec.kind for spec in SPECS} == {"zendesk", "freshdesk", "intercom", "deskette"}


class TestContract(ConnectorContract):
    @pytest.fixture(params=SPECS, ids=str)
    def desk(self, request: pytest.FixtureRequest) -> ContractSpec:
        return request.param
