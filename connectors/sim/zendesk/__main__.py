"""``python -m connectors.sim.zendesk --port P --tickets N --seed S``: serve until Ctrl-C."""

from connectors.sim.zendesk.sim import main

main()
