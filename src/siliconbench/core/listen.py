"""Whether a server can listen where it is told to, asked before it starts, so a taken port is one line.

gRPC's own failure is a C-core log line and `RuntimeError: Failed to bind`, after the store is opened; and
gRPC binds with SO_REUSEPORT, so a second collector on a port the first one holds would *succeed* and take
half the agents. So a port is taken when something already accepts connections on it (a connect succeeds:
another collector or simulator, whatever its socket options), or when a bind that shares like gRPC's is
refused (a holder that does not share). A socket that is bound with SO_REUSEPORT but not listening holds
the port for its owner (tests keep a collector's port that way across a restart) and is no conflict.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from siliconbench.core.errors import AddressInUse, ConfigError


def split_address(address: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as a host and a port; a ConfigError naming `flag` otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{flag} {address!r} must be HOST:PORT, e.g. 0.0.0.0:50051")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches only this machine: a loopback address or `localhost` (not a
    wildcard, which listens on every interface)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, it may be reached from elsewhere


def ensure_can_listen(host: str, port: int, flag: str) -> None:
    """Raise AddressInUse, naming the address and `flag`, when nothing could listen on host:port now."""
    if port == 0:  # the system picks a free port
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"{flag}: cannot resolve {host!r} ({exc.strerror}); give an address of this host") from None
    for family, kind, proto, _, sockaddr in infos[:1]:
        taken = _accepts_connections(family, sockaddr)
        reason = "the port is in use (another collector or simulator?); stop it or pass another " + flag
        if not taken:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as gRPC binds
                try:
                    probe.bind(sockaddr)
                except OSError as exc:
                    taken = True
                    if exc.errno != errno.EADDRINUSE:
                        reason = f"{exc.strerror}; pass an address of this host to {flag}"
        if taken:
            raise AddressInUse(f"cannot listen on {host or '*'}:{port}: {reason}")


def _accepts_connections(family: int, sockaddr: tuple) -> bool:
    """Whether something listens at `sockaddr` (a wildcard address is asked on loopback)."""
    host, port = sockaddr[0], sockaddr[1]
    if host in ("0.0.0.0", "::", ""):
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(2.0)
        return client.connect_ex((host, port)) == 0
