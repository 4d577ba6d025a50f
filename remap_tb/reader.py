"""Read remap runs through TensorBoard's data provider, with a per-run cache.

Everything the plugin knows about trained models comes from here, and only
through ``context.data_provider`` (``list_runs``, ``list_tensors`` /
``read_tensors`` with plugin ``remap``, ``list_scalars`` / ``read_scalars``
with plugin ``scalars``). That works alike with the Python multiplexer and
the Rust data server (``--load_fast``); see ``_tensor_bytes`` and
``_tensor_array`` for the value shapes each one returns.

A run is parsed once and cached under a key made of its remap series'
``(tag, max_step, max_wall_time)`` (the trainer writes a remap record after each
epoch's scalars, so scalars need no key of their own): a request re-reads only
the runs whose key changed (one batched ``read_tensors`` / ``read_scalars`` call
for all of them), so a warm request over 1,000 runs costs two list calls and no
parsing. With a local logdir even those are skipped: ``LogdirProbe`` stats the logdir
and the unfinished runs' files, and only runs whose files changed are listed (every run
is still listed while TensorBoard loads, and once a minute on a background thread; see
``_probed_refresh``). With ``read_ahead``, a run whose files just changed is read from its
own event files (``event_files``): the one exception to "only through the data provider",
and only until a listing of the provider has caught up with it.

Retries (``metadata`` docstring): only the records of the highest ``attempt``
count. JSON records carry their attempt; the predictions tensor's step is the
attempt; scalars carry none, so only points written at or after that
attempt's ``remap/model`` record are kept (the Python loader keeps a deleted
earlier attempt's points in memory).

A run that cannot be read (no model record, corrupt records, a newer record
version, an invalid spec) becomes an ``Unreadable`` with a reason; nothing
here raises on bad data.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gc
import itertools
import json
import logging
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np
from tensorboard.context import RequestContext
from tensorboard.data import provider

from remap_tb import metadata
from remap_tb.requests import check_provenance
from remap_tb.spec import Analysis, analyse
from remap_tb.spec.schema import Limits

logger = logging.getLogger(__name__)

# How long a snapshot is reused before the data provider is asked again (seconds).
MAX_SNAPSHOT_AGE = 1.0
# With a local logdir (``LogdirProbe``): how long after a run's files last changed it is
# still listed on each refresh (the provider reads a change only at its next reload), and
# how often every run is listed anyway (what the probe does not watch: a finished run
# written again, a run nested deeper). Seconds.
SETTLE_AFTER_CHANGE = 12.0
LIST_AT_LEAST_EVERY = 60.0
# A snapshot the probe answered for is reused this long at most (the probe is cheap, and
# a new run should not wait a whole ``MAX_SNAPSHOT_AGE`` more). Seconds.
PROBED_MAX_AGE = 0.1
# After a refresh that parsed this many runs (a logdir's load), the objects it made are
# collected once and frozen (``gc.freeze``): Python's full collections then skip them.
FREEZE_AFTER_RUNS = 256
# Runs the reader reads from their event files at once, ahead of the provider (``read_ahead``).
MAX_READ_AHEAD = 16
# More run folders than this new to the reader at once is a load: the probe leaves them to a
# listing of every run instead of watching each one.
MAX_NEW_FOLDERS = 64
FREEZE_AT_MOST_EVERY = 10.0
# Enough to keep every point of every series (``downsample=0`` returns nothing).
DOWNSAMPLE = 10**6
SCALARS_PLUGIN = "scalars"
# Stored specs were checked when they were queued; read them without the caps.
_READ_LIMITS = Limits(max_params=None, max_depth=None)


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A run that holds remap data (or no data at all) but cannot be shown as a model."""

    run: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"run": self.run, "reason": self.reason}


_SERIALS = itertools.count(1)


