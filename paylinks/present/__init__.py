"""Tables for people: turns the typed reports of every job into the rows the command line
prints and the flows publish as Prefect artifacts. Words are made here, once, at the edge.

`tables` holds the table and its cells (`Table`, `facts`, `table`, `label`, `money`); then one
module per report: `backfill`, `blast` (the outstanding-balance blast and the coach's resend),
`reconcile`. Imports the reports' types from the other sub-packages (billing, messaging, payments,
club); nothing imports it but the edges.
"""
