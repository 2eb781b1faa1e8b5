"""Stripe, behind one small interface: the gateway (the real SDK over HTTP, to Stripe or the
local emulator), its pacers for Stripe's per-account limits, and the errors it raises.
Imports only paylinks' root modules.
"""
