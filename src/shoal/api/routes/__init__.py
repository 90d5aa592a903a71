"""Route handlers, one module per resource, named after DigitalOcean's operation ids."""
