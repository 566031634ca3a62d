"""Fixtures: face_media."""
