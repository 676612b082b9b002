"""The audit log: one JSON message per decision, refusal or failure, for the site.

Fields: ``event`` ("decision"), ``time`` (ISO 8601 UTC), ``user``, ``uid``,
``host``, ``runtime``, ``reference`` (as the user gave it), ``index_digest``,
``chosen`` (digest or null), ``build`` (the chosen build's label, unique
within its index: docs/compatibility.md, Build labels), ``outcome`` (selected, passthrough, refused,
error), ``reason`` (the cause: the refusal's first line, or the error),
``cache`` (hit, miss, stale, revalidated, waited), ``duration_ms``.
Credentials are never among them (nor the environment, nor argv beyond the
image reference).

Destinations (the site's ``audit_log``):

- ``"syslog"`` (the documented site default): one datagram per message to
  the local socket ``/dev/log`` (glibc's ``_PATH_LOG``; systemd-journald
  listens there too, through ``/run/systemd/journal/dev-log``), in the
  format glibc's syslog(3) sends locally (RFC 3164 section 4.1:
  ``<PRI>Mmm dd hh:mm:ss imagefit[PID]: MESSAGE``), facility
  ``audit_facility`` (default ``authpriv``), severity info (RFC 5424 section
  6.2.1: PRI = facility * 8 + severity). A user can send any text to that
  socket, but not under another uid: the kernel attaches the sender's
  credentials (unix(7) ``SCM_CREDENTIALS``), which journald records as
  ``_UID``/``_PID`` and rsyslog's imuxsock with ``annotate``. Nobody but
  root can remove or rewrite what was logged.
- ``"syslog:/path"``: the same, to another socket (a site's relay; tests).
- a file path: root's only. Appended (``O_APPEND``, one write per line, so
  concurrent shims do not interleave), opened with
  ``O_NOFOLLOW|O_NONBLOCK`` (no link is followed, a FIFO never blocks) and
  used only when fstat shows a regular file with one link, owned by root
  (or, for a non-root run, by the caller) and not writable by group or
  others; root creates it ``O_EXCL`` with mode 0600 set on the descriptor.
  A run that cannot append to it safely (every non-root user of a root-only
  log) logs to syslog instead; root also says so in one line.

Standard library only, on the hot path too: the message is encoded here
(the json module would import ``re``), the datagram is sent through the C
module ``_socket`` (the ``socket`` module would import enum, selectors and
collections: ~5 ms on every cache hit), and the send is bounded (1 s).
A failure to log never stops the command (one line on stderr).
"""

from __future__ import annotations

import os
import time

#: glibc's _PATH_LOG (<paths.h>)
DEV_LOG = "/dev/log"
#: seconds a send may wait for a full syslog socket
SEND_TIMEOUT = 1.0
#: longest reason kept, in characters
MAX_REASON = 2000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _common(fields: dict) -> dict:
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        user = str(os.getuid())
    return {
        "event": "decision",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": user,
        "uid": os.getuid(),
        "host": os.uname().nodename,
        **fields,
    }


def _string(text: str) -> str:
    """`text` as a JSON string literal, exactly as ``json.dumps`` writes it
    (``ensure_ascii``: every character outside printable ASCII as ``\\uXXXX``,
    astral ones as a UTF-16 surrogate pair; RFC 8259 section 7)."""
    out = ['"']
    for c in text:
        o = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 0x20 <= o < 0x7F:
            out.append(c)
        elif c in "\n\r\t\b\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[c])
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            o -= 0x10000
            out.append(f"\\u{0xD800 | (o >> 10):04x}\\u{0xDC00 | (o & 0x3FF):04x}")
    out.append('"')
    return "".join(out)


def encode(data: dict) -> str:
    """One flat dict (str keys; str, int, float, bool or None values) as the
    JSON text ``json.dumps(data, sort_keys=True)`` gives, without the json
    module. Other values are written as their str()."""
    parts = []
    for name in sorted(data):
        value = data[name]
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value) if value - value == 0 else "null"  # no NaN/Infinity
        else:
            text = _string(str(value))
        parts.append(f"{_string(name)}: {text}")
    return "{" + ", ".join(parts) + "}"


