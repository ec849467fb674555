"""ptychopinn.evaluation."""
