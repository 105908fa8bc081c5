"""Talking to helpdesk and chat APIs: HTTP, auth, pagination, rate limits, normalization, write calls."""
