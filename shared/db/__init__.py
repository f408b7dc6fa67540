"""PostgreSQL access: the ORM models and the session factory."""
