"""Layer 3: offline analysis across users and sessions.

``guardstack ingest`` loads conversation logs into the event store;
``guardstack analyze`` reads the store and writes findings and review cases
back: per-user risk over time, decomposition chains, crisis trajectories,
coordinated accounts and a privacy-preserving topic map. See docs/offline.md.
"""

from guardstack.offline.analysis import AnalysisResult, analyze
from guardstack.offline.settings import AnalysisSettings

__all__ = ["AnalysisResult", "AnalysisSettings", "analyze"]
