"""A content-keyed, persistent cache of pairwise distances.

Models are identified here by a *content key* -- ``spec_hash(spec)`` for the structural
(OTMANN) distance, ``predictions_hash(pred)`` for the post-hoc (Hamming) one -- so two
models with the same content share their distances, and a model keeps its distances
across TensorBoard restarts. :meth:`DistanceCache.matrix` returns the full matrix for
any list of keys and computes only the pairs it does not know yet: a new model costs
one new row (one ``compute_row`` call), never a full recomputation.

Storage
-------
In memory: the strict lower triangle of the symmetric matrix over every key seen,
packed row by row in one float32 vector (pair ``(i, j)``, ``i > j``, at
``i (i - 1) / 2 + j``), unknown pairs NaN. A new key appends its row, so growth is an
append (capacity +25 % when full); half the memory of a dense matrix (2,000 keys:
8 MB; the full 2,000 x 2,000 float32 matrix was 16 MB, and 5,000 keys 100 MB). The
service uses this cache only for maps up to ``projection.EXACT_MAX`` distinct models;
larger maps keep distances to landmarks only (``remap_tb.landmark_mds``).
On disk: ``<folder>/distances-<kind>.npz`` (uncompressed: float32 distances hardly
compress), written atomically with :func:`remap_tb.atomic.atomic_write_bytes`, holding

* ``meta``: a JSON string ``{"format": "remap-distance-cache", "format_version": 2,
  "kind": ..., "version": ...}``;
* ``keys``: 1-D unicode array of the ``n`` keys;
* ``lower``: float32 array (n (n - 1) / 2,), the packed lower triangle, NaN where unknown.

Format 1 files (``distances``: the full float32 (n, n) matrix) still load: their lower
triangle is taken after the same checks as before (symmetric where known), and the next
save writes format 2. Why not float16: unnormalised OTMANN distances of the sampler's
specs reach 1e5, past float16's largest value (65,504), and the surrogate reads these
distances too; the exact path's matrices are small enough in float32.

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
import math
import os
import re
import threading
import time
from typing import Callable, Sequence

import numpy as np

from remap_tb.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)

FORMAT = "remap-distance-cache"
FORMAT_VERSION = 2
#: Older formats that still load (format 1: the full (n, n) matrix).
READABLE_FORMAT_VERSIONS = (1, 2)

#: compute_row(key, other_keys) -> distances from key to each other key, shape (len(other_keys),)
ComputeRow = Callable[[str, Sequence[str]], np.ndarray]
#: compute_block(keys) -> all pairwise distances among keys, shape (len(keys), len(keys))
ComputeBlock = Callable[[Sequence[str]], np.ndarray]

_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def cache_file(folder: str, kind: str) -> str:
    """The file that holds the cache of ``kind`` in ``folder``."""
    return os.path.join(folder, f"distances-{kind}.npz")


def tri_index(i, j) -> np.ndarray:
    r"""Position of the pair (i, j), i != j, in the packed strict lower triangle:
    :math:`p = a (a - 1) / 2 + b` with :math:`a = \max(i, j)`, :math:`b = \min(i, j)`.

    >>> tri_index(np.array([1, 2, 2, 0]), np.array([0, 0, 1, 3])).tolist()
    [0, 1, 2, 3]
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    a, b = np.maximum(i, j), np.minimum(i, j)
    return a * (a - 1) // 2 + b


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
        self._lower = np.zeros(0, dtype=np.float32)   # packed strict lower triangle, capacity >= n(n-1)/2
        self._dirty = False
        self._last_save = float("-inf")
        self._save_seconds = 0.0
        #: What happened on load: "memory", "empty" (no file), "loaded", or "ignored: <reason>".
        self.load_status = "memory"
        if self.path is not None:
            self._load()

    # -- persistence ------------------------------------------------------------------
    def _meta(self, format_version: int = FORMAT_VERSION) -> str:
        return json.dumps({"format": FORMAT, "format_version": format_version,
                           "kind": self.kind, "version": self.version}, sort_keys=True)

    def _load(self) -> None:
        if not os.path.exists(self.path):
            self.load_status = "empty"
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = str(data["meta"][()])
                written = json.loads(meta)
                fv = written.get("format_version") if isinstance(written, dict) else None
                if fv not in READABLE_FORMAT_VERSIONS or written != json.loads(self._meta(fv)):
                    raise ValueError(f"written for {meta}")
                keys = [str(k) for k in data["keys"].tolist()]
                n = len(keys)
                if fv == 1:
                    dist = np.array(data["distances"], dtype=np.float32)
                    if dist.shape != (n, n):
                        raise ValueError(f"{n} keys but distances of shape {dist.shape}")
                    known = ~np.isnan(dist)
                    if np.any(dist[known] < 0) or np.any(np.isinf(dist)) or not np.array_equal(known, known.T):
                        raise ValueError("negative, infinite or asymmetric distances")
                    lower = dist[np.tril_indices(n, -1)].astype(np.float32)
                else:
                    lower = np.array(data["lower"], dtype=np.float32).reshape(-1)
                    if lower.shape != (n * (n - 1) // 2,):
                        raise ValueError(f"{n} keys but {lower.shape[0]} packed distances")
                    known = ~np.isnan(lower)
                    if np.any(lower[known] < 0) or np.any(np.isinf(lower)):
                        raise ValueError("negative or infinite distances")
            if len(set(keys)) != n:
                raise ValueError("duplicate keys")
        except Exception as exc:  # corrupt, truncated, foreign: start afresh
            self.load_status = f"ignored: {type(exc).__name__}: {exc}"
            logger.warning("ignoring distance cache %s (%s); it will be rebuilt", self.path, self.load_status)
            return
        self._keys = keys
        self._index = {k: i for i, k in enumerate(keys)}
        self._lower = lower
        self._dirty = fv != FORMAT_VERSION          # rewrite an old format at the next save
        self.load_status = "loaded" if fv == FORMAT_VERSION else f"loaded format {fv}"

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
                     lower=self._lower[:n * (n - 1) // 2])
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

    @property
    def nbytes(self) -> int:
        """Bytes held by the distances (the packed triangle's capacity)."""
        return int(self._lower.nbytes)

    def get(self, key_a: str, key_b: str) -> float | None:
        """The cached distance between two keys, or None if unknown."""
        with self._lock:
            if key_a == key_b and key_a in self._index:
                return 0.0
            i, j = self._index.get(key_a), self._index.get(key_b)
            if i is None or j is None:
                return None
            value = self._lower[int(tri_index(i, j))]
            return None if np.isnan(value) else float(value)

    def _add_keys(self, new_keys: list[str]) -> None:
        n = len(self._keys)
        need = n + len(new_keys)
        if need * (need - 1) // 2 > self._lower.shape[0]:
            cap = max(need, int(math.isqrt(2 * self._lower.shape[0]) * 1.25), 16)
            grown = np.full(cap * (cap - 1) // 2, np.nan, dtype=np.float32)
            used = n * (n - 1) // 2
            grown[:used] = self._lower[:used]
            self._lower = grown
        for k in new_keys:
            self._index[k] = len(self._keys)
            self._keys.append(k)

    def _submatrix(self, idx: np.ndarray) -> np.ndarray:
        """The (u, u) float32 matrix of the cache indices ``idx`` (NaN unknown, 0 diagonal),
        gathered in row blocks so that the index temporaries stay small."""
        u = len(idx)
        out = np.empty((u, u), dtype=np.float32)
        block = max(1, (1 << 20) // max(u, 1))
        for s in range(0, u, block):
            rows = idx[s:s + block]
            pos = tri_index(rows[:, None], idx[None, :])
            same = rows[:, None] == idx[None, :]
            pos[same] = 0
            out[s:s + block] = self._lower[pos] if len(self._lower) else np.nan
            out[s:s + block][same] = 0.0
        return out

    def _store(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        r, c = np.meshgrid(rows, cols, indexing="ij")
        off = r != c
        self._lower[tri_index(r[off], c[off])] = values[off]
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
            idx = np.array([self._index[k] for k in uniq], dtype=np.int64)
            sub = self._submatrix(idx)
            unknown = np.isnan(sub)
            computed = False
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
                    computed = True
            while u and counts.max() > 0:
                i = int(np.argmax(counts))
                partners = np.flatnonzero(unknown[i])
                row = _check_values(compute_row(uniq[i], [uniq[j] for j in partners]),
                                    (len(partners),), "compute_row")
                self._store(idx[i:i + 1], idx[partners], row[None, :].astype(np.float32))
                unknown[i, partners] = False
                unknown[partners, i] = False
                computed = True
                counts[i] = 0
                counts[partners] -= 1
            if computed:
                sub = self._submatrix(idx)
            if len(uniq) == len(keys):
                return sub
            pos = {k: p for p, k in enumerate(uniq)}
            inv = np.array([pos[k] for k in keys], dtype=np.intp)
            return sub[np.ix_(inv, inv)]
