"""The dispatcher: lead intake, the Celery fleet that admits and places calls, the HTTP API."""
