"""Offline speech synthesis shared by the media worker and the simulator (espeak-ng)."""
