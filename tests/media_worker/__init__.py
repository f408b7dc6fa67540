"""Media worker tests."""
