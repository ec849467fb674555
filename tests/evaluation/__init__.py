"""Tests of ptychopinn.evaluation."""
