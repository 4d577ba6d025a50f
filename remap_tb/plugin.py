"""The REMAP TensorBoard plugin: thin routes over ``views``, ``reader`` and ``export``.

Routes are listed in ``http_api.md``. Each ``_*_route`` only parses and checks
the request; the data comes from ``views.*_impl`` over a ``reader.Snapshot``.
The queue routes (generate, enqueue, queue, cancel, reorder) come from
``search_routes.make_routes`` (mounted when TensorBoard has a local logdir).

Owns its background work: the projection service (created on the first
projection request) and the local queue workers (``start_workers``, called by
the loader), both stopped by ``close()``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from typing import Any, Callable

from tensorboard import plugin_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers, wsgi

from remap_tb import assets, export, host_guard, metadata, models_versions, reader, run_limits, run_states, views
from remap_tb.http_util import HttpError, error_response, json_response, json_route, query_arg, read_json_body
from remap_tb.reader import RunReader
from remap_tb.spec.schema import DEFAULT_LIMITS, Limits

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("json", "pytorch", "state_dict")
QUEUE_ROUTES = ("generate", "enqueue", "queue", "cancel", "reorder")
# A lagging run is reloaded at most this often (the first reload reads its closed file to the end).
RELOAD_AGAIN_AFTER = 2.0
# Seconds the projection route waits for a layout that must be recomputed (a new model on a
# small map takes milliseconds); longer computations answer ``computing: true`` as before.
PROJECTION_WAIT = 0.5
# A snapshot with at least this many models without a summary has them built in the background.
WARM_SUMMARIES_FROM = 200


class RemapPlugin(base_plugin.TBPlugin):
    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._context = context
        self._logdir = context.logdir or ""
        flags = context.flags
        self._max_params = getattr(flags, "remap_max_params", DEFAULT_LIMITS.max_params)
        self._run_limits = run_limits.RunLimits.from_flags(flags)
        self._allowed_hosts = host_guard.allowed_hosts(flags)
        self._lock = threading.Lock()
        self._reloaded: dict[str, float] = {}  # run -> monotonic time of its last targeted reload
        # The reader asks the file system first (a local logdir) and lists the provider only
        # when event files changed, for a while after (the provider reads them at its reload).
        reload = getattr(flags, "reload_interval", None)
        settle = max(reader.SETTLE_AFTER_CHANGE, 3 * float(reload)) if isinstance(reload, (int, float)) \
            else reader.SETTLE_AFTER_CHANGE
        # A run whose files just changed is read from them at once (``event_files``): ahead of
        # the Rust data server's next reload, and without the Python loader's listing of every
        # run's series (seconds over 20,000 runs) on each refresh.
        self._reader = RunReader(context.data_provider, logdir=self._local_logdir(), settle=settle,
                                 on_change=self._reload_runs_soon, read_ahead=True)
        self._projections = None
        self._workers = None
        self._queue_obj = None
        self._canonical_memo: dict[str, str] = {}  # spec hash -> canonical hash (validate's duplicate check)
        self._warmed = -1  # the snapshot generation whose summaries were last warmed
        self._projection_bodies: dict[tuple[str, str], tuple[tuple, bytes]] = {}  # (experiment, kind) -> (layout key, body)
        self._models_versions = models_versions.ModelsVersions()

    # -- TBPlugin ------------------------------------------------------------------------

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="REMAP")

    def data_plugin_names(self) -> tuple[str, ...]:
        return (metadata.PLUGIN_NAME, "scalars")

    def is_active(self) -> bool:
        """Called only when no run has remap (or scalars) data: a queue folder counts too."""
        local = self._local_logdir()
        return bool(local) and os.path.isdir(os.path.join(local, metadata.STATE_DIR))

    def get_plugin_apps(self) -> dict[str, Callable]:
        get, post = json_route(("GET",)), json_route(("POST",))
        apps: dict[str, Callable] = {f"/{name}": self._asset_route for name in assets.ASSETS}
        apps.update({
            "/experiments": get(self._experiments_route),
            "/models": get(self._models_route),
            "/projection": get(self._projection_route),
            "/model": get(self._model_route),
            "/compare": get(self._compare_route),
            "/export": get(self._export_route),
            "/validate": post(self._validate_route),
            "/schema": get(lambda request: views.schema_impl(self._max_params, self._run_limits)),
        })
        apps.update(self._queue_routes())
        return {route: host_guard.guard(_nosniff(app), self._allowed_hosts) for route, app in apps.items()}

    # -- routes --------------------------------------------------------------------------

    @wrappers.Request.application
    def _asset_route(self, request: wrappers.Request) -> wrappers.Response:
        name = request.path.rsplit("/", 1)[-1]
        found = assets.read_asset(name)
        if found is None:
            return error_response(404, f"no such file: {name[:80]!r}")
        body, content_type = found
        response = wrappers.Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _experiments_route(self, request: wrappers.Request) -> Any:
        return views.experiments_impl(self._snapshot(request))

    def _models_route(self, request: wrappers.Request) -> Any:
        experiment = query_arg(request, "experiment")
        snap = self._current_snapshot(request)
        group = views.experiment_models(snap, experiment)
        statuses = self._queue_statuses(group)
        stale = self._still_silent(views.stale_runs(group)) - frozenset(statuses)
        key = ("models", experiment, stale,
               tuple(sorted((run, s["state"], s["epoch"], s["reason"]) for run, s in statuses.items())))
        overlaid = stale | frozenset(statuses)
        version = self._models_versions.version(experiment, (snap.generation, *key), group, overlaid)
        since = request.args.get("since") or None
        if since is not None and self._models_versions.remembered(experiment, since) is None:
            since = None  # forgotten (or from another process): the whole list
        memo_key = (*key, version.token, since)
        body = snap.memo.get(memo_key)
        if body is None:  # a delta is worked out once per (snapshot, version asked from)
            if since is None:
                delta = None
            elif since == version.token:
                delta = models_versions.Delta([], [])  # nothing changed
            else:
                delta = self._models_versions.since(experiment, since, group, overlaid)
            body = snap.memo[memo_key] = views.models_body(snap, experiment, stale, statuses, version.token,
                                                           since if delta is not None else None, delta)
        return _body_response(body)

    def _projection_route(self, request: wrappers.Request) -> Any:
        experiment = query_arg(request, "experiment")
        kind = query_arg(request, "kind")
        if kind not in views.PROJECTION_KINDS:
            raise HttpError(400, f"kind must be one of {', '.join(views.PROJECTION_KINDS)}, got {kind!r:.40}")
        snap = self._snapshot(request)
        if kind == "size":
            return _cached_json(snap.memo, ("size", experiment), lambda: views.size_projection(snap, experiment))
        items = snap.memo.get(("items", experiment, kind))
        if items is None:
            items = snap.memo[("items", experiment, kind)] = views.projection_items(snap, experiment, kind)
        layout = self._projection_service().layout(experiment, kind, items, wait=PROJECTION_WAIT)
        # The encoded body is kept per map until its layout changes (``points`` is the
        # service's shared list: a new layout is a new list and a new version).
        key = (layout.get("version"), bool(layout.get("computing")), layout.get("error"), layout.get("stress"),
               id(layout.get("points")), len(layout.get("points") or ()))
        with self._lock:
            cached = self._projection_bodies.get((experiment, kind))
        if cached is not None and cached[0] == key:
            return _body_response(cached[1])
        body = views.projection_body(experiment, kind, layout)
        with self._lock:
            self._projection_bodies[(experiment, kind)] = (key, body)
        return _body_response(body)

    def _model_route(self, request: wrappers.Request) -> Any:
        run = run_arg(query_arg(request, "run"))
        snap = self._current_snapshot(request)
        data = snap.models.get(run)
        return views.model_impl(snap, run, self._queue_statuses([data]).get(run) if data is not None else None)

    def _compare_route(self, request: wrappers.Request) -> Any:
        runs = [run_arg(r) for r in query_arg(request, "runs", max_length=8000).split(",") if r]
        from remap_tb import otmann, prediction_distance  # POT: imported when first asked

        return views.compare_impl(self._snapshot(request), runs, otmann.distance_matrix_both,
                                  prediction_distance.hamming_matrix)

    def _export_route(self, request: wrappers.Request) -> Any:
        run = run_arg(query_arg(request, "run"))
        fmt = query_arg(request, "format", required=False) or "json"
        if fmt not in EXPORT_FORMATS:
            raise HttpError(400, f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r:.40}")
        snap = self._snapshot(request)
        data = views.get_model(snap, run)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", data.id)[:80] or "model"
        if fmt == "json":
            body = json.dumps(data.spec, indent=1) + "\n"
            return _download(body.encode("utf-8"), "application/json", f"{name}.json")
        if fmt == "pytorch":
            source = export.pytorch_source(data.spec, data.id, data.model.get("class_names"),
                                           data.model.get("normalisation"))
            return _download(source.encode("utf-8"), "text/x-python; charset=utf-8", f"{name}.py")
        path = self._weights_path(request, run)
        if path is None:
            raise HttpError(404, f"run {run!r:.80} has no trained weights ({metadata.WEIGHTS_FILE}; "
                                 f"state {data.state})")
        return _send_file(request, path, "application/octet-stream", f"{name}.pt")

    def _validate_route(self, request: wrappers.Request) -> Any:
        body = read_json_body(request)
        result = views.validate_impl(body, self._max_params, self._run_limits.max_memory)
        if result.get("valid"):  # issue 11: the existing model this spec is (once no-ops are removed)
            from remap_tb import search_routes

            result.update(search_routes.duplicate_json(body, self._reader.list_models, self._queue(),
                                                       self._canonical_memo))
        return result

    # -- helpers -------------------------------------------------------------------------

    def _snapshot(self, request: wrappers.Request):
        snap = self._reader.snapshot(plugin_util.context(request.environ),
                                     plugin_util.experiment_id(request.environ))
        self._warm_summaries(snap)
        return snap

    def _warm_summaries(self, snap) -> None:
        """Build the models' encoded summaries (glyph, analysis: ~0.5 ms each) in a background thread
        when a snapshot brings many new ones (a logdir's load), so that the dashboard's first
        ``models`` is not the one that pays for them (seconds at 5,000 runs)."""
        with self._lock:
            if snap.generation == self._warmed:
                return
            self._warmed = snap.generation
        cold = [data for data in snap.models.values() if "summary" not in data.derived]
        if len(cold) < WARM_SUMMARIES_FROM:
            return

        def warm() -> None:
            for data in cold:
                views.encoded_summary(data)

        threading.Thread(target=warm, name="remap-warm-summaries", daemon=True).start()

    def _current_snapshot(self, request: wrappers.Request):
        """The snapshot, brought up to date for runs the queue finished but it shows unfinished.

        The queue moves a request to done/failed/cancelled right after its worker closed
        the run's event file; TensorBoard reads new data only every ``--reload_interval``.
        For such runs (``run_states.lagging_runs``) the Python loader's multiplexer reloads
        just those runs now, and the snapshot is re-read at once instead of being reused
        (the Rust data server has no per-run reload: it reads them on its next reload, 1 s
        by default with this plugin, see ``loader.py``).
        """
        snap = self._snapshot(request)
        queue = self._queue()
        if queue is None:
            return snap
        lagging = run_states.lagging_runs(queue, snap, self._logdir)
        if not lagging:
            return snap
        self._reload_runs(lagging)
        return self._reader.snapshot(plugin_util.context(request.environ),
                                     plugin_util.experiment_id(request.environ), max_age=0)

    def _reload_runs_soon(self, runs: list[str]) -> None:
        """``_reload_runs`` on a thread of its own: the reader reads changed runs from their
        files itself, the reload is for TensorBoard's other tabs, and over 20,000 runs the
        multiplexer can keep a request waiting for its lock."""
        if getattr(self._context, "multiplexer", None) is not None:
            threading.Thread(target=self._reload_runs, args=(list(runs),), name="remap-reload-runs",
                             daemon=True).start()

    def _reload_runs(self, runs: list[str]) -> None:
        """Ask the Python loader's multiplexer to read ``runs`` now (no-op under the Rust server)."""
        multiplexer = getattr(self._context, "multiplexer", None)
        if multiplexer is None:
            return
        now = time.monotonic()
        with self._lock:
            self._reloaded = {r: t for r, t in self._reloaded.items() if now - t < run_states.LAG_WINDOW}
            due = [r for r in runs if now - self._reloaded.get(r, -math.inf) >= RELOAD_AGAIN_AFTER]
            self._reloaded.update(dict.fromkeys(due, now))
        for run in due:
            path = os.path.join(self._logdir, run)
            if not os.path.isdir(path):
                continue
            try:
                try:
                    accumulator = multiplexer.GetAccumulator(run)
                except KeyError:  # a run TensorBoard has not discovered yet
                    multiplexer.AddRun(path, run)
                    accumulator = multiplexer.GetAccumulator(run)
                accumulator.Reload()
            except Exception:  # never let a reload break a read route; the periodic reload follows
                logger.exception("remap: could not reload run %s", run)

    def _queue(self):
        """The logdir's queue (None without a local logdir)."""
        local = self._local_logdir()
        if local is None:
            return None
        with self._lock:
            if self._queue_obj is None:
                from remap_tb.queue import Queue

                self._queue_obj = Queue(local)
            return self._queue_obj

    def _queue_statuses(self, group) -> dict[str, dict]:
        """The queue's state of runs whose log is unfinished (``run_states.queue_statuses``)."""
        queue = self._queue()
        return run_states.queue_statuses(queue, group) if queue is not None else {}

    def _local_logdir(self) -> str | None:
        """The logdir when it is a local folder (not a URL, not --logdir_spec), else None."""
        if not self._logdir or "://" in self._logdir or not os.path.isdir(self._logdir):
            return None
        return self._logdir

    def _weights_path(self, request: wrappers.Request, run: str) -> str | None:
        """``<logdir>/<run>/weights.pt`` for a run the data provider lists, kept inside the logdir."""
        logdir = self._local_logdir()
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        if logdir is None or run not in self._reader.run_names(ctx, eid):
            return None
        root = os.path.realpath(logdir)
        path = os.path.realpath(os.path.join(root, run, metadata.WEIGHTS_FILE))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            return None
        return path

    def _still_silent(self, runs: frozenset[str]) -> frozenset[str]:
        """Of runs silent in the event log, those no live worker holds in the queue.

        A long epoch (CIFAR on a CPU) writes nothing for a while; the queue's
        heartbeats tell it apart from a worker that stopped.
        """
        queue = self._queue()
        if not runs or queue is None:
            return runs
        from remap_tb.queue import RUNNING

        if not queue.worker_alive():
            return runs
        return frozenset(run for run in runs if queue.state_of(run) != RUNNING)

    def _projection_service(self):
        with self._lock:
            if self._projections is None:
                from remap_tb import projection  # numpy/scikit-learn work: loaded on first use

                local = self._local_logdir()
                self._projections = projection.ProjectionService(
                    projection.default_state_dir(local) if local else None)
            return self._projections

    def _queue_routes(self) -> dict[str, Callable]:
        logdir = self._local_logdir()
        if logdir is None:
            logger.info("remap: no local --logdir, so the queue routes are not mounted")
            return {}
        from remap_tb import search_routes

        routes = search_routes.make_routes(logdir, self._reader.find_model, self._reader.list_models,
                                           limits=Limits(max_params=self._max_params), run_limits=self._run_limits,
                                           finished_models=self._finished_models,
                                           model_distances=self._model_distances)
        return {"/" + name.lstrip("/"): handler for name, handler in routes.items()}

    def _finished_models(self, runs: list[str]) -> list[dict]:
        """The finished models of the experiment of ``runs`` (generate's predicted accuracy);
        above ``surrogate.POOL_SIZE``, the pool around the runs (``surrogate.local_pool``)."""
        from remap_tb import surrogate

        snap = self._reader.snapshot()
        experiment, models = surrogate.finished_models(snap, runs)
        if len(models) <= surrogate.POOL_SIZE:
            return models
        positions: dict[str, tuple[float, float]] = {}
        try:
            items = views.projection_items(snap, experiment, "structural")
            layout = self._projection_service().layout(experiment, "structural", items)
            positions = {p["id"]: (p["x"], p["y"]) for p in layout.get("points") or ()}
        except Exception:  # no map yet: the pool falls back to a sample
            logger.exception("remap: no structural layout for the surrogate's pool")
        parents = [snap.models[run].id for run in runs if run in snap.models]
        return surrogate.local_pool(models, parents, positions)

    def _model_distances(self, models: list[dict]):
        """Their normalised OTMANN matrix, from the structural map's distance cache."""
        ids, D = self._projection_service().normalised_structural_distances([(m["id"], m["spec"]) for m in models])
        if len(ids) != len(models):
            raise ValueError(f"{len(models) - len(ids)} finished model(s) have no OTMANN graph")
        return D

    def start_workers(self, count: int) -> None:
        """Start ``count`` local queue workers on the logdir (the loader calls this)."""
        logdir = self._local_logdir()
        if count <= 0 or self._workers is not None:
            return
        if logdir is None:
            logger.warning("remap: --remap_workers needs a local --logdir; no workers started")
            return
        from remap_tb import worker_manager

        limits = self._run_limits
        self._workers = worker_manager.LocalWorkers(logdir, count, args=[
            "--max-memory", str(limits.max_memory), "--max-epochs", str(limits.max_epochs),
            "--max-run-seconds", repr(float(limits.max_run_seconds))])
        self._workers.start()
        logger.info("remap: started %d local worker(s) on %s", count, logdir)

    def close(self) -> None:
        """Stop the workers and the projection service (idempotent)."""
        with self._lock:
            workers, self._workers = self._workers, None
            projections, self._projections = self._projections, None
        if workers is not None:
            workers.stop()
        if projections is not None:
            projections.close()


_PATH_LIKE = re.compile(r"(^|/)\.\.(/|$)|^/|^[A-Za-z]:|[\\\x00-\x1f]")


def run_arg(value: str) -> str:
    """A run name from a query; path-like names (``..``, absolute, backslashes, control
    characters) are rejected. Names are only ever looked up among the provider's runs."""
    if _PATH_LIKE.search(value):
        raise HttpError(400, f"run {value[:80]!r} looks like a path; pass a run name as listed by ./models")
    return value


def _nosniff(app: Callable) -> Callable:
    """Add ``X-Content-Type-Options: nosniff`` to every response of ``app`` (TensorBoard's
    security validator asks for it; only its own ``http_util.Respond`` adds it)."""

    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            if not any(name.lower() == "x-content-type-options" for name, _ in headers):
                headers = [*headers, ("X-Content-Type-Options", "nosniff")]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


def _cached_json(memo: dict, key: tuple, build: Callable[[], Any]) -> wrappers.Response:
    """A JSON response whose encoded body is kept in ``memo`` (a snapshot's: it holds
    only for that snapshot's data) under ``key``."""
    body = memo.get(key)
    if body is None:
        body = memo[key] = json_response(build()).get_data()
    return _body_response(body)


def _body_response(body: bytes) -> wrappers.Response:
    """A JSON response of an already encoded body, never cached by the browser."""
    response = wrappers.Response(body, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _send_file(request: wrappers.Request, path: str, content_type: str, filename: str) -> wrappers.Response:
    """Stream a (possibly large) file as a download."""
    handle = open(path, "rb")
    response = wrappers.Response(wsgi.wrap_file(request.environ, handle), direct_passthrough=True,
                                 content_type=content_type)
    response.content_length = os.fstat(handle.fileno()).st_size
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _download(body: bytes, content_type: str, filename: str) -> wrappers.Response:
    response = wrappers.Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
