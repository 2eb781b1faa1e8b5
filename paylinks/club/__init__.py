"""The club as paylinks sees it: tenants, players and lookups, what each parent owes (balances),
and the office's read side (search, player cards, team balances, refunds due).
Imports store, stripe_api, messaging.render's value types and the root modules.
"""
