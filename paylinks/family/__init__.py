"""The family's side: each parent's own page (no password: an address derived from a secret the
database never holds) and "Pay all" in one Stripe Checkout Session.

secret (where the key the addresses are derived from comes from), tokens (derive, look up,
rotate), page (what a parent sees: every child's bills, owed, processing, paid, refunded, by the
blast's rules), checkout (the chosen bills re-checked, reserved, then one session at Stripe).
Imports club, store, stripe_api, access and the root modules; no Prefect, no office.
"""
