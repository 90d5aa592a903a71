"""shoal: a self-hosted application platform that speaks the DigitalOcean Apps API."""

__version__ = "0.1.0"
