"""Use cases: what the API asks for, expressed against the ports in ``shoal.domain.ports``."""
