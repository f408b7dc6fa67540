"""The `callfleet` admin command line."""
