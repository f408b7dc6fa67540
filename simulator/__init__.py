"""A local stand-in for Twilio: REST, Media Streams and signed callbacks (demo and tests)."""

# How to aim the real twilio SDK at it: see `simulator.sdk`. Admin endpoints: `simulator.rest`.
from simulator.server import SimulatorServer, ThreadedSimulator
from simulator.settings import SimulatorSettings

__all__ = ["SimulatorServer", "SimulatorSettings", "ThreadedSimulator"]
