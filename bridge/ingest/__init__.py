"""The HTTP surface: the provider's webhook, health, readiness and metrics."""
