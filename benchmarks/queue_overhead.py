"""Queue overhead and worker idle cost; prints figures.

    python benchmarks/queue_overhead.py [--requests 200] [--idle-seconds 10]

1. Queue operations alone, per request: enqueue -> claim -> heartbeat -> finish.
2. A real worker process draining N requests with a 0-epoch training config:
   wall time per request, and that minus the in-process cost of ``train`` on the
   same requests (the queue's share).
3. Pick-up latency of an idle worker (enqueue -> done for one 0-epoch request).
4. CPU used by an idle worker, in % of one core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from remap_tb.queue import DONE, Queue  # noqa: E402
from remap_tb.requests import make_request  # noqa: E402

SPEC = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}


def requests(n: int, epochs: int = 0) -> list[dict]:
    return [make_request(SPEC, dataset={"name": "digits"}, training={"epochs": epochs},
                         provenance={"origin": "handcrafted"}) for _ in range(n)]


def queue_ops(folder: str, n: int) -> float:
    queue = Queue(folder)
    batch = requests(n)
    started = time.perf_counter()
    for request in batch:
        queue.enqueue([request])
        claim = queue.claim("bench")
        queue.heartbeat(claim.id, "bench", claim.attempt, 0, 0)
        queue.finish(claim, DONE)
    return (time.perf_counter() - started) / n


def train_in_process(folder: str, n: int) -> float:
    from trainer.train import DatasetCache, train

    cache = DatasetCache()
    train(requests(1)[0], folder, datasets=cache)  # warm up: imports, dataset, first kernels
    batch = requests(n)
    started = time.perf_counter()
    for request in batch:
        train(request, folder, datasets=cache)
    return (time.perf_counter() - started) / n


def worker_drain(folder: str, n: int) -> float:
    queue = Queue(folder)
    queue.enqueue(requests(1))
    worker = start_worker(folder)
    wait(lambda: queue.counts()[DONE] == 1, 120)  # started and warm
    queue.enqueue(requests(n))
    started = time.perf_counter()
    wait(lambda: queue.counts()[DONE] == n + 1, 600, poll=0.005)
    elapsed = time.perf_counter() - started
    stop(worker)
    return elapsed / n


def pickup_latency(folder: str, rounds: int = 5) -> list[float]:
    queue = Queue(folder)
    worker = start_worker(folder)
    queue.enqueue(requests(1))
    wait(lambda: queue.counts()[DONE] == 1, 120)
    latencies = []
    for i in range(rounds):
        time.sleep(3)  # let the worker back off to its slowest poll
        started = time.perf_counter()
        queue.enqueue(requests(1))
        wait(lambda: queue.counts()[DONE] == i + 2, 60, poll=0.002)
        latencies.append(time.perf_counter() - started)
    stop(worker)
    return latencies


def idle_cpu(folder: str, seconds: float) -> float:
    worker = start_worker(folder)
    queue = Queue(folder)
    wait(queue.worker_alive, 60)
    time.sleep(1.0)
    before = cpu_seconds(worker.pid)
    time.sleep(seconds)
    used = cpu_seconds(worker.pid) - before
    stop(worker)
    return 100.0 * used / seconds


def start_worker(folder: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trainer.worker", folder, "--quiet"], cwd=ROOT)


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    worker.wait(timeout=30)


def wait(condition, timeout: float, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(poll)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="remap-queue-bench-")
    try:
        n = args.requests
        ops = queue_ops(os.path.join(root, "ops"), n)
        print(f"queue operations (enqueue, claim, heartbeat, finish): {ops * 1000:.2f} ms per request")
        train_cost = train_in_process(os.path.join(root, "train"), n)
        print(f"train() of a 0-epoch request in process:              {train_cost * 1000:.2f} ms per request")
        drain = worker_drain(os.path.join(root, "drain"), n)
        print(f"worker draining {n} 0-epoch requests:                  {drain * 1000:.2f} ms per request "
              f"(queue share {max(drain - train_cost, 0) * 1000:.2f} ms)")
        latencies = pickup_latency(os.path.join(root, "latency"))
        print(f"idle worker, enqueue -> done of one 0-epoch request:  "
              f"{', '.join(f'{v * 1000:.0f}' for v in latencies)} ms (poll backoff 0.2 s -> 1 s)")
        cpu = idle_cpu(os.path.join(root, "idle"), args.idle_seconds)
        print(f"idle worker CPU over {args.idle_seconds:.0f} s:                         {cpu:.2f} % of one core")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
