"""Simulated traffic from personas, for layer-3 tests, benchmarks and demos.

``generate(SimulationConfig(...))`` returns time-ordered user messages in the
ingest format plus the ground truth; ``guardstack simulate`` writes them to a
JSONL file or replays them through a gateway. See docs/simulate.md.
"""

from guardstack.simulate.generator import SimulationConfig, Traffic, generate

__all__ = ["SimulationConfig", "Traffic", "generate"]
