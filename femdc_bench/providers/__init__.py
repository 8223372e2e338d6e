"""providers phase."""
