"""Only the local user can drive the plugin: a ``Host`` header allow-list against DNS rebinding.

The POST rules (``http_util``: a custom header, JSON bodies) stop cross-origin
pages, but a page served from a name that resolves to 127.0.0.1 (DNS rebinding)
is *same-origin* with TensorBoard and could read the queue, enqueue work and
download weights. Browsers always send the name they resolved in ``Host``, so
every plugin route (GET and POST, the bundle included) answers 403 unless
``Host`` names one of:

- ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port);
- the host TensorBoard was started with (``--host``), or this machine's host
  names when it was started with ``--bind_all``;
- a name listed with ``--remap_allowed_hosts a,b``.

A wildcard bind address (``--host 0.0.0.0`` or ``::``) names no host, so a
person who reaches TensorBoard by another name lists it with
``--remap_allowed_hosts``; the 403 says so.
"""

from __future__ import annotations

import re
import socket
from typing import Any, Callable, Iterable

from remap_tb.http_util import error_response

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,252})?$|^[0-9a-f:.]{2,45}$")


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or IPv6 brackets.

    >>> host_name("LocalHost:6006"), host_name("[::1]:6006"), host_name("10.0.0.2")
    ('localhost', '::1', '10.0.0.2')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header  # a bare name, or a bare IPv6 address


def parse_allowed_hosts(text: str | None) -> frozenset[str]:
    """The names of ``--remap_allowed_hosts a,b`` (ValueError for a malformed one)."""
    names = set()
    for token in (text or "").split(","):
        token = token.strip()
        if not token:
            continue
        name = host_name(token)
        if not _NAME.match(name):
            raise ValueError(f"--remap_allowed_hosts: {token[:80]!r} is not a host name or IP address")
        names.add(name)
    return frozenset(names)


def allowed_hosts(flags: Any) -> frozenset[str]:
    """Every host name the plugin answers to, from TensorBoard's flags (see the module docstring)."""
    names = set(LOOPBACK_HOSTS)
    host = host_name(str(getattr(flags, "host", None) or ""))
    if host not in WILDCARD_HOSTS:
        names.add(host)
    if getattr(flags, "bind_all", False):
        names.update(host_name(n) for n in _machine_names())
    names.update(parse_allowed_hosts(getattr(flags, "remap_allowed_hosts", None)))
    return frozenset(n for n in names if n)


def _machine_names() -> Iterable[str]:
    try:
        yield socket.gethostname()
        yield socket.getfqdn()
    except OSError:  # pragma: no cover - no name lookup on this machine
        return


def guard(app: Callable, allowed: frozenset[str]) -> Callable:
    """``app`` behind the ``Host`` allow-list: other hosts get a 403 JSON error that names the flag."""

    def guarded(environ: dict, start_response: Callable) -> Any:
        header = environ.get("HTTP_HOST", "")
        if host_name(header) in allowed:
            return app(environ, start_response)
        shown = header[:100] or "(none)"
        response = error_response(
            403, f"the REMAP plugin answers only to this machine's own names, not to Host {shown!r} "
                 "(a guard against DNS rebinding); if you reach TensorBoard by this name, start it with "
                 f"--remap_allowed_hosts {host_name(header)[:100] or 'NAME'}")
        return response(environ, start_response)

    return guarded
