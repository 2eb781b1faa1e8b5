"""Who may do what in the club office: people, their roles per tenant, API tokens (hashed),
login throttling, and the audit log of every state-changing action.
Imports store, club.tenants and the root modules.
"""
