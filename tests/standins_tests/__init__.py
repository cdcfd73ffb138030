"""Tests for the offline upstream stand-in servers."""
