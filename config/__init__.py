"""Configuration: the Settings model, its loader, and the root of deskpulse's exception tree."""
