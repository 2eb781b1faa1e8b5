"""What Stripe says was paid. `news` reads Stripe's events as plain facts (pure); `transitions`
decides how a bill's status moves on each fact (pure); `ledger` applies facts to the payments
ledger and the bills, one way for webhooks and reconcile alike; `refunds` is the one resolver of
money owed back; `reconcile` reads each account's events; `offline` records payments made outside
Stripe. Imports store, stripe_api, club, billing (replacement links) and the root modules.
"""
