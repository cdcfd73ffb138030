"""Prompts of the planner workflow: plan, write, synthesize."""
