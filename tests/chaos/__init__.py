"""Chaos suite: the fleet as real processes, broken on purpose, checked after recovery."""
