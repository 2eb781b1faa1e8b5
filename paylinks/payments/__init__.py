"""What Stripe says was paid: the ledger and the one way Stripe's news is applied (webhooks and
reconcile alike), reconciling from events, and payments made offline.
Imports store, stripe_api, club, billing (replacement links) and the root modules.
"""
