"""wan phase."""
