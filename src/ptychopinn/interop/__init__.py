"""ptychopinn.interop."""
