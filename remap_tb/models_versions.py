"""Versions of the ``models`` body, so that a dashboard asks only for what changed.

Over 20,000 models the ``models`` body is about 20 MB; a dashboard that polls it while a
model trains would fetch and parse all of it for every epoch of one run. Every body the
plugin answers carries a ``version``; a dashboard that sends it back
(``models?experiment=ID&since=VERSION``) gets only the summaries that changed since and the
runs that left (``http_api.md``). A version the plugin no longer remembers (it keeps the
newest ``KEEP`` per experiment, and none across restarts: each process has its own prefix)
is answered with the whole body, as without ``since``.

A version remembers, per run, the ``serial`` of the parsed run it showed (``RunData``
objects are replaced, never changed, when a run is read again) and which runs carried an
overlay (a stale mark or the queue's status, which change without a new reading).
"""

from __future__ import annotations

import collections
import dataclasses
import secrets
import threading
from typing import Iterable

from remap_tb.reader import RunData

#: versions remembered per experiment
KEEP = 8


@dataclasses.dataclass(frozen=True)
class Version:
    token: str
    serials: dict[str, int]  # run -> serial of the RunData shown
    overlaid: frozenset[str]  # runs whose summary carried an overlay


@dataclasses.dataclass(frozen=True)
class Delta:
    """What changed between a remembered version and now."""

    changed: list[RunData]  # in the order of the group
    removed: list[str]  # runs no longer shown


class ModelsVersions:
    """Thread-safe; one per plugin."""

    def __init__(self, keep: int = KEEP):
        self._keep = keep
        self._prefix = secrets.token_hex(4)
        self._count = 0
        self._lock = threading.Lock()
        # experiment -> (body key -> Version), oldest first
        self._versions: dict[str, collections.OrderedDict] = {}

    def version(self, experiment: str, key: tuple, group: Iterable[RunData], overlaid: Iterable[str]) -> Version:
        """The version of the body ``key`` (a key that changes whenever the body would),
        made and remembered the first time it is asked for."""
        with self._lock:
            versions = self._versions.setdefault(experiment, collections.OrderedDict())
            found = versions.get(key)
            if found is not None:
                versions.move_to_end(key)
                return found
            self._count += 1
            found = Version(f"{self._prefix}.{self._count}", {d.run: d.serial for d in group}, frozenset(overlaid))
            versions[key] = found
            while len(versions) > self._keep:
                versions.popitem(last=False)
            return found

    def remembered(self, experiment: str, token: str) -> Version | None:
        """The version ``token`` of ``experiment``, while it is remembered."""
        with self._lock:
            return next((v for v in self._versions.get(experiment, {}).values() if v.token == token), None)

    def since(self, experiment: str, token: str, group: list[RunData], overlaid: frozenset[str]) -> Delta | None:
        """What changed since the version ``token`` (None when it is not remembered)."""
        old = self.remembered(experiment, token)
        if old is None:
            return None
        seen = old.serials
        changed = [d for d in group
                   if seen.get(d.run) != d.serial or d.run in overlaid or d.run in old.overlaid]
        now = {d.run for d in group}
        return Delta(changed, sorted(run for run in seen if run not in now))
