"""The database: the tables paylinks reads and writes (the club's contract and paylinks' own),
the engine, the named SQL queries under sql/queries, and the alembic migrations' helpers.
Imports only paylinks' root modules (errors, settings, vocabulary).
"""
