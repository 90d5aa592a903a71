"""DigitalOcean Functions: the project a functions component holds and the web action contract (pure)."""
