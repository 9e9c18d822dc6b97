"""What operators watch: job-scoped log fields and JSON logs (``logs``), backend
health (``health``) and the worker's small HTTP endpoint (``server``)."""
