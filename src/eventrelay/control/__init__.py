"""Control-plane operations (validation, secrets, audit, change notification), shared by the
admin API and the CLI. The API layer only maps HTTP onto these."""
