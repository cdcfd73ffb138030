"""What a report does with a claim its sources do not support: one name for request models and the verifier.

Its own module so that a workflow's request model can name it without importing
``agents.citations``, whose regular expressions compile at import (~10 ms of a server's start-up,
which loads every workflow's request model and none of the verifier).
"""

from typing import Literal

__all__ = ["UnsupportedPolicy"]

#: ``flag``: keep a sentence left without a citation (and list it); ``drop``: remove it (and list it).
UnsupportedPolicy = Literal["flag", "drop"]
