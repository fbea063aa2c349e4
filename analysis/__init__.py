"""Leliu (勒流) needs-assessment toolkit: from a raw household survey to a staffing plan.

One function per pipeline stage in :mod:`analysis.pipeline` (clean -> weights -> demand -> staffing ->
brief), each backed by the modules that do the work (see README, "Layout", and CONTRIBUTING.md); data
flows one way: instrument -> ingest -> clean -> weights -> indicators/demand -> staffing -> disclosure ->
figures/brief.
"""

__version__ = "0.1.0"
