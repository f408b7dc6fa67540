"""Lead intake: one validation and idempotency core behind the API, the Celery task and the CLI."""
