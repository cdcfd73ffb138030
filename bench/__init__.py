"""Benchmarks of agentflow as deployed: real server and stand-in processes, a separate load generator.

``python -m bench`` (``make bench``) prints the B1-B7 table and writes ``bench/results/latest.json``;
``--quick`` is the reduced version. See ``bench/README.md`` for how to read the table.
"""

__all__: list[str] = []
