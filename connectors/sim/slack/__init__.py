"""The Slack simulator (incoming webhook, chat.postMessage, conversations.history) in ``sim.py``."""

from connectors.sim.slack.sim import MAX_CUMULATIVE, SlackSim, cumulative_size, validate_blocks

__all__ = ["MAX_CUMULATIVE", "SlackSim", "cumulative_size", "validate_blocks"]
