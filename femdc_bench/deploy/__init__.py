"""deploy phase."""
