"""Code every callfleet process shares: settings, enums, database, Redis keys, logging."""
