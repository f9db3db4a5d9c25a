"""Token core (placeholder, filled by issue 2)."""
