"""The content-keyed, persistent distance cache."""

import glob
import os

import numpy as np
import pytest

from remap_tb import atomic
from remap_tb.distance_cache import DistanceCache, cache_file


def value(key):
    return float(int(key[1:]))


class Counting:
    """A stand-in distance |a - b| on keys "k<number>", counting calls and pairs."""

    def __init__(self):
        self.calls = []
        self.blocks = []

    def row(self, key, others):
        self.calls.append((key, list(others)))
        return np.array([abs(value(key) - value(o)) for o in others])

    def block(self, keys):
        self.blocks.append(list(keys))
        v = np.array([value(k) for k in keys])
        return np.abs(v[:, None] - v[None, :])

    @property
    def pairs(self):
        return sum(len(o) for _, o in self.calls)


def keys(*numbers):
    return [f"k{n}" for n in numbers]


def expected(ks):
    v = np.array([value(k) for k in ks])
    return np.abs(v[:, None] - v[None, :])


def test_computes_each_pair_once_and_a_new_key_costs_one_row():
    cache, f = DistanceCache(None, "test"), Counting()
    ks = keys(*range(10))
    D = cache.matrix(ks, f.row)
    np.testing.assert_array_equal(D, expected(ks))
    assert D.dtype == np.float32
    assert len(f.calls) == 9 and f.pairs == 45          # upper triangle, n - 1 calls
    f.calls.clear()
    D = cache.matrix(ks + ["k42"], f.row)
    assert f.calls == [("k42", ks)]                      # one row against all the others
    np.testing.assert_array_equal(D, expected(ks + ["k42"]))
    f.calls.clear()
    sub = keys(42, 3, 0)
    np.testing.assert_array_equal(cache.matrix(sub, f.row), expected(sub))
    assert f.calls == []                                 # all known: nothing computed


def test_repeated_keys_share_distances():
    cache, f = DistanceCache(None, "test"), Counting()
    D = cache.matrix(keys(1, 5, 1), f.row)
    np.testing.assert_array_equal(D, [[0, 4, 0], [4, 0, 4], [0, 4, 0]])
    assert f.pairs == 1


def test_block_function_for_a_fresh_set_then_rows_for_additions():
    cache, f = DistanceCache(None, "test"), Counting()
    ks = keys(*range(6))
    np.testing.assert_array_equal(cache.matrix(ks, f.row, f.block), expected(ks))
    assert f.blocks == [ks] and f.calls == []
    more = ks + keys(10, 11, 12)
    np.testing.assert_array_equal(cache.matrix(more, f.row, f.block), expected(more))
    assert f.blocks == [ks, keys(10, 11, 12)]            # the new keys' own block
    assert len(f.calls) == 3 and all(sorted(o) == sorted(ks) for _, o in f.calls)


def test_survives_reload_and_saves_only_when_dirty(tmp_path):
    folder = str(tmp_path / ".remap" / "cache")
    cache, f = DistanceCache(folder, "structural"), Counting()
    assert cache.load_status == "empty"
    assert not cache.save(force=True)                    # nothing to save yet
    ks = keys(*range(8))
    cache.matrix(ks, f.row)
    assert cache.dirty
    assert cache.save(force=True)
    assert not cache.dirty and not cache.save(force=True)
    assert os.path.exists(cache_file(folder, "structural"))

    again, g = DistanceCache(folder, "structural"), Counting()
    assert again.load_status == "loaded" and len(again) == 8
    np.testing.assert_array_equal(again.matrix(ks, g.row), expected(ks))
    assert g.calls == []
    assert again.get("k2", "k7") == 5.0 and again.get("k2", "k99") is None


def test_unforced_saves_are_throttled(tmp_path):
    cache, f = DistanceCache(str(tmp_path), "t", min_save_interval=3600), Counting()
    cache.matrix(keys(1, 2), f.row)
    assert cache.save()                                  # first save is due at once
    cache.matrix(keys(1, 2, 3), f.row)
    assert not cache.save() and cache.dirty              # within the interval
    assert 0 < cache.seconds_until_save() <= 3600
    assert cache.save(force=True)


@pytest.mark.parametrize("garbage", [b"", b"not a zip file at all", b"PK\x03\x04" + b"\x00" * 64])
def test_corrupt_file_is_ignored_and_rebuilt(tmp_path, garbage):
    path = cache_file(str(tmp_path), "posthoc")
    with open(path, "wb") as handle:
        handle.write(garbage)
    cache, f = DistanceCache(str(tmp_path), "posthoc"), Counting()
    assert cache.load_status.startswith("ignored")
    ks = keys(3, 1, 4, 1, 5)
    np.testing.assert_array_equal(cache.matrix(ks, f.row), expected(ks))
    assert cache.save(force=True)
    assert DistanceCache(str(tmp_path), "posthoc").load_status == "loaded"


def test_file_of_another_version_or_kind_is_ignored(tmp_path):
    cache, f = DistanceCache(str(tmp_path), "structural", version="1"), Counting()
    cache.matrix(keys(1, 2, 3), f.row)
    cache.save(force=True)
    assert DistanceCache(str(tmp_path), "structural", version="2").load_status.startswith("ignored")
    os.replace(cache_file(str(tmp_path), "structural"), cache_file(str(tmp_path), "posthoc"))
    assert DistanceCache(str(tmp_path), "posthoc", version="1").load_status.startswith("ignored")


