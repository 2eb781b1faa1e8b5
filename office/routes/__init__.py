"""The office's routes, one module per audience: `login` (logging in and out, the password),
`coach` (search, the player card, resending a player's links, a test email's link preview),
`admin` (the admin's page, the open-items CSV), `blast` (the blast panel, a run's page), `refunds` (money
settled by a person outside Stripe: a refund due resolved, a bill paid offline), `api` (the admin
endpoint for machines, by API token) and `webhook` (Stripe's webhook receiver).

Imports office.deps (who is asking, the page helpers), office.runs, office.security and paylinks;
`refunds` also answers with `coach`'s player card. Flows only inside the routes that run one, so
importing the office does not load Prefect. Never office.app, which imports these.
"""
