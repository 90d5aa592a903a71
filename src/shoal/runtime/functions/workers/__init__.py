"""The action workers shoal ships: one per language, each speaking OpenWhisk's /init and /run."""
