"""The run-time half of each workflow: State, verb nodes and graph builder, one module per workflow.

These modules import LangGraph and the agents (and through them the provider SDKs); the
server imports them when the first run needs them, not at start-up (``workflows.base``).
"""
