"""Prompt templates, one Markdown file per prompt, read with importlib.resources."""
