"""What the queue knows that a run's event log cannot say (yet): true states and fresh runs.

Two questions the plugin asks the queue (``remap_tb.queue``) on top of the runs it
reads through the data provider:

* **Which state is true?** (``queue_statuses``) A run's log says "running" until its
  worker writes a final status. A worker killed with ``-9``, or one whose claim went
  stale, never writes it; the queue then re-queues the request or gives up on it
  (``failed`` after its attempts, with the reason), or a user cancels it. The queue is
  the authority on those states, so for a run whose log is unfinished (``running``; or
  ``failed`` by an attempt the queue will retry) the queue's state wins:

  ====================  ===================  ============================================
  log says              queue says           shown
  ====================  ===================  ============================================
  running               failed               failed, with the queue's reason
  running               cancelled            cancelled, with the queue's reason
  running or failed     pending              queued ("waiting to be trained again ...")
  failed                failed               failed, with the queue's (fuller) reason
  running               running / done       the log's (the log catches up, see below)
  ====================  ===================  ============================================

* **Which runs lag behind?** (``lagging_runs``) The queue moves a request to a
  finished state right after its worker closed the run's event file, but TensorBoard
  reads new data only every ``--reload_interval`` seconds. Runs the queue finished in
  the last ``LAG_WINDOW`` seconds whose snapshot is not final yet are the ones worth
  reloading now (see ``RemapPlugin._snapshot_for``).

Torch-free and cheap: one listing of the queue's state folders, and a file read only
for runs whose log and queue disagree.
"""

from __future__ import annotations

import os
from typing import Iterable

from remap_tb import metadata
from remap_tb.queue import CANCELLED, FAILED, FINISHED, PENDING, Queue
from remap_tb.reader import RunData, Snapshot
from remap_tb.requests import is_valid_id

# Seconds after the queue finished a request during which a run whose log is not final
# counts as lagging (later, a log that never ends -- a killed worker -- is left alone).
LAG_WINDOW = 30.0
_UNFINISHED_LOG = (metadata.RUNNING, metadata.FAILED)


def queue_statuses(queue: Queue, group: Iterable[RunData]) -> dict[str, dict]:
    """The status to show for runs whose log is unfinished but whose request the queue
    has failed, cancelled or re-queued; ``{run: Status}`` (see the module docstring)."""
    candidates = {d.run: d for d in group if d.state in _UNFINISHED_LOG and is_valid_id(d.run)}
    if not candidates:
        return {}
    out = {}
    for run, state in queue.states(candidates).items():
        data = candidates[run]
        if state is None or (state not in (FAILED, CANCELLED, PENDING)) \
                or (state == CANCELLED and data.state != metadata.RUNNING):
            continue
        found = queue.get(run)
        if found is None or found[0] != state:
            continue  # it moved meanwhile: the next request sees it
        q = found[1].get("queue") or {}
        out[run] = _status(data, state, q)
    return out


def _status(data: RunData, state: str, q: dict) -> dict:
    log = data.status or {}
    epochs = log.get("epochs", data.model.get("training", {}).get("epochs", 0))
    if state == PENDING:
        last = q.get("last_error")
        reason = f"waiting to be trained again (attempt {int(q.get('attempts') or 0) + 1})" + (
            f"; last attempt: {str(last)[:500]}" if last else "")
        return {"state": "queued", "epoch": 0, "epochs": epochs, "reason": reason}
    reason = q.get("reason") or q.get("last_error")
    if not reason:
        reason = "the queue gave up on this request" if state == FAILED else "cancelled in the queue"
    return {"state": state, "epoch": log.get("epoch", 0), "epochs": epochs, "reason": str(reason)[:2000]}


def lagging_runs(queue: Queue, snap: Snapshot, logdir: str, window: float = LAG_WINDOW) -> list[str]:
    """Runs the queue finished within ``window`` seconds whose snapshot is not final yet
    (absent, or its log still says running): TensorBoard has not read their end."""
    out = []
    for rid, state in queue.finished().items():
        data = snap.models.get(rid)
        if data is not None and data.state in metadata.FINAL_STATES:
            continue
        if data is None and not os.path.isdir(os.path.join(logdir, rid)):
            continue  # never trained (cancelled before it started, failed at once): no run
        age = queue.age(state, rid)
        if age is not None and age <= window:
            out.append(rid)
    return sorted(out)


__all__ = ["LAG_WINDOW", "queue_statuses", "lagging_runs", "FINISHED"]