@dataclasses.dataclass(eq=False)
class RunData:
    """One model: the newest attempt's records of one run, parsed."""

    run: str
    model: dict[str, Any]  # the remap/model record
    attempt: int
    status: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    test: dict[str, Any] | None
    predictions: np.ndarray | None  # int array [n_val], or None
    curves: list[dict[str, Any]]  # one dict per step: step, train_loss, ... (None where absent)
    wall_time: float | None  # of the newest point in the run
    notes: tuple[str, ...] = ()  # records skipped while reading, and why
    # Increases with every parse: a run read again is a new RunData with a higher serial
    # (``models_versions`` tells a dashboard which summaries changed by it).
    serial: int = dataclasses.field(default_factory=lambda: next(_SERIALS), init=False, compare=False)
    # What views derive from this run (it lives as long as the run is unchanged).
    derived: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.model["id"]

    @property
    def experiment(self) -> str:
        return self.model["fingerprint"]["id"]

    @property
    def spec(self) -> dict[str, Any]:
        return self.model["spec"]

    @functools.cached_property
    def analysis(self) -> Analysis:
        return analyse(self.spec, _READ_LIMITS)

    @property
    def state(self) -> str:
        return self.status["state"] if self.status else metadata.RUNNING

    def metric(self, name: str) -> float | None:
        """A final metric (``val_accuracy``, ...): the status record's, else the last curve point's."""
        value = (self.status or {}).get("metrics", {}).get(name)
        if _is_number(value):
            return float(value)
        for point in reversed(self.curves):
            if point.get(name) is not None:
                return point[name]
        return None


@dataclasses.dataclass(eq=False)
class Snapshot:
    """All runs of one TensorBoard experiment as last read; immutable once built.

    ``generation`` grows whenever a run is added, changed or removed, so
    anything derived from a snapshot can be cached under it.
    """

    generation: int
    models: dict[str, RunData]  # by run name
    unreadable: list[Unreadable]

    @functools.cached_property
    def by_id(self) -> dict[str, RunData]:
        out: dict[str, RunData] = {}
        for data in self.models.values():
            out.setdefault(data.id, data)
        return out

    @functools.cached_property
    def experiment_of(self) -> dict[str, str]:
        """The experiment id of each run: its fingerprint id, or for a run logged by the
        user's own loop (``remap_tb.summary``) the matching trainer experiment's
        (``metadata.group_experiments``)."""
        runs = sorted(self.models)
        # Grouped over distinct fingerprints (a few per logdir, however many runs): equal
        # fingerprints always land in the same experiment. Each run's canonical JSON is
        # kept on its data, so a new snapshot encodes only its new runs'.
        texts = [_fingerprint_text(self.models[run]) for run in runs]
        first: dict[str, str] = {}  # fingerprint text -> the first run with it
        for run, text in zip(runs, texts):
            first.setdefault(text, run)
        ids = dict(zip(first, metadata.group_experiments([self.models[run].model["fingerprint"]
                                                          for run in first.values()])))
        return {run: ids[text] for run, text in zip(runs, texts)}

    @functools.cached_property
    def experiments(self) -> dict[str, list[RunData]]:
        """Models grouped by experiment (``experiment_of``), each group in creation order."""
        groups: dict[str, list[RunData]] = {}
        of = self.experiment_of
        for data in sorted(self.models.values(), key=lambda d: (str(d.model.get("created", "")), d.run)):
            groups.setdefault(of[data.run], []).append(data)
        return groups

    @functools.cached_property
    def memo(self) -> dict[Any, Any]:
        """A place for views to cache what they derive from this snapshot."""
        return {}


def _fingerprint_text(data: RunData) -> str:
    text = data.derived.get("fingerprint_text")
    if text is None:
        text = data.derived["fingerprint_text"] = sys.intern(json.dumps(data.model["fingerprint"], sort_keys=True))
    return text


@dataclasses.dataclass
class _Entry:
    key: tuple
    value: RunData | Unreadable | None  # None: not a remap run (e.g. only foreign scalars)
    # Read from the event files ahead of the provider (``event_files``): the newest wall
    # time read; the entry stands until the provider's series reach it.
    ahead_of_provider: float | None = None


