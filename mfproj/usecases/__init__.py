"""The use-cases, written once for every backend: a session and its selection, planning, the transaction
that applies a plan, deploy, delete, unlock, trigger and wait, and runs. They work through the backend
protocol (`mfproj.backends.base`) and the registry; they never import the CLI or a backend module."""