def test_inconsistent_file_is_ignored(tmp_path):
    path = cache_file(str(tmp_path), "t")
    cache = DistanceCache(str(tmp_path), "t")
    meta = np.array(cache._meta())
    np.savez(path, meta=meta, keys=np.array(["a", "b"]), distances=np.array([[0, -1], [-1, 0]], np.float32))
    assert DistanceCache(str(tmp_path), "t").load_status.startswith("ignored")
    with open(path, "wb") as handle:
        np.savez(handle, meta=meta, keys=np.array(["a", "b"]), distances=np.zeros((3, 3), np.float32))
    assert DistanceCache(str(tmp_path), "t").load_status.startswith("ignored")


def test_failed_write_leaves_old_file_and_no_partial_file(tmp_path, monkeypatch):
    folder = str(tmp_path)
    cache, f = DistanceCache(folder, "t"), Counting()
    cache.matrix(keys(1, 2), f.row)
    cache.save(force=True)
    before = open(cache_file(folder, "t"), "rb").read()
    cache.matrix(keys(1, 2, 3), f.row)

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError):
        cache.save(force=True)
    monkeypatch.undo()
    assert open(cache_file(folder, "t"), "rb").read() == before
    assert glob.glob(os.path.join(folder, ".tmp-*")) == []
    assert cache.dirty and cache.save(force=True)        # retried later
    assert len(DistanceCache(folder, "t")) == 3
    assert sorted(os.listdir(folder)) == ["distances-t.npz"]


def test_bad_compute_results_and_arguments_raise():
    cache = DistanceCache(None, "t")
    with pytest.raises(ValueError, match="shape"):
        cache.matrix(keys(1, 2, 3), lambda k, o: np.zeros(1))
    with pytest.raises(ValueError, match="negative"):
        cache.matrix(keys(1, 2), lambda k, o: -np.ones(len(o)))
    assert cache.get("k1", "k2") is None                 # nothing stored from failed calls
    with pytest.raises(ValueError):
        cache.matrix(["k1", ""], Counting().row)
    with pytest.raises(ValueError):
        DistanceCache(None, "Bad Kind!")


def test_format_1_file_still_loads_and_is_rewritten_packed(tmp_path):
    """Caches written before issue 13 hold the full (n, n) float32 matrix; they load as
    they are (no recomputation) and the next save writes the packed lower triangle."""
    import json

    ks = keys(4, 9, 1, 7)
    full = expected(ks).astype(np.float32)
    full[0, 3] = full[3, 0] = np.nan                     # one unknown pair
    meta = json.dumps({"format": "remap-distance-cache", "format_version": 1,
                       "kind": "structural", "version": "1"}, sort_keys=True)
    np.savez(cache_file(str(tmp_path), "structural"), meta=np.array(meta), keys=np.array(ks),
             distances=full)
    cache, f = DistanceCache(str(tmp_path), "structural"), Counting()
    assert cache.load_status == "loaded format 1" and cache.dirty
    assert cache.get("k4", "k9") == 5.0 and cache.get("k4", "k7") is None
    np.testing.assert_array_equal(cache.matrix(ks, f.row), expected(ks))
    assert f.pairs == 1                                   # only the unknown pair computed
    assert cache.save(force=True)
    with np.load(cache_file(str(tmp_path), "structural")) as data:
        assert json.loads(str(data["meta"][()]))["format_version"] == 2
        assert data["lower"].shape == (6,) and "distances" not in data
    again = DistanceCache(str(tmp_path), "structural")
    assert again.load_status == "loaded" and not again.dirty
    np.testing.assert_array_equal(again.matrix(ks, Counting().row), expected(ks))


def test_format_1_file_with_asymmetric_distances_is_ignored(tmp_path):
    import json

    meta = json.dumps({"format": "remap-distance-cache", "format_version": 1,
                       "kind": "t", "version": "1"}, sort_keys=True)
    bad = np.array([[0, 1], [np.nan, 0]], np.float32)
    np.savez(cache_file(str(tmp_path), "t"), meta=np.array(meta), keys=np.array(["a", "b"]), distances=bad)
    assert DistanceCache(str(tmp_path), "t").load_status.startswith("ignored")


def test_memory_is_the_packed_triangle_and_growth_keeps_values():
    cache, f = DistanceCache(None, "t"), Counting()
    ks = keys(*range(300))
    for stop in (10, 11, 50, 200, 300):                  # grows several times
        np.testing.assert_array_equal(cache.matrix(ks[:stop], f.row), expected(ks[:stop]))
    assert f.pairs == 300 * 299 // 2                      # growth recomputed nothing
    assert cache.nbytes <= 1.6 * 4 * 300 * 299 / 2        # ~ half a dense float32 matrix
    assert cache.nbytes < 4 * 300 * 300 * 0.8
    np.testing.assert_array_equal(cache.matrix(keys(299, 0, 150), f.row), expected(keys(299, 0, 150)))
