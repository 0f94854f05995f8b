"""Test suite: core tests run without Qt; GUI tests run offscreen with pytest-qt."""
