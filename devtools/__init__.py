"""Developer tooling: embedded services and the `make run` orchestrator. Not imported by the app."""
