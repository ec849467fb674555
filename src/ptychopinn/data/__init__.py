"""ptychopinn.data."""
