"""Tables for people: turns the typed reports of every job into the rows the command line
prints and the flows publish as Prefect artifacts. Words are made here, once, at the edge.
Imports the reports' types from the other sub-packages; nothing imports it but the edges.
"""
