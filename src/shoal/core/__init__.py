"""Errors, ids, settings and the clock: the pieces every layer shares. Imports nothing of shoal."""
