"""Celery tasks; each module owns one kind of work."""
