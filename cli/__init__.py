"""The `paylinks` command and the demo: the callers of the flows, at the top of the layers."""
