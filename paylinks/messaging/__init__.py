"""Email: rendering the branded templates, the transports (outbox folder or SMTP), and the
outstanding-balance blast and resend with their claims so nobody is mailed twice.
Imports store, club and the root modules.
"""
