"""Email: rendering the branded templates (`render`), the transports, outbox folder or SMTP
(`transports`), each parent's email made ready to send and who a blast skips (`prepare`), the
blasts (`blasts`), the send claims in `email_log` so nobody is mailed twice (`claims`), and what a
blast or a coach's resend did (`reports`).
Imports store, club and the root modules.
"""
