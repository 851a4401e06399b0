"""Whether a server can listen where it is told to, asked before it starts, so a taken port is one line.

gRPC's own failure is a C-core log line and `RuntimeError: Failed to bind`, after the store is opened; and
gRPC binds with SO_REUSEPORT, so a second collector on a port the first one holds would *succeed* and take
half the agents. A plain bind without SO_REUSEPORT fails in both cases, which is what a user means by
"port in use".
"""

from __future__ import annotations

import errno
import socket

from siliconbench.core.errors import AddressInUse, ConfigError


def split_address(address: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as a host and a port; a ConfigError naming `flag` otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} {address!r} must be HOST:PORT, e.g. 0.0.0.0:50051")
    return host.strip("[]"), int(port)


def ensure_can_listen(host: str, port: int, flag: str) -> None:
    """Raise AddressInUse, naming the address and `flag`, when nothing could listen on host:port now."""
    if port == 0:  # the system picks a free port
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{flag}: cannot resolve {host!r} ({exc.strerror}); give an address of this host") from None
    for family, kind, proto, _, sockaddr in infos[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                taken = exc.errno == errno.EADDRINUSE
                raise AddressInUse(
                    f"cannot listen on {host or '*'}:{port}: "
                    + ("the port is in use (another collector or simulator?); stop it or pass another " + flag
                       if taken else f"{exc.strerror}; pass an address of this host to {flag}")) from None
