"""The ``local`` runtime: fetches, builds and runs components as processes on this machine."""
