"""The backfill: plan (pure: what the club owes against the rows paylinks holds), then the
work that makes Stripe match it, one module per step: `extract` (the rows, and the plan made
from them), `price_tiers`, `retire` (stale links), `reserve` (rows committed before their mint),
`mint` (mint, load, relink, fresh links for spent ones); `report` holds what a run did.
Imports store, stripe_api, club and the root modules.
"""