class RunReader:
    """Reads and caches the remap runs of each experiment of a data provider.

    Thread-safe: TensorBoard serves requests from several threads. Refreshes
    are serialised so concurrent requests never parse a run twice.
    """

    def __init__(self, data_provider: provider.DataProvider, downsample: int = DOWNSAMPLE,
                 max_age: float = MAX_SNAPSHOT_AGE, clock: Callable[[], float] = time.monotonic,
                 logdir: str | None = None, settle: float = SETTLE_AFTER_CHANGE,
                 on_change: Callable[[list[str]], None] | None = None, read_ahead: bool = False):
        """``logdir``: the local folder the provider reads (None: a remote or unknown one), so
        that a refresh can first ask the file system whether anything changed
        (``LogdirProbe``); ``settle``: seconds after a change during which the provider is
        listed on every refresh anyway (at least two of its reload intervals); ``on_change``:
        called with the runs whose files the probe just saw change, before they are listed
        (the plugin makes the Python loader read them now); ``read_ahead``: read those runs'
        event files directly, where they hold newer data than the reader has, and do not list
        them through the provider while they settle (``event_files``, ``_refresh``). Needs
        ``logdir``."""
        self._provider = data_provider
        self._probe = LogdirProbe(logdir) if logdir else None
        self._settle = settle
        self._on_change = on_change
        self._read_ahead = read_ahead and logdir is not None
        self._logdir = logdir
        self._watch: dict[str, _Watch] = {}  # experiment id -> what the probe saw
        self._listed: dict[str, float] = {}  # experiment id -> when every run was last listed
        self._listing: set[str] = set()  # experiments being listed in the background
        self._provider_news = False  # whether the last refresh found news from the provider
        self._unfinished: dict[str, tuple[dict, list[str]]] = {}  # experiment id -> (entries, their unfinished runs)
        self._listing_threads: list[threading.Thread] = []
        self._frozen_at = -math.inf
        self._probed: set[str] = set()  # experiments whose last refresh the probe answered
        self._downsample = downsample
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, _Entry]] = {}  # experiment id -> run -> entry
        self._snapshots: dict[str, Snapshot] = {}
        self._refreshed: dict[str, float] = {}  # experiment id -> monotonic time of the last refresh
        self._generation = 0

    def snapshot(self, ctx: RequestContext | None = None, experiment_id: str = "",
                 max_age: float | None = None) -> Snapshot:
        """The current state of every run, re-reading only runs that changed.

        A snapshot younger than ``max_age`` seconds is answered as it is: the
        dashboard asks for several routes at once, and listing every run's series
        on each of them allocates thousands of objects per call over 1,000 runs
        (enough to trigger Python's full garbage collections every ~30 calls).
        TensorBoard itself only sees new data every ``--reload_interval`` seconds.
        ``max_age=0`` asks the data provider now (the plugin does when the queue says a
        run finished that the snapshot still shows unfinished).
        """
        ctx = ctx or RequestContext()
        max_age = self._max_age if max_age is None else max_age
        with self._lock:
            age = self._clock() - self._refreshed.get(experiment_id, -math.inf)
            if experiment_id in self._probed:
                max_age = min(max_age, PROBED_MAX_AGE)
            if age < max_age and experiment_id in self._snapshots:
                return self._snapshots[experiment_id]
            if max_age > 0 and experiment_id in self._snapshots and self._probe is not None:
                snap = self._probed_refresh(ctx, experiment_id)
                if snap is not None:
                    self._refreshed[experiment_id] = self._clock()
                    self._probed.add(experiment_id)
                    return snap
            self._probed.discard(experiment_id)
            now = self._clock()
            watch = self._watch.get(experiment_id)
            looked = self._look(experiment_id, watch, now) if self._read_ahead and watch is not None else None
            top = self._probe.top() if self._probe is not None else None
            snap = self._refresh(ctx, experiment_id, ahead=looked[0] if looked else ())
            self._listed[experiment_id] = now
            self._refreshed[experiment_id] = self._clock()
            if watch is None or watch.top != top:
                watch = self._watch[experiment_id] = _Watch(top, now)
            if self._provider_news:  # the provider is (still) reading something new: list it all again
                watch.listing_changed = now
            return snap

    def _probed_refresh(self, ctx: RequestContext, eid: str) -> Snapshot | None:
        """The snapshot refreshed only where the logdir's files say something changed, or
        None when every run must be listed (the first time, after runs were removed, while
        a full listing still finds news, and every ``LIST_AT_LEAST_EVERY`` seconds).

        Watched: the logdir folder (a run added or removed) and each unfinished run's
        folder and event files (``LogdirProbe``), a few ``stat`` calls instead of listing
        every series of every run through the provider. A run whose files changed less
        than ``settle`` seconds ago is listed alone (``run_tag_filter``), since the
        provider reads the change only at its next reload.
        """
        watch = self._watch.get(eid)
        now = self._clock()
        if watch is None or now - watch.listing_changed < self._settle:
            return None
        if now - self._listed.get(eid, -math.inf) >= LIST_AT_LEAST_EVERY:
            self._listed[eid] = now
            self._list_in_background(ctx, eid)
        looked = self._look(eid, watch, now)
        if looked is None:
            return None  # a run was removed
        just, hot = looked
        if just and self._on_change is not None:
            self._on_change(sorted(just))
        if not hot:
            return self._snapshots[eid]
        return self._refresh(ctx, eid, only=hot, ahead=just if self._read_ahead else ())

    def _list_in_background(self, ctx: RequestContext, eid: str) -> None:
        """The periodic listing of every run (``LIST_AT_LEAST_EVERY``), on a thread of its own:
        over 20,000 runs it takes seconds, which the request that happened to be due for it
        used to wait. The provider is listed without the lock; the entries are then updated
        under it like a targeted refresh of every listed run (a run the listing lacks keeps
        its entry: removals are the probe's to find, which then asks for a full listing)."""
        if eid in self._listing:
            return
        self._listing.add(eid)

        def run() -> None:
            try:
                targets = sorted(self.run_names(ctx, eid))
                tensors = self._provider.list_tensors(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME)
                with self._lock:
                    self._refresh(ctx, eid, listing=(targets, tensors))
            except Exception:  # the next listing tries again; a read route never fails for it
                logger.exception("remap: the periodic listing of the runs failed")
            finally:
                with self._lock:
                    self._listing.discard(eid)

        thread = threading.Thread(target=run, name="remap-list-runs", daemon=True)
        self._listing_threads.append(thread)
        self._listing_threads = [t for t in self._listing_threads if t.is_alive() or t is thread]
        thread.start()

    def wait_listing(self, timeout: float = 60.0) -> None:
        """Wait for background listings to finish (tests, shutdown)."""
        for thread in list(self._listing_threads):
            thread.join(timeout)

    def _look(self, eid: str, watch: _Watch, now: float) -> tuple[list[str], list[str]] | None:
        """Ask the probe what changed since it last looked (kept in ``watch``): the runs whose
        files just changed, and those that changed within ``settle`` seconds (a new run
        folder counts); None when a run folder was removed or more than ``MAX_NEW_FOLDERS``
        folders are new to the reader (a logdir still being read: watching each of them
        would stat thousands of folders on every refresh)."""
        probe = self._probe
        entries = self._entries.get(eid, {})
        top = probe.top()
        if top != watch.top:
            folders = probe.folders()
            if any("/" not in run and run != "." and run not in folders for run in entries):
                return None
            new = [run for run in folders - set(entries) if run not in watch.changed]
            if len(new) > MAX_NEW_FOLDERS:
                return None  # a load (the provider has not listed them yet): every run is listed
            for run in new:
                watch.changed[run] = now
            watch.top = top
        cached = self._unfinished.get(eid)
        if cached is None or cached[0] is not entries:  # the entries are replaced, never changed
            cached = self._unfinished[eid] = (entries, [
                run for run, e in entries.items()
                if not (isinstance(e.value, RunData) and e.value.state in metadata.FINAL_STATES)])
        unfinished = cached[1]
        just: list[str] = []
        for run in {*unfinished, *watch.changed}:
            signature = probe.run_signature(run)
            if watch.signatures.get(run) != signature:
                watch.signatures[run] = signature
                watch.changed[run] = now
                just.append(run)
        hot = sorted(run for run, t in watch.changed.items() if now - t < self._settle)
        for run in [run for run, t in watch.changed.items() if now - t >= self._settle]:
            del watch.changed[run]
        return sorted(just), hot

    def run_names(self, ctx: RequestContext | None = None, experiment_id: str = "") -> set[str]:
        """Names of all runs the data provider knows, remap or not."""
        runs = self._provider.list_runs(ctx or RequestContext(), experiment_id=experiment_id)
        return {run.run_name for run in runs}

    def find_model(self, run: str, ctx: RequestContext | None = None,
                   experiment_id: str = "") -> dict[str, Any] | None:
        """A copy of ``run``'s ``remap/model`` record, or None if it is not a readable model."""
        data = self.snapshot(ctx, experiment_id).models.get(run)
        return copy.deepcopy(data.model) if data is not None else None

    def list_models(self, ctx: RequestContext | None = None, experiment_id: str = "") -> list[dict[str, Any]]:
        """Copies of every readable run's ``remap/model`` record."""
        return [copy.deepcopy(d.model) for d in self.snapshot(ctx, experiment_id).models.values()]

    # -- refresh -------------------------------------------------------------------------

    def _refresh(self, ctx: RequestContext, eid: str, only: list[str] | None = None,
                 ahead: Iterable[str] = (), listing: tuple[list[str], dict] | None = None) -> Snapshot:
        """List the provider's runs and re-read those whose series changed; ``only``: list
        just these runs (the others keep their entries; one not yet known to the provider
        is left out); ``listing``: (runs, their remap tensors' listing) already asked for,
        used like ``only`` (``_list_in_background``); ``ahead``: runs whose files just
        changed, first read from their event files where that finds newer data than the
        reader holds (``_read_ahead_of_provider``). A run read ahead is not listed by
        ``only``: its files are newer than the provider; the periodic listing hands it back
        to the provider once that has caught up."""
        before = self._entries.get(eid, {})
        fresh = self._read_ahead_of_provider(ahead, before)
        old = {**before, **fresh}
        if only is not None:
            only = [run for run in only if old.get(run) is None or old[run].ahead_of_provider is None]
        if listing is not None:
            targets, tensors = listing
            runs = sorted({*old, *targets})
        elif only is None:
            runs = sorted(self.run_names(ctx, eid))
            tensors = self._provider.list_tensors(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME)
            targets = runs
        elif only:
            tensors = self._provider.list_tensors(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME,
                                                  run_tag_filter=provider.RunTagFilter(runs=only))
            targets = [run for run in only if run in old or tensors.get(run)]
            runs = sorted({*old, *targets})
        else:  # every changed run was read from its files: nothing to ask the provider
            tensors, targets, runs = {}, [], sorted(old)
        # The trainer writes a remap record after every epoch's scalars (and flushes then),
        # so the remap series alone tell when a run changed; scalars are listed only for
        # runs without remap data, to tell foreign runs from empty or corrupt ones.
        foreign = [run for run in targets if not tensors.get(run)]
        scalars = self._provider.list_scalars(
            ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN,
            run_tag_filter=provider.RunTagFilter(runs=foreign)) if foreign else {}
        new: dict[str, _Entry] = {}
        stale: list[str] = []
        keys: dict[str, tuple] = {}
        listed = set(targets)
        for run in runs:
            if run not in listed:
                new[run] = old[run]
                continue
            key = _series_key(tensors.get(run, {})) + ("|",) + _series_key(scalars.get(run, {}))
            keys[run] = key
            entry = old.get(run)
            if entry is not None and (entry.key == key or (
                    entry.ahead_of_provider is not None
                    and _newest(tensors.get(run, {})) < entry.ahead_of_provider)):
                new[run] = entry  # unchanged, or read ahead of a provider that has not caught up
            else:
                stale.append(run)
        if stale:
            new.update(self._read_runs(ctx, eid, stale, keys, tensors, scalars))
            self._maybe_freeze(len(stale))
        for run, entry in old.items():
            if run not in new and entry.ahead_of_provider is not None \
                    and os.path.isdir(os.path.join(self._logdir, run)):
                new[run] = entry  # read ahead of a provider that does not list the run yet
        changed = bool(stale) or bool(fresh) or set(before) != set(new)
        # News from the provider (it is still reading something new): a run it listed anew or
        # changed; not a run handed back to it after a read ahead, nor the read ahead itself.
        self._provider_news = bool(set(new) - set(old)) or any(
            old.get(run) is None or old[run].ahead_of_provider is None for run in stale)
        self._entries[eid] = new
        snap = self._snapshots.get(eid)
        if snap is None or changed:
            self._generation += 1
            models = {run: e.value for run, e in new.items() if isinstance(e.value, RunData)}
            unreadable = [e.value for run, e in sorted(new.items()) if isinstance(e.value, Unreadable)]
            snap = Snapshot(self._generation, models, unreadable)
            self._snapshots[eid] = snap
        return snap

    def _read_ahead_of_provider(self, runs: Iterable[str], entries: dict[str, _Entry]) -> dict[str, _Entry]:
        """Entries for ``runs`` read from their own event files, where the files hold newer
        remap data than ``entries`` (the provider's reading, or an earlier one from the files);
        at most ``MAX_READ_AHEAD`` runs (more at once is a load, which the provider reads)."""
        runs = sorted(runs)
        if not runs or len(runs) > MAX_READ_AHEAD:
            return {}
        from remap_tb import event_files

        out: dict[str, _Entry] = {}
        for run in runs:
            folder = os.path.normpath(os.path.join(self._logdir, run))
            series = event_files.read_run(folder, metadata.PLUGIN_NAME, SCALARS_PLUGIN, metadata.SCALAR_TAGS)
            entry = entries.get(run)
            if series is None or (entry is not None and series.newest <= _entry_newest(entry)):
                continue
            value = parse_run(run, series.tensors, series.scalars)
            if isinstance(value, RunData):  # anything else is left to the provider's reading
                out[run] = _Entry(("ahead", series.newest), value, series.newest)
        return out

    def _read_runs(self, ctx: RequestContext, eid: str, runs: list[str], keys: dict[str, tuple],
                   tensors: dict, scalars: dict) -> dict[str, _Entry]:
        with_tensors = [r for r in runs if tensors.get(r)]
        tensor_data = scalar_data = {}
        if with_tensors:
            run_filter = provider.RunTagFilter(runs=with_tensors)
            tensor_data = self._provider.read_tensors(
                ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME,
                run_tag_filter=run_filter, downsample=self._downsample)
            scalar_data = self._provider.read_scalars(
                ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN,
                run_tag_filter=provider.RunTagFilter(runs=with_tensors, tags=metadata.SCALAR_TAGS),
                downsample=self._downsample)
        out: dict[str, _Entry] = {}
        for run in runs:
            if run in tensor_data and tensor_data[run]:
                value: RunData | Unreadable | None = parse_run(run, tensor_data[run], scalar_data.get(run, {}))
            elif tensors.get(run) or scalars.get(run):
                value = None  # data of other plugins only: not a remap run
            else:
                # Only the Python loader lists such runs; the Rust data server skips them.
                value = Unreadable(run, "no readable data: the event file is empty or corrupt "
                                        "(or its first records are still being written)")
            out[run] = _Entry(keys[run], value)
        return out


    def _maybe_freeze(self, parsed: int) -> None:
        """After parsing many runs (a load), collect once and ``gc.freeze()`` what is alive.

        Over thousands of runs the process holds millions of long-lived objects (parsed
        records here, the Python loader's events); each full collection walks them all
        (about a second at 5,000 runs) and one comes every few refreshes. Frozen objects
        are skipped by later collections (they are still freed by reference counting).
        """
        now = self._clock()
        if parsed < FREEZE_AFTER_RUNS or now - self._frozen_at < FREEZE_AT_MOST_EVERY:
            return
        self._frozen_at = now
        gc.collect()
        gc.freeze()


