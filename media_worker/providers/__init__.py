"""Offline and real STT/LLM/TTS providers as pipecat services; `factory` builds them by name."""
