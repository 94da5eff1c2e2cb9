"""expiry commands (to be filled)."""