@dataclasses.dataclass
class _Watch:
    """What ``LogdirProbe`` last saw of one experiment's logdir."""

    top: Any  # the logdir folder's modification time
    listing_changed: float  # when a full listing last found something new
    signatures: dict[str, Any] = dataclasses.field(default_factory=dict)  # run -> LogdirProbe.run_signature
    changed: dict[str, float] = dataclasses.field(default_factory=dict)  # run -> when its files changed


class LogdirProbe:
    """Cheap looks at a local logdir's files, to tell which runs may have changed.

    ``top``: the logdir folder's modification time (a run folder added or removed);
    ``folders``: its run folders; ``run_signature``: a run folder's modification time (an
    event file added) and the size and modification time of its event files. Run names
    are the provider's (folders under the logdir, ``.`` for the logdir itself).
    """

    def __init__(self, logdir: str):
        self._logdir = logdir
        self._files: dict[str, tuple[int, tuple[str, ...]]] = {}  # run -> (folder mtime, event file names)

    def top(self) -> int | None:
        try:
            return os.stat(self._logdir).st_mtime_ns
        except OSError:
            return None

    def folders(self) -> set[str]:
        try:
            with os.scandir(self._logdir) as found:
                return {e.name for e in found if not e.name.startswith(".") and e.is_dir()}
        except OSError:
            return set()

    def run_signature(self, run: str) -> tuple | None:
        folder = os.path.join(self._logdir, run)
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return None
        known = self._files.get(run)
        if known is None or known[0] != mtime:
            try:
                names = tuple(sorted(n for n in os.listdir(folder) if "tfevents" in n))
            except OSError:
                names = ()
            known = self._files[run] = (mtime, names)
        files = []
        for name in known[1]:
            try:
                st = os.stat(os.path.join(folder, name))
                files.append((st.st_size, st.st_mtime_ns))
            except OSError:
                files.append(None)
        return (mtime, tuple(files))


