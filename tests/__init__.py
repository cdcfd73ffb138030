"""Test suite for agentflow."""
