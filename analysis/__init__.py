"""Leliu (勒流) needs-assessment toolkit: from a raw household survey to a staffing plan.

One module per pipeline stage (see README, "Layout"); data flows one way:
instrument -> ingest -> clean -> weights -> indicators/demand -> staffing -> disclosure -> figures.
"""

__version__ = "0.1.0"