def _entry_newest(entry: _Entry) -> float:
    """The newest remap wall time an entry was read up to (-inf when unknown)."""
    if entry.ahead_of_provider is not None:
        return entry.ahead_of_provider
    tensors = entry.key[:entry.key.index("|")] if "|" in entry.key else ()
    return max((wall for _, _, wall in tensors if wall is not None), default=-math.inf)


def _newest(series: dict) -> float:
    """The newest wall time of a run's listed series (-inf without any)."""
    return max((ts.max_wall_time for ts in series.values()), default=-math.inf)


def _series_key(series: dict) -> tuple:
    return tuple(sorted((tag, ts.max_step, ts.max_wall_time) for tag, ts in series.items()))


# -- parsing one run ---------------------------------------------------------------------


def parse_run(run: str, tensors: dict[str, list], scalars: dict[str, list]) -> RunData | Unreadable:
    """Parse one run's remap tensors and standard scalars (as the data provider returns them)."""
    notes: list[str] = []
    models = _decode_all(tensors.get(metadata.MODEL_TAG, ()), metadata.MODEL_TAG, notes)
    if not models:
        if metadata.MODEL_TAG in tensors:
            return Unreadable(run, f"{metadata.MODEL_TAG} cannot be read: {notes[-1] if notes else 'empty'}")
        return Unreadable(run, f"partial run: it has remap records but no {metadata.MODEL_TAG} record "
                               "(the run was not written by the remap trainer, or its start was lost)")
    attempt = max(_attempt(record) for _, record in models)
    # The newest model record of that attempt counts (``remap_tb.summary`` writes it again
    # once the validation labels complete the fingerprint); its curves start at the first.
    current = [(d, r) for d, r in models if _attempt(r) == attempt]
    model_datum, model = max(current, key=lambda p: (p[0].step, p[0].wall_time))
    first_wall_time = min(d.wall_time for d, _ in current)
    problem = _model_problem(model)
    if problem:
        return Unreadable(run, f"{metadata.MODEL_TAG} record is incomplete: {problem}")
    for field in SHARED_FIELDS:
        if field in model:
            model[field] = _shared(field, model[field])

    def newest(tag: str) -> dict[str, Any] | None:
        records = [(d, r) for d, r in _decode_all(tensors.get(tag, ()), tag, notes) if _attempt(r) == attempt]
        if not records:
            return None
        return max(records, key=lambda p: (p[0].step, p[0].wall_time))[1]

    status = newest(metadata.STATUS_TAG)
    if status is not None and status.get("state") not in metadata.STATES:
        notes.append(f"{metadata.STATUS_TAG}: unknown state {status.get('state')!r:.40}")
        status = None
    evaluation = newest(metadata.EVALUATION_TAG)
    tests = _decode_all(tensors.get(metadata.TEST_TAG, ()), metadata.TEST_TAG, notes)
    test = max(tests, key=lambda p: (p[0].wall_time, p[0].step))[1] if tests else None
    predictions = None
    for datum in tensors.get(metadata.PREDICTIONS_TAG, ()):
        if datum.step == attempt:
            predictions = _tensor_array(datum.numpy)
    if predictions is None and metadata.PREDICTIONS_TAG in tensors and (status or {}).get("state") == metadata.DONE:
        notes.append(f"{metadata.PREDICTIONS_TAG}: no predictions for attempt {attempt}")

    curves = _curves(scalars, since=first_wall_time)
    wall_times = [d.wall_time for series in (*tensors.values(), *scalars.values()) for d in series]
    data = RunData(run=run, model=model, attempt=attempt, status=status, evaluation=evaluation, test=test,
                   predictions=predictions, curves=curves, wall_time=max(wall_times) if wall_times else None,
                   notes=tuple(notes))
    if not data.analysis.ok:
        reasons = "; ".join(str(p) for p in data.analysis.problems[:3])
        return Unreadable(run, f"its spec cannot be read by this version: {reasons}")
    return data


