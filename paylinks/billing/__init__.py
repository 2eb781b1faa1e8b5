"""The backfill: plan (pure: what the club owes against the rows paylinks holds), then the
work that makes Stripe match it: price tiers, retiring stale links, reserving, minting, loading.
Imports store, stripe_api, club and the root modules.
"""
