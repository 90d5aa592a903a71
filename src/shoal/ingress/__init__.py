"""The ingress: the listener every request to an app goes through."""