def syslog_message(line: str, facility: int, now: float | None = None) -> bytes:
    """The datagram glibc's syslog(3) sends to ``/dev/log`` for `line` at
    severity info (6): ``<PRI>Mmm dd hh:mm:ss imagefit[PID]: line`` (RFC 3164
    section 4.1.1-4.1.3; local time, day space-padded)."""
    t = time.localtime(now)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"<{facility * 8 + 6}>{stamp} imagefit[{os.getpid()}]: {line}".encode()


def send_syslog(path: str, message: bytes) -> None:
    """Send one syslog `message` to the unix socket `path`: a datagram
    (SOCK_DGRAM, as /dev/log is), else, where the socket is a stream one
    (``EPROTOTYPE``), one NUL-terminated record as glibc does; waiting at
    most :data:`SEND_TIMEOUT` seconds for a full socket.

    Raises:
        OSError: no socket there, nobody listening, or the wait ran out.
    """
    import _socket  # the socket module's C core (see the module docstring)

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(SEND_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            import errno

            if exc.errno != errno.EPROTOTYPE:
                raise
            sock.close()
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
            sock.settimeout(SEND_TIMEOUT)
            sock.connect(path)
            data = memoryview(message + b"\0")
            while data:
                data = data[sock.send(data) :]
            return
        sock.send(message)
    finally:
        sock.close()


def open_log(path: str) -> int:
    """A descriptor appending to the audit file `path`, opened safely: never
    through a link (``O_NOFOLLOW``), never blocking (``O_NONBLOCK``: a FIFO
    with no reader fails with ENXIO, open(2)), and kept only when fstat
    shows a regular file with one link, owned by root (or, for a non-root
    caller, by itself) and not writable by group or others. Root creates an
    absent file (``O_EXCL``, mode 0600 set on the descriptor with fchmod).

    Raises:
        OSError: cannot be opened (EACCES for every user but root on a
            root-only log), or is not such a file (one-line strerror).
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    euid = os.geteuid()
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if euid != 0:
            raise
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000:
            why = "not a regular file"
        elif st.st_nlink != 1:
            why = "a file with more than one name"
        elif st.st_uid not in ((0,) if euid == 0 else (0, euid)):
            why = f"owned by uid {st.st_uid}"
        elif st.st_mode & 0o022:
            why = "writable by group or others"
        else:
            return fd
    except OSError:
        os.close(fd)
        raise
    os.close(fd)
    raise OSError(0, why)


def _write_file(path: str, line: str) -> None:
    fd = open_log(path)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def destination_socket(destination: str) -> str | None:
    """The syslog socket `destination` names (``"syslog"``: /dev/log;
    ``"syslog:/path"``), or None for a file."""
    if destination == "syslog":
        return DEV_LOG
    if destination.startswith("syslog:"):
        return destination[len("syslog:") :]
    return None


def record(
    destination: str | None, *, light: bool = True, facility: str = "authpriv", **fields
) -> None:
    """Log one decision, refusal or failure to `destination` (None: no audit
    log; see the module docstring). Never raises: a failure prints one line
    on stderr.

    Args:
        light: kept for callers; every path uses the standard library only.
        facility: the syslog facility name (``shim.config.FACILITIES``).
        fields: runtime, reference, index_digest, chosen, outcome, reason, cache, duration_ms.
    """
    if not destination:
        return
    from shim.config import FACILITIES

    data = _common(fields)
    if isinstance(data.get("reason"), str) and len(data["reason"]) > MAX_REASON:
        data["reason"] = data["reason"][:MAX_REASON] + "..."
    line = encode(data)
    code = FACILITIES.get(facility, FACILITIES["authpriv"])
    sock = destination_socket(destination)
    try:
        if sock is None:
            try:
                _write_file(destination, line)
                return
            except OSError as exc:
                if os.geteuid() == 0:  # root's own log: say why it went to syslog
                    _say(
                        f"cannot append to the audit log {destination} ({_why(exc)}); logging to syslog"
                    )
                sock = DEV_LOG
        send_syslog(sock, syslog_message(line, code))
    except OSError as exc:
        _say(f"cannot write the audit log {sock or destination}: {_why(exc)}")


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _say(message: str) -> None:
    import sys

    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in message)
    print(f"imagefit: {shown}", file=sys.stderr)
