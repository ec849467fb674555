"""ptychopinn.studies."""
