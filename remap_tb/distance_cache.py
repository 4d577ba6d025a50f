"""A content-keyed, persistent cache of pairwise distances.

Models are identified here by a *content key* -- ``spec_hash(spec)`` for the structural
(OTMANN) distance, ``predictions_hash(pred)`` for the post-hoc (Hamming) one -- so two
models with the same content share their distances, and a model keeps its distances
across TensorBoard restarts. :meth:`DistanceCache.matrix` returns the full matrix for
any list of keys and computes only the pairs it does not know yet: a new model costs
one new row (one ``compute_row`` call), never a full recomputation.

Storage
-------
In memory: one dense float32 matrix over every key seen, unknown pairs NaN, grown by
25 % when full (a 5,000-key matrix is 100 MB). On disk: ``<folder>/distances-<kind>.npz``
(uncompressed: float32 distances hardly compress), written atomically with
:func:`remap_tb.atomic.atomic_write_bytes`, holding

* ``meta``: a JSON string ``{"format": "remap-distance-cache", "format_version": 1,
  "kind": ..., "version": ...}``;
* ``keys``: 1-D unicode array of the ``n`` keys;
* ``distances``: float32 array (n, n), symmetric, NaN where unknown.

A file that cannot be read, is not this format, or was written for another kind or
version (e.g. after the distance definition changed) is ignored with a warning; the
cache starts empty and the next save replaces the file. Saving is explicit
(:meth:`DistanceCache.save`), happens only when something changed and, unless forced,
at most once per ``min_save_interval`` seconds (longer for big files); the owner (``ProjectionService``'s
worker thread) calls it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
from typing import Callable, Sequence

import numpy as np

from remap_tb.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

FORMAT = "remap-distance-cache"
FORMAT_VERSION = 1

#: compute_row(key, other_keys) -> distances from key to each other key, shape (len(other_keys),)
ComputeRow = Callable[[str, Sequence[str]], np.ndarray]
#: compute_block(keys) -> all pairwise distances among keys, shape (len(keys), len(keys))
ComputeBlock = Callable[[Sequence[str]], np.ndarray]

_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def cache_file(folder: str, kind: str) -> str:
    """The file that holds the cache of ``kind`` in ``folder``."""
    return os.path.join(folder, f"distances-{kind}.npz")


def _check_values(values, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{what} returned shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{what} returned negative or non-finite distances")
    return arr


class DistanceCache:
    """Pairwise distances keyed by content hashes, persisted under ``folder``.

    Parameters
    ----------
    folder : str or None
        Folder of the cache file, normally ``<logdir>/.remap/cache``; None keeps the
        cache in memory only.
    kind : str
        Which distance, e.g. ``"structural"`` or ``"posthoc"``: names the file and is
        checked on load. Lower-case letters, digits, ``_ . -``.
    version : str, default "1"
        Version of the distance definition; a file written under another version is
        ignored. Change it when the distance's values change.
    min_save_interval : float, default 5
        Seconds between two unforced saves.

    Calls are thread-safe (serialised by one lock, held while computing).
    """

    def __init__(self, folder: str | None, kind: str, version: str = "1", min_save_interval: float = 5.0):
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise ValueError(f"kind must match {_KIND_RE.pattern}, got {kind!r}")
        if not isinstance(version, str):
            raise ValueError(f"version must be a string, got {version!r}")
        if not (min_save_interval >= 0):
            raise ValueError(f"min_save_interval must be >= 0, got {min_save_interval!r}")
        self.folder = folder
        self.kind = kind
        self.version = version
        self.min_save_interval = float(min_save_interval)
        self.path = cache_file(folder, kind) if folder is not None else None
        self._lock = threading.RLock()
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._d = np.zeros((0, 0), dtype=np.float32)
        self._dirty = False
        self._last_save = float("-inf")
        self._save_seconds = 0.0
        #: What happened on load: "memory", "empty" (no file), "loaded", or "ignored: <reason>".
        self.load_status = "memory"
        if self.path is not None:
            self._load()

    # -- persistence ------------------------------------------------------------------
    def _meta(self) -> str:
        return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                           "kind": self.kind, "version": self.version}, sort_keys=True)

    def _load(self) -> None:
        if not os.path.exists(self.path):
            self.load_status = "empty"
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = str(data["meta"][()])
                if json.loads(meta) != json.loads(self._meta()):
                    raise ValueError(f"written for {meta}")
                keys = [str(k) for k in data["keys"].tolist()]
                dist = np.array(data["distances"], dtype=np.float32)
            n = len(keys)
            if dist.shape != (n, n):
                raise ValueError(f"{n} keys but distances of shape {dist.shape}")
            if len(set(keys)) != n:
                raise ValueError("duplicate keys")
            known = ~np.isnan(dist)
            if np.any(dist[known] < 0) or np.any(np.isinf(dist)) or not np.array_equal(known, known.T):
                raise ValueError("negative, infinite or asymmetric distances")
        except Exception as exc:  # corrupt, truncated, foreign: start afresh
            self.load_status = f"ignored: {type(exc).__name__}: {exc}"
            logger.warning("ignoring distance cache %s (%s); it will be rebuilt", self.path, self.load_status)
            return
        np.fill_diagonal(dist, 0.0)
        self._keys = keys
        self._index = {k: i for i, k in enumerate(keys)}
        self._d = dist
        self.load_status = "loaded"

    def save(self, force: bool = False) -> bool:
        """Write the cache file if anything changed since the last save.

        Unless ``force``, does nothing within ``max(min_save_interval, 20 * w)``
        seconds of the last save, ``w`` being how long that save took (so writing a
        large cache takes at most ~5 % of the time). Returns True when a file was
        written. A memory-only cache never writes.
        """
        with self._lock:
            if self.path is None or not self._dirty:
                return False
            now = time.monotonic()
            if not force and now - self._last_save < self._interval():
                return False
            n = len(self._keys)
            buf = io.BytesIO()
            np.savez(buf, meta=np.array(self._meta()), keys=np.array(self._keys, dtype=str).reshape(n),
                     distances=self._d[:n, :n])
            atomic_write_bytes(self.path, buf.getbuffer())
            self._dirty = False
            self._last_save = time.monotonic()
            self._save_seconds = self._last_save - now
            return True

    def _interval(self) -> float:
        # Keep disk time under ~5 %: a 5,000-key file (100 MB) waits 20x its write time.
        return max(self.min_save_interval, 20 * self._save_seconds)

    @property
    def dirty(self) -> bool:
        """True when the cache holds distances not yet saved."""
        return self._dirty

    def seconds_until_save(self) -> float | None:
        """Seconds until an unforced :meth:`save` would write; None if nothing to save."""
        if self.path is None or not self._dirty:
            return None
        return max(0.0, self._last_save + self._interval() - time.monotonic())

    # -- lookup -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def get(self, key_a: str, key_b: str) -> float | None:
        """The cached distance between two keys, or None if unknown."""
        with self._lock:
            if key_a == key_b and key_a in self._index:
                return 0.0
            i, j = self._index.get(key_a), self._index.get(key_b)
            if i is None or j is None or np.isnan(self._d[i, j]):
                return None
            return float(self._d[i, j])

    def _add_keys(self, new_keys: list[str]) -> None:
        n = len(self._keys)
        need = n + len(new_keys)
        if need > self._d.shape[0]:
            cap = max(need, int(self._d.shape[0] * 1.25), 16)
            grown = np.full((cap, cap), np.nan, dtype=np.float32)
            grown[:n, :n] = self._d[:n, :n]
            self._d = grown
        for k in new_keys:
            self._index[k] = len(self._keys)
            self._keys.append(k)
            self._d[self._index[k], self._index[k]] = 0.0

    def _store(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        self._d[np.ix_(rows, cols)] = values
        self._d[np.ix_(cols, rows)] = values.T
        self._dirty = True

    def matrix(self, keys: Sequence[str], compute_row: ComputeRow,
               compute_block: ComputeBlock | None = None) -> np.ndarray:
        """The (n, n) distance matrix of ``keys``, computing only unknown pairs.

        Unknown pairs are filled greedily: the key with the most unknown partners is
        computed first with one ``compute_row(key, partners)`` call, and so on, so a
        single new key costs exactly one call against all the others and a brand-new
        set of n keys costs n - 1 calls (upper triangle). If ``compute_block`` is given
        and at least two keys have no known pair at all, their block is computed with
        one ``compute_block(those_keys)`` call first (use it when a matrix routine is
        faster than rows, e.g. ``hamming_matrix``), then their rows against the others.

        Parameters
        ----------
        keys : sequence of str, length n
            Content keys; repeats are allowed (models with equal content) and get
            distance 0 to each other.
        compute_row : callable (key, other_keys) -> array of shape (len(other_keys),)
        compute_block : callable (keys) -> array of shape (len(keys), len(keys)), optional

        Returns
        -------
        np.ndarray, float32, shape (n, n)
            Symmetric with zero diagonal; a fresh array.

        Raises
        ------
        ValueError
            If a key is not a non-empty string, or a compute function returns the wrong
            shape or negative or non-finite values (nothing from that call is stored).
        """
        keys = list(keys)
        for k in keys:
            if not isinstance(k, str) or not k:
                raise ValueError(f"keys must be non-empty strings, got {k!r}")
        with self._lock:
            uniq = list(dict.fromkeys(keys))
            fresh = [k for k in uniq if k not in self._index]
            if fresh:
                self._add_keys(fresh)
            idx = np.array([self._index[k] for k in uniq], dtype=np.intp)
            unknown = np.isnan(self._d[np.ix_(idx, idx)])
            counts = unknown.sum(axis=1)
            u = len(uniq)
            if compute_block is not None:
                lonely = np.flatnonzero(counts == u - 1) if u > 2 else np.arange(0)
                if len(lonely) >= 2:
                    block = _check_values(compute_block([uniq[i] for i in lonely]),
                                          (len(lonely), len(lonely)), "compute_block")
                    block = (block + block.T) / 2
                    np.fill_diagonal(block, 0.0)
                    self._store(idx[lonely], idx[lonely], block.astype(np.float32))
                    unknown[np.ix_(lonely, lonely)] = False
                    counts = unknown.sum(axis=1)
            while u and counts.max() > 0:
                i = int(np.argmax(counts))
                partners = np.flatnonzero(unknown[i])
                row = _check_values(compute_row(uniq[i], [uniq[j] for j in partners]),
                                    (len(partners),), "compute_row")
                self._store(idx[i:i + 1], idx[partners], row[None, :].astype(np.float32))
                unknown[i, partners] = False
                unknown[partners, i] = False
                counts[i] = 0
                counts[partners] -= 1
            sub = self._d[np.ix_(idx, idx)]
            if len(uniq) == len(keys):
                return sub
            pos = {k: p for p, k in enumerate(uniq)}
            inv = np.array([pos[k] for k in keys], dtype=np.intp)
            return sub[np.ix_(inv, inv)]
