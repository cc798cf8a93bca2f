"""Test fixture: an mmsk encoder plugin whose module fails to import."""
