"""ptychopinn.physics."""
