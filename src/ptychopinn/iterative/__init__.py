"""ptychopinn.iterative."""
