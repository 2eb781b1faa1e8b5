"""The demo club: seed data for `make demo` and the tests (three clubs, families, orders).
Imports store and the root modules.
"""