# Parts of the model record that most runs of a logdir repeat word for word: parsed once and
# shared by every run that has them (about 80 MB over 20,000 runs). Never modified in place
# (``find_model`` hands out deep copies).
SHARED_FIELDS = ("fingerprint", "dataset", "class_names", "training", "normalisation")
_SHARED_MAX = 4096
_shared_values: dict[tuple[str, str], Any] = {}
_shared_lock = threading.Lock()


def _shared(field: str, value: Any) -> Any:
    """The one shared object equal to ``value`` (``value`` itself the first time, and once
    ``_SHARED_MAX`` distinct values are kept)."""
    try:
        key = (field, json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return value
    with _shared_lock:
        found = _shared_values.get(key)
        if found is None and len(_shared_values) < _SHARED_MAX:
            _shared_values[key] = found = value
    return value if found is None else found


def _decode_all(series: Iterable, tag: str, notes: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    out = []
    for datum in series:
        try:
            record = metadata.decode_json(_tensor_bytes(datum.numpy))
        except metadata.RecordError as e:
            notes.append(f"{tag} at step {datum.step}: {e}")
            continue
        out.append((datum, record))
    return out


def _attempt(record: dict[str, Any]) -> int:
    value = record.get("attempt", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _model_problem(model: dict[str, Any]) -> str | None:
    """What is missing from a model record for the plugin to show it, or None."""
    if not isinstance(model.get("id"), str) or not model["id"]:
        return "no model id"
    if not isinstance(model.get("spec"), dict):
        return "no spec"
    fingerprint = model.get("fingerprint")
    if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("id"), str):
        return "no dataset fingerprint id"
    for key, kind in (("provenance", dict), ("dataset", dict), ("training", dict), ("class_names", list)):
        if not isinstance(model.get(key), kind):
            return f"no {key}"
    for key in ("params", "depth"):
        value = model.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key} is not a non-negative integer"
    if not all(isinstance(name, str) for name in model["class_names"]):
        return "class_names holds something other than strings"
    problems: list[str] = []
    check_provenance(model["provenance"], problems)
    return "; ".join(problems) or None


def _tensor_bytes(value: Any) -> bytes:
    """The bytes of a rank-0 string tensor.

    Both loaders give a numpy object array holding ``bytes`` (shape ``()``);
    accept a 1-element array, ``str`` and raw ``bytes`` too, in case a provider
    differs. Anything else raises ``RecordError``.
    """
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise metadata.RecordError(f"expected one string, got an array of shape {value.shape}")
        value = value.reshape(()).item()
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise metadata.RecordError(f"expected a string tensor, got {type(value).__name__}")


def _tensor_array(value: Any) -> np.ndarray | None:
    """Predicted labels as a 1-D int array, or None if the tensor is not one."""
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        return None
    return array


def _curves(scalars: dict[str, list], since: float) -> list[dict[str, Any]]:
    names = {metadata.TRAIN_LOSS_TAG: "train_loss", metadata.TRAIN_ACCURACY_TAG: "train_accuracy",
             metadata.VAL_LOSS_TAG: "val_loss", metadata.VAL_ACCURACY_TAG: "val_accuracy"}
    points: dict[int, dict[str, Any]] = {}
    for tag, name in names.items():
        latest: dict[int, Any] = {}
        for datum in scalars.get(tag, ()):
            if datum.wall_time < since:
                continue  # an earlier attempt's point (see the module docstring)
            if datum.step not in latest or datum.wall_time >= latest[datum.step].wall_time:
                latest[datum.step] = datum
        for step, datum in latest.items():
            value = float(datum.value)
            points.setdefault(step, {"step": step, **dict.fromkeys(names.values())})[name] = (
                value if math.isfinite(value) else None)
    return [points[step] for step in sorted(points)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
