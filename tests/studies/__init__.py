"""Tests of ptychopinn.studies."""
