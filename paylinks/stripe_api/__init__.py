"""Stripe, behind one small interface: `gateway` (the real SDK over HTTP, to Stripe or the local
emulator, and the errors it raises), `keys` (which key a run acts with, its mode), `pacers`
(Stripe's per-account limits), `where` (the account and mode the key acts in, remembered) and
`words` (Stripe's own states as enums). Imports store and paylinks' root modules.
"""
