"""ptychopinn.models."""
