"""Prefect tasks, and where paylinks meets Prefect; the plain library below knows nothing of it.

The tasks: `common` (check the configuration, find the tenants), `backfill`, `email`, `reconcile`,
`reports` (each run's tables as artifacts). What they share: `run_settings` (the settings a run
works with, secrets from Prefect Secret blocks), `retry` (the retry rule of every I/O task),
`artifacts` (artifact keys, publishing tables and pages), `pacing` (Stripe's limits shared by every
worker through Prefect global concurrency limits, and the gateway a task uses). Imports `paylinks`
and Prefect; never `flows`, `office` or `cli`.
"""
