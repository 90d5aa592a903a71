"""Runtime backends behind ``shoal.domain.ports.Runtime``, chosen by name."""
