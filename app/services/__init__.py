"""Orchestration shared by routes, API, CLI and tasks: database + storage + enqueue. The only place that commits."""
