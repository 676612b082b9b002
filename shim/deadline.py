"""One deadline for every byte a registry client sends and receives.

A socket timeout bounds one blocking call, not a request: http.client reads
the status line and each header with ``fp.readline()`` (CPython
``Lib/http/client.py`` ``_read_status``/``parse_headers``), each readline
being as many ``recv_into`` calls as it takes, each with the full socket
timeout again. A registry that sends one byte a second so never trips it (the
issue measured 120 s for dripped headers, 17 s for a dripped status line, with
a 5 s budget); neither do redirect hops (each hop is a new request with a new
timeout), nor a name lookup (``socket.getaddrinfo`` takes no timeout at all).

So a :class:`Watchdog` per client holds the deadline (a ``time.monotonic()``
instant) and every socket the client opens: urllib3 creates each connection's
socket in ``HTTPConnection._new_conn`` (urllib3 2.x ``src/urllib3/
connection.py``), which the connection classes of :func:`pool_classes`
replace with :func:`connect`; the requests adapter installs those classes in
its pool manager (``PoolManager.pool_classes_by_scheme``, urllib3
``poolmanager.py`` ``_new_pool``). At the deadline a ``threading.Timer``
(monotonic, ``threading.Condition.wait``) calls ``shutdown(SHUT_RDWR)`` on
every tracked socket: on Linux this wakes any thread blocked in ``poll``/
``recv`` on it (``recv`` returns 0, an SSL read or handshake sees EOF), so
http.client raises ``RemoteDisconnected``/``IncompleteRead`` and the client
reports the timeout. A socket opened after the deadline is shut at once.
Every connect (one per address) gets the remaining time as its socket
timeout; the name lookup runs on a daemon thread and is waited for only the
remaining time (:func:`resolve`).

Chosen over "set the socket timeout to the remaining time before every
recv": that needs a hook in every layer that reads (http.client's buffered
reader, ssl, urllib3's body reader), and misses reads made by code we do not
control; the watchdog needs one hook, where sockets are made. Measured
(2 s budget, loopback): a dripped status line, dripped headers, a dripped
body, a 1.5 s-per-hop redirect loop, a TLS handshake that never completes and
a token endpoint that hangs all end 2.0-2.1 s after the first request.
"""

from __future__ import annotations

import socket
import threading
import time


class Watchdog:
    """The deadline of one client and the sockets it opened.

    Args:
        at: a ``time.monotonic()`` instant.

    Attributes:
        expired: True once the deadline passed and the sockets were shut.
    """

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        """Seconds left (negative once past)."""
        return self.at - time.monotonic()

    def passed(self) -> bool:
        """True when the deadline has passed (the watchdog fired or is due)."""
        return self.expired or self.remaining() <= 0

    def track(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (now, when it has passed)."""
        with self._lock:
            self._sockets = [s for s in self._sockets if s.fileno() != -1]
            self._sockets.append(sock)
            if self._timer is None and not self.expired:
                self._timer = threading.Timer(max(0.0, self.remaining()), self.expire)
                self._timer.daemon = True  # never holds the interpreter's exit
                self._timer.start()
        if self.passed():
            self.expire()

    def expire(self) -> None:
        """Mark the deadline passed and shut down every tracked socket, so
        that any read or write blocked on one returns at once."""
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected (yet), or closed already

    def cancel(self) -> None:
        """Stop the timer (the client is done)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


def resolve(host: str, port: int, watchdog: Watchdog) -> list:
    """``socket.getaddrinfo(host, port, 0, SOCK_STREAM)`` within the deadline.

    An address literal is converted without a lookup; a name is looked up on
    a daemon thread (getaddrinfo cannot be interrupted) that is abandoned when
    the deadline comes first.

    Raises:
        TimeoutError: the lookup did not finish in time.
        socket.gaierror: the lookup failed.
    """
    host = host.strip("[]")
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        pass
    result: dict = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            result["addresses"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except Exception as exc:  # noqa: BLE001  (handed to the waiting thread)
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=lookup, daemon=True, name="imagefit-dns").start()
    if not done.wait(max(0.0, watchdog.remaining())):
        raise TimeoutError(f"name lookup of {host} timed out")
    if "error" in result:
        raise result["error"]
    return result["addresses"]


def connect(
    address: tuple[str, int],
    watchdog: Watchdog,
    timeout: float | None,
    source_address=None,
    socket_options=None,
) -> socket.socket:
    """A connected TCP socket to `address`, tracked by `watchdog`: the
    addresses of :func:`resolve` tried in order (as urllib3's
    ``util/connection.py`` ``create_connection`` does), each connect bounded
    by `timeout` and by the time left.

    Raises:
        TimeoutError: the deadline passed (lookup or connect).
        socket.gaierror: the name does not resolve.
        OSError: no address accepted the connection (the last error).
    """
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _name, target in resolve(host, port, watchdog):
        left = watchdog.remaining()
        if left <= 0:
            raise TimeoutError(f"connection to {host} timed out")
        sock = socket.socket(family, kind, proto)
        try:
            watchdog.track(sock)
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(left if timeout is None else min(left, timeout))
            if source_address:
                sock.bind(source_address)
            sock.connect(target)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"no address found for {host}")


def pool_classes(watchdog: Watchdog) -> dict:
    """``{"http": pool class, "https": pool class}`` for a urllib3
    ``PoolManager.pool_classes_by_scheme``: urllib3's connection pools whose
    connections open their sockets with :func:`connect` under `watchdog`
    (the exceptions urllib3's own ``_new_conn`` raises, so requests maps
    them as before: ``NameResolutionError``, ``ConnectTimeoutError``,
    ``NewConnectionError``)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    def _new_conn(self) -> socket.socket:
        try:
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
            return connect(
                (self._dns_host, self.port),
                watchdog,
                timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc

    http_conn = type("DeadlineHTTPConnection", (HTTPConnection,), {"_new_conn": _new_conn})
    https_conn = type("DeadlineHTTPSConnection", (HTTPSConnection,), {"_new_conn": _new_conn})
    return {
        "http": type("DeadlineHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("DeadlineHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }
