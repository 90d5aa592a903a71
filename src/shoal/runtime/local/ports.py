"""Picking TCP ports for instances on this host."""

from __future__ import annotations

import socket


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate(preferred: int | None, taken: set[int], host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free (so apps that hard-code 8080 work), else any free port."""
    if preferred and preferred not in taken and port_is_free(preferred, host):
        return preferred
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise OSError("no free TCP port found")
