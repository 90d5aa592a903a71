"""Pure domain objects and the ports (Protocols) the engine needs. No I/O."""
