"""keys commands (to be filled)."""
