"""Fixtures: media."""
