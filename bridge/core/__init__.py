"""The pure core: the provider's events, the call fold, and the planning decisions.

Nothing here does I/O or imports the store, the chat clients, rendering or the HTTP stack
(enforced by import-linter contracts in ``pyproject.toml``).
"""
