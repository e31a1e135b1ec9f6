"""A socket guard: every attempt to reach a non-loopback address is refused and recorded with its caller.

Installed first thing in a child process (``python -c "import netguard; netguard.install(); ..."``), so that
import-time look-ups count too. Libraries often catch the error and fall back quietly (tldextract does), so
attempts are recorded, not only refused: :func:`attempts` lists them, and :func:`report` prints them as JSON on
exit for the parent test to read.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import socket
import sys
import traceback

_attempts: list[dict[str, str]] = []
_real = {"connect": socket.socket.connect, "connect_ex": socket.socket.connect_ex,
         "getaddrinfo": socket.getaddrinfo, "create_connection": socket.create_connection}
MARK = "NETGUARD-ATTEMPTS:"


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    host = str(host).strip("[]")
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _caller() -> str:
    """The innermost frames outside this file and the socket machinery: who tried to connect."""
    plumbing = ("netguard.py", "socket.py", "selectors.py", "/urllib3/", "/requests/", "/http/client.py",
                "/httpx/", "/httpcore/", "/aiohttp/", "/urllib/request.py", "/ssl.py")
    frames = [f for f in traceback.extract_stack()[:-2] if not any(p in f.filename or f.filename.endswith(p)
                                                                   for p in plumbing)]
    return " <- ".join(f"{os.path.relpath(f.filename) if 'site-packages' not in f.filename else f.filename.split('site-packages/')[-1]}"
                       f":{f.lineno} in {f.name}" for f in reversed(frames[-4:]))


def _refuse(what: str, host: object) -> None:
    _attempts.append({"what": what, "host": str(host), "caller": _caller()})
    raise OSError(f"network access refused by the test's socket guard: {what} {host}")


def _host_of(address: object) -> object:
    return address[0] if isinstance(address, tuple) and address else None


def install() -> None:
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_host_of(address)):
            _refuse("connect", _host_of(address))
        return _real["connect"](self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_host_of(address)):
            _refuse("connect_ex", _host_of(address))
        return _real["connect_ex"](self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            _refuse("getaddrinfo", host)
        return _real["getaddrinfo"](host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    atexit.register(report)


def attempts() -> list[dict[str, str]]:
    return list(_attempts)


def report() -> None:
    sys.stdout.write(f"\n{MARK}{json.dumps(_attempts)}\n")
    sys.stdout.flush()


def read_report(stdout: str) -> list[dict[str, str]]:
    """The attempts a child process printed (``None`` if it never got to print them)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    return None  # type: ignore[return-value]
