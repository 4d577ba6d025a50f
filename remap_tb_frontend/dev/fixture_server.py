"""Throwaway fixture server for developing the REMAP dashboard without TensorBoard.

Serves the built bundle (../remap_tb/static/index.js) and canned JSON shaped per
remap_tb/http_api.md, under the same URL layout TensorBoard uses:

    /                                   a page that mimics TensorBoard's chrome with the plugin iframe
    /data/plugin_entry.html?name=remap  the iframe page: <base href="plugin/remap/"> and an inline
                                        module script that imports ./index.js and calls render()
                                        (with a CSP like TensorBoard's: the script is allowed by hash)
    /data/plugin/remap/<route>          the plugin routes

Synthetic models are real specs from the project's torch-free spec module
(remap_tb.spec: sampler + analysis + glyph), with made-up accuracies, curves and
layouts; about one in ten (at least two) is a branching schema 2 model (residual
blocks with ``add``, one with a ``concat`` branch). Children (the synthetic ones of
branching parents and every ``generate`` answer) come from the real operators
(remap_tb.spec.operators: ablations, residual blocks, skip connections). A fake worker thread "trains" enqueued requests (one epoch per second)
and adds them as new models, so polling and map updates can be exercised.

Issue 10 (made-up numbers in the contract's shapes): from 8 finished models on, every
``generate`` candidate carries ``predicted`` {accuracy, std, ei} (a fake surrogate: the
parent's accuracy plus a deterministic offset per spec; ei is the Gaussian expected
improvement over the best finished model within the budget) and the answer carries
``surrogate``; ``options.sort`` orders the candidates, ``options.suggest`` keeps the k
best by ei (marked ``suggested``). Enqueue items take ``init`` and ``suggested``; children
trained with ``init: "parent"`` (the default when the parent finished) record
``init: {from, layers, of, mapping}``, others ``init: null``. ``--few`` keeps fewer than 8
finished models (the "not ready" note).

    python dev/fixture_server.py --models 30 --port 6123
    python dev/fixture_server.py --models 5000 --dataset cifar10 --port 6124
    python dev/fixture_server.py --empty            # no runs: the empty state
    python dev/fixture_server.py --no-worker        # queue without a live worker

Binds 127.0.0.1 only. Not part of the product; delete freely.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import random
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from remap_tb.spec import Constraints, Limits, analyse, spec_hash  # noqa: E402
from remap_tb.spec.glyph import glyph as glyph_of  # noqa: E402
from remap_tb.spec.operators import generate as generate_children  # noqa: E402
from remap_tb.spec.sampler import sample_specs  # noqa: E402
from remap_tb.views import schema_impl  # noqa: E402

BUNDLE = REPO / "remap_tb" / "static" / "index.js"
ENTRY_SCRIPT = 'import("./index.js").then((m) => void m.render());'
PREFIX = "/data/plugin/remap/"

DATASETS = {
    "digits": ([1, 8, 8], [str(i) for i in range(10)]),
    "cifar10": ([3, 32, 32], ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]),
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def residual_spec(input_shape: list[int], num_classes: int, rng: random.Random) -> dict:
    """A small schema 2 model: a stem, 1-3 residual blocks (conv-bn-relu-conv-bn + identity,
    or a strided 1x1 projection), sometimes a concat branch, then pooling."""
    width = rng.choice([4, 8, 16])
    layers: list[dict] = [{"type": "conv2d", "filters": width, "kernel_size": 3, "padding": "same"},
                          {"type": "batchnorm"}, {"type": "activation", "fn": "relu"}]
    for b in range(rng.randint(1, 3)):
        start = len(layers) - 1  # the block's input
        down = b > 0 and rng.random() < 0.5 and input_shape[1] >= 8
        out = width * 2 if down else width
        layers += [{"type": "conv2d", "filters": out, "kernel_size": 3, "stride": 2 if down else 1, "padding": 1, "bias": False},
                   {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},
                   {"type": "conv2d", "filters": out, "kernel_size": 3, "padding": "same", "bias": False},
                   {"type": "batchnorm"}]
        main = len(layers) - 1
        shortcut = start
        if down:
            layers += [{"type": "conv2d", "filters": out, "kernel_size": 1, "stride": 2, "bias": False, "inputs": [start]},
                       {"type": "batchnorm"}]
            shortcut = len(layers) - 1
        layers += [{"type": "add", "inputs": [main, shortcut]}, {"type": "activation", "fn": "relu"}]
        width = out
    if rng.random() < 0.5:  # an inception-style pair of branches, concatenated
        start = len(layers) - 1
        layers += [{"type": "conv2d", "filters": width, "kernel_size": 1},
                   {"type": "conv2d", "filters": width, "kernel_size": 3, "padding": "same", "inputs": [start]}]
        layers += [{"type": "concat", "inputs": [len(layers) - 2, len(layers) - 1]}]
    layers.append({"type": "globalavgpool"} if rng.random() < 0.5 else {"type": "maxpool2d", "pool_size": 2})
    return {"schema": 2, "input": {"shape": list(input_shape), "num_classes": num_classes}, "layers": layers}


class Store:
    """All fixture state, guarded by one lock."""

    def __init__(self, n: int, dataset: str, seed: int, worker: bool, epochs: int, few: bool = False):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.dataset = dataset
        self.input_shape, self.class_names = DATASETS[dataset]
        self.experiment = "fp-" + hashlib.sha1(dataset.encode()).hexdigest()[:10]
        self.models: dict[str, dict] = {}
        self.order: list[str] = []
        self.positions: dict[str, dict[str, tuple[float, float]]] = {"structural": {}, "posthoc": {}}
        self.version = 1
        self.queue: dict[str, dict] = {}
        self.worker_alive = worker
        self.default_epochs = epochs
        self.counter = 0
        self.client_keys: dict[str, list[str]] = {}
        self._populate(n)
        if few:  # fewer than 8 finished models: the surrogate is not ready
            for mid in self.order[7:]:
                m = self.models[mid]
                if m["status"]["state"] == "done":
                    m["status"] = {"state": "cancelled", "epoch": 1, "epochs": 10, "reason": "cancelled (fixture --few)"}

    # ------------------------------------------------------------ synthetic data

    def _populate(self, n: int) -> None:
        if n <= 0:
            return
        n_initial = max(1, int(n * 0.75))
        res = sample_specs(n_initial, self.input_shape, len(self.class_names), seed=self.rng.randrange(10**6),
                           constraints=Constraints(max_params=5_000_000), max_tries=400 * n_initial)
        now = time.time() - 3600
        for spec in res.specs:
            self._add_model(spec, "initial", None, [], now)
        for _ in range(max(2, n_initial // 10)):  # branching (schema 2) models
            spec = residual_spec(self.input_shape, len(self.class_names), self.rng)
            if analyse(spec).ok:
                self._add_model(spec, "initial", None, [], now)
        # Some children (ablations and variations) for provenance.
        hashes = {m["spec_hash"] for m in self.models.values()}
        tries = 0
        while len(self.order) < n and tries < 50 * n:
            tries += 1
            parent = self.models[self.rng.choice(self.order)]
            layers = parent["_spec"]["layers"]
            if not layers:
                continue
            if any("inputs" in l for l in layers):  # graphs: the real operators (torch-free)
                child, origin, changes = self._graph_child(parent)
                if child is None:
                    continue
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(len(layers))
                child = dict(parent["_spec"], layers=layers[:i] + layers[i + 1:])
                origin, changes = "ablation", [f"removed layer {i} ({layers[i]['type']})"]
            else:
                child, changes = self._vary(parent["_spec"], 2)
                origin = "variation"
            if analyse(child).ok and spec_hash(child) not in hashes:
                hashes.add(spec_hash(child))
                self._add_model(child, origin, parent["id"], changes, now)
        ids = self.order
        if len(ids) >= 3:
            running = self.models[ids[-1]]
            running["status"] = {"state": "running", "epoch": 1, "epochs": 3, "reason": None}
            failed = self.models[ids[-2]]
            failed["status"] = {"state": "failed", "epoch": 2, "epochs": 10, "reason": "loss became NaN at epoch 2 (diverged); try a smaller learning rate"}
            for m in (running, failed):
                m["val_accuracy"] = m["train_accuracy"] = m["val_loss"] = m["per_class_accuracy"] = None
                self.positions["posthoc"].pop(m["id"], None)

    def _graph_child(self, parent: dict) -> tuple[dict | None, str, list[str]]:
        """One child of a schema 2 parent with ``remap_tb.spec.operators`` (a block ablation or a skip change)."""
        record = {"id": parent["id"], "spec": parent["_spec"]}
        if self.rng.random() < 0.5:
            kind, options = "ablation", {"blocks": True}
        else:
            kind, options = "variation", {"count": 1, "max_changes": 2, "seed": self.rng.randrange(10**6),
                                          "change_types": ["reparameterise", "add_skip", "remove_skip"]}
        cands = [c for c in generate_children([record], kind, options, Constraints(max_params=5_000_000))["candidates"] if c["valid"]]
        if not cands:
            return None, kind, []
        c = self.rng.choice(cands)
        return c["spec"], kind, c["changes"]

    def _vary(self, spec: dict, k: int) -> tuple[dict, list[str]]:
        layers = [dict(l) for l in spec["layers"]]
        changes = []
        for _ in range(self.rng.randint(1, k)):
            convs = [i for i, l in enumerate(layers) if l["type"] in ("conv2d", "dense")]
            if convs and self.rng.random() < 0.6:
                i = self.rng.choice(convs)
                key = "filters" if layers[i]["type"] == "conv2d" else "units"
                old = layers[i][key]
                layers[i][key] = max(2, int(old * self.rng.choice([0.5, 2])))
                changes.append(f"layer {i} {layers[i]['type']}: {key} {old} -> {layers[i][key]}")
            else:
                i = self.rng.randrange(len(layers) + 1)
                new = {"type": "activation", "fn": self.rng.choice(["relu", "elu", "tanh"])}
                if self.rng.random() < 0.4:
                    new = {"type": "dropout", "rate": 0.25}
                layers.insert(i, new)
                changes.append(f"inserted {new['type']} at {i}")
        return dict(spec, layers=layers), changes

    def _features(self, spec: dict, params: int) -> tuple[float, float]:
        types = [l["type"] for l in spec["layers"]]
        conv = types.count("conv2d")
        dense = types.count("dense")
        pool = sum(t.endswith("pool2d") or t == "globalavgpool" for t in types)
        other = len(types) - conv - dense - pool
        return (conv * 1.2 - dense * 1.0 + 0.3 * pool, 0.6 * len(types) - 0.7 * pool + 0.25 * other + 0.15 * math.log10(max(params, 10)))

    def _init_record(self, spec: dict, parent: str | None, init: str | None) -> dict | None:
        """What a child inherits (fixture: layers with parameters of the same type and fields, in order)."""
        if parent is None or parent not in self.models or (init or "parent") != "parent":
            return None
        if self.models[parent]["status"]["state"] != "done":
            return None
        learnable = ("conv2d", "dense", "batchnorm")
        child = [(i, l) for i, l in enumerate(spec["layers"]) if l["type"] in learnable]
        par = [(i, l) for i, l in enumerate(self.models[parent]["_spec"]["layers"]) if l["type"] in learnable]
        mapping, j = [], 0
        for ci, cl in child:
            for k in range(j, len(par)):
                if par[k][1] == cl:
                    mapping.append([ci, par[k][0]])
                    j = k + 1
                    break
        return {"from": parent, "layers": len(mapping), "of": len(child), "mapping": mapping}

    def _add_model(self, spec: dict, origin: str, parent: str | None, changes: list[str], t: float,
                   init: str | None = None) -> dict:
        a = analyse(spec, Limits(max_params=None, max_depth=None))
        self.counter += 1
        mid = f"m{self.counter:05d}"
        params = a.total_params or 0
        depth = len(spec["layers"])
        r = self.rng
        types = [l["type"] for l in spec["layers"]]
        quality = 0.55 + 0.06 * math.log10(max(params, 10)) + 0.04 * min(types.count("conv2d"), 3) - 0.03 * max(0, depth - 8)
        if parent and parent in self.models and self.models[parent]["val_accuracy"] is not None:
            quality = 0.6 * quality + 0.4 * (self.models[parent]["val_accuracy"] + r.gauss(0, 0.02))
        val = max(0.1, min(0.995, quality + r.gauss(0, 0.05)))
        per_class = [max(0.0, min(1.0, val + r.gauss(0, 0.06))) for _ in self.class_names]
        glyph = glyph_of(spec, a)
        m = {
            "id": mid, "run": mid, "parent": parent, "origin": origin, "changes": changes,
            "status": {"state": "done", "epoch": 10, "epochs": 10, "reason": None},
            "params": params, "depth": depth, "spec_hash": spec_hash(spec),
            "train_accuracy": min(1.0, val + abs(r.gauss(0.03, 0.02))), "val_accuracy": val,
            "val_loss": -math.log(max(val, 0.05)) * 1.1, "per_class_accuracy": per_class,
            "glyph": glyph, "created": iso(t), "wall_time": t + 60,
            "init": self._init_record(spec, parent, init),
            # fixture-only (stripped in summaries)
            "_spec": spec, "_analysis": a,
        }
        self.models[mid] = m
        self.order.append(mid)
        fx, fy = self._features(spec, params)
        if parent and parent in self.positions["structural"]:
            px, py = self.positions["structural"][parent]
            self.positions["structural"][mid] = (px + r.gauss(0, 0.25), py + r.gauss(0, 0.25))
        else:
            self.positions["structural"][mid] = (fx + r.gauss(0, 0.6), fy + r.gauss(0, 0.6))
        pc = per_class
        self.positions["posthoc"][mid] = ((pc[0] - pc[1]) * 3 + r.gauss(0, 0.15) + val * 4, (pc[2] - pc[3]) * 3 + r.gauss(0, 0.15) - val * 2)
        return m

    # ------------------------------------------------------------ responses

    @staticmethod
    def summary(m: dict) -> dict:
        return {k: v for k, v in m.items() if not k.startswith("_")}

    def detail(self, m: dict) -> dict:
        a = m["_analysis"]
        spec = m["_spec"]
        r = random.Random(m["id"])
        epochs = m["status"]["epoch"]
        val = m["val_accuracy"]
        curves = []
        for e in range(1, epochs + 1):
            f = 1 - math.exp(-e / 2.5)
            va = None if val is None else max(0.1, val * (0.55 + 0.45 * f) + r.gauss(0, 0.004))
            ta = None if val is None else min(1.0, (m["train_accuracy"] or val) * (0.5 + 0.5 * f))
            curves.append({"step": e, "train_loss": 2.3 * (1 - f) + 0.1, "train_accuracy": ta,
                           "val_loss": None if va is None else -math.log(va) * 1.1, "val_accuracy": va})
        confusion = None
        if m["per_class_accuracy"]:
            k = len(self.class_names)
            confusion = []
            for i, acc in enumerate(m["per_class_accuracy"]):
                total = 180
                right = int(round(acc * total))
                row = [0] * k
                row[i] = right
                for _ in range(total - right):
                    j = r.randrange(k - 1)
                    row[j if j < i else j + 1] += 1
                confusion.append(row)
        chain = []
        cur = m
        while cur is not None and len(chain) < 50:
            chain.append({"id": cur["id"], "origin": cur["origin"], "changes": cur["changes"], "val_accuracy": cur["val_accuracy"]})
            cur = self.models.get(cur["parent"]) if cur["parent"] else None
        d = self.summary(m)
        d.update({
            "spec": spec,
            "layers": [info.to_json() for info in a.layers],
            "classifier_params": a.classifier_params,
            "curves": curves,
            "confusion": confusion,
            "provenance_chain": chain,
            "training": {"epochs": m["status"]["epochs"], "batch_size": 64, "lr": 0.001, "optimizer": "adam", "seed": 0},
            "dataset": {"name": self.dataset, "classes": self.class_names},
            "test": None,
        })
        return d

    def projection(self, kind: str) -> dict:
        if kind == "size":
            pts = [{"id": i, "x": math.log10(max(self.models[i]["params"], 1)), "y": self.models[i]["val_accuracy"]}
                   for i in self.order if self.models[i]["val_accuracy"] is not None]
            return {"experiment": self.experiment, "kind": kind, "version": self.version, "computing": False,
                    "points": pts, "stress": None, "axes": {"x": "parameters (log10)", "y": "validation accuracy"}, "error": None}
        pos = self.positions["structural" if kind == "structural_normalised" else kind]
        pts = [{"id": i, "x": pos[i][0], "y": pos[i][1]} for i in self.order if i in pos]
        return {"experiment": self.experiment, "kind": kind, "version": self.version, "computing": False,
                "points": pts, "stress": 0.123, "axes": {"x": "", "y": ""}, "error": None}

    def compare(self, runs: list[str]) -> dict:
        ms = [self.models[r] for r in runs]
        n = len(ms)

        def lev(a: list[str], b: list[str]) -> int:
            d = list(range(len(b) + 1))
            for i, x in enumerate(a, 1):
                prev, d[0] = d[0], i
                for j, y in enumerate(b, 1):
                    prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
            return d[-1]

        sig = [[json.dumps(l, sort_keys=True) for l in m["_spec"]["layers"]] for m in ms]
        st = [[float(lev(sig[i], sig[j]) * 37.5) for j in range(n)] for i in range(n)]
        stn = [[round(st[i][j] / (75.0 * (len(sig[i]) + len(sig[j]) + 2)), 4) for j in range(n)] for i in range(n)]
        pred = [[None if (ms[i]["val_accuracy"] is None or ms[j]["val_accuracy"] is None) else
                 (0.0 if i == j else round(abs(ms[i]["val_accuracy"] - ms[j]["val_accuracy"]) + 0.04, 4)) for j in range(n)] for i in range(n)]
        return {"models": [self.detail(m) for m in ms], "structural": st, "structural_normalised": stn, "prediction": pred}

    def validate(self, body: dict) -> dict:
        spec = body.get("spec", body) if isinstance(body, dict) else body
        max_params = body.get("max_params") if isinstance(body, dict) and "spec" in body else None
        a = analyse(spec)
        out = a.to_json()
        out["max_params"] = max_params
        if max_params is not None and a.total_params is not None and a.total_params > max_params:
            out["valid"] = False
            text = f"the model has {a.total_params:,} parameters, over the budget of {max_params:,}"
            out["errors"].append({"index": None, "type": None, "field": "params", "message": text, "text": f"params: {text}"})
        return out

    def generate(self, body: dict) -> dict:
        parents = body.get("parents")
        kind = body.get("kind")
        if not isinstance(parents, list) or not parents:
            raise ValueError("parents must be a non-empty list of run names")
        if kind not in ("ablation", "variation"):
            raise ValueError("kind must be 'ablation' or 'variation'")
        for p in parents:
            if p not in self.models:
                raise LookupError(f"unknown run {p!r}")
        cons = Constraints.from_json(body.get("constraints"))
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise ValueError("options must be an object")
        # The real operators (remap_tb.spec.operators, torch-free), as the plugin's route calls them:
        # chains and graphs alike (residual blocks, skip connections).
        records = [{"id": p, "spec": self.models[p]["_spec"]} for p in parents]
        existing = {m["spec_hash"] for m in self.models.values()}
        existing |= {spec_hash(r["_spec"]) for r in self.queue.values() if r["state"] in ("pending", "running")}
        options = dict(options or {})
        sort = options.pop("sort", None)
        suggest = options.pop("suggest", None)
        if sort not in (None, "predicted", "ei"):
            raise ValueError(f"options.sort must be 'predicted' or 'ei', got {sort!r}")
        if suggest is not None and (not isinstance(suggest, int) or isinstance(suggest, bool) or not 1 <= suggest <= 20):
            raise ValueError(f"options.suggest must be an integer 1..20, got {suggest!r}")
        try:
            out = generate_children(records, kind, options, cons, existing)
        except TypeError as e:
            raise ValueError(str(e)) from None
        return self._predict(out, cons, sort, suggest)

    def _predict(self, out: dict, cons: Constraints, sort: str | None, suggest: int | None) -> dict:
        """The fake surrogate: predicted {accuracy, std, ei} per candidate, sort, suggest."""
        done = [m for m in self.models.values() if m["status"]["state"] == "done" and m["val_accuracy"] is not None]
        ready = len(done) >= 8
        within = [m["val_accuracy"] for m in done if cons.max_params is None or m["params"] <= cons.max_params]
        best = max(within) if within else None
        out["surrogate"] = {"n_models": len(done), "ready": ready, "best": best if ready else None,
                            "reason": None if ready else f"{len(done)} finished models; predictions need 8"}
        for c in out["candidates"]:
            c["predicted"] = None
            if not ready or not c["valid"]:
                continue
            parent = self.models.get(c["parent"])
            base = parent["val_accuracy"] if parent and parent["val_accuracy"] is not None else sum(within or [0.5]) / max(1, len(within))
            r = random.Random(c["key"])
            mean = max(0.05, min(0.99, base + r.gauss(-0.015, 0.03)))
            std = 0.005 + 0.04 * r.random()
            ei = 0.0
            if best is not None:
                z = (mean - best) / std
                ei = (mean - best) * 0.5 * (1 + math.erf(z / math.sqrt(2))) + std * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
            c["predicted"] = {"accuracy": mean, "std": std, "ei": max(0.0, ei)}
        key = "ei" if suggest else sort
        if key:
            name = "accuracy" if key == "predicted" else "ei"
            out["candidates"].sort(key=lambda c: -(c["predicted"] or {}).get(name, -1.0))
        if suggest:
            fine = [c for c in out["candidates"] if c["valid"] and not c.get("reason")]
            out["candidates"] = [dict(c, suggested=True) for c in fine[:suggest]]
            out["summary"] = (f"{len(out['candidates'])} of {out['made']} generated by expected improvement"
                              if ready else f"{len(out['candidates'])} of {out['made']} generated (no surrogate yet: as generated)")
        return out

    def enqueue(self, body: dict) -> dict:
        key = body.get("client_key")
        if key and key in self.client_keys:
            return {"request_ids": self.client_keys[key]}
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("items must be a non-empty list")
        ids = []
        for it in items:
            a = analyse(it.get("spec"))
            if not a.ok:
                raise ValueError(f"item {len(ids)}: {a.problems[0]}")
        for it in items:
            self.counter += 1
            rid = f"m{self.counter:05d}"
            if it.get("init") not in (None, "parent", "scratch"):
                raise ValueError(f"item {len(ids)}: init must be 'parent' or 'scratch', got {it.get('init')!r}")
            self.queue[rid] = {"id": rid, "state": "pending", "origin": it.get("origin", "handcrafted"), "parent": it.get("parent"),
                               "_init": it.get("init"), "_suggested": bool(it.get("suggested")),
                               "changes": it.get("changes") or [], "epoch": 0, "epochs": int(body.get("epochs") or self.default_epochs),
                               "attempts": 0, "priority": 0, "error": None, "params": analyse(it["spec"]).total_params,
                               "enqueued": iso(time.time() + len(ids) * 1e-3), "worker": None, "_spec": it["spec"]}
            ids.append(rid)
        if key:
            self.client_keys[key] = ids
        return {"request_ids": ids}

    def queue_json(self) -> dict:
        reqs = [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.queue.values()]
        workers = [{"id": "w1", "host": "localhost", "pid": 4242, "last_seen": time.time(), "alive": True}] if self.worker_alive else \
                  [{"id": "w0", "host": "localhost", "pid": 4000, "last_seen": time.time() - 600, "alive": False}]
        return {"requests": reqs, "workers": workers, "worker_alive": self.worker_alive}

    # ------------------------------------------------------------ fake worker

    def tick(self) -> None:
        if not self.worker_alive:
            return
        running = [r for r in self.queue.values() if r["state"] == "running"]
        if not running:
            pending = sorted((r for r in self.queue.values() if r["state"] == "pending"), key=lambda r: (-r["priority"], r["enqueued"]))
            if pending:
                r = pending[0]
                r.update(state="running", epoch=0, attempts=r["attempts"] + 1, worker="w1")
            return
        r = running[0]
        r["epoch"] += 1
        if r["epoch"] >= r["epochs"]:
            r["state"] = "done"
            saved = self.counter
            self.counter = int(r["id"][1:]) - 1
            m = self._add_model(r["_spec"], r["origin"], r["parent"], r["changes"], time.time(), r.get("_init"))
            self.counter = max(saved, self.counter)
            m["status"] = {"state": "done", "epoch": r["epochs"], "epochs": r["epochs"], "reason": None}
            self.version += 1


def make_handler(store: Store, empty: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        def send_json(self, obj, status=200, extra=None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def send_body(self, body: bytes, ctype: str, status=200, extra=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def error(self, status, msg):
            self.send_json({"error": msg}, status)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def handle_any(self, method):
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            path = url.path
            if path == "/favicon.ico":
                return self.send_body(b"", "image/x-icon", status=204)
            if path in ("/", "/index.html"):
                return self.send_body(TOP_PAGE.encode(), "text/html; charset=utf-8")
            if path == "/data/plugin_entry.html":
                digest = base64.b64encode(hashlib.sha256(ENTRY_SCRIPT.encode()).digest()).decode()
                csp = ("default-src 'self'; font-src 'self' data:; frame-ancestors *; frame-src 'self'; "
                       "img-src 'self' data: blob:; object-src 'none'; style-src 'self' data: 'unsafe-inline'; "
                       f"connect-src 'self'; script-src 'self' 'unsafe-eval' 'sha256-{digest}'")
                html = (f'<!DOCTYPE html>\n<head><base href="plugin/{q.get("name", "remap")}/" /></head>\n'
                        f'<body><script type="module">{ENTRY_SCRIPT}</script></body>\n')
                return self.send_body(html.encode(), "text/html; charset=utf-8", extra={"Content-Security-Policy": csp})
            if not path.startswith(PREFIX):
                return self.error(404, f"no such path {path}")
            route = path[len(PREFIX):]
            if route == "index.js":
                if not BUNDLE.exists():
                    return self.error(404, "bundle not built: run npm run build in remap_tb_frontend")
                return self.send_body(BUNDLE.read_bytes(), "text/javascript; charset=utf-8")
            posts = {"validate", "generate", "enqueue", "cancel", "reorder"}
            gets = {"experiments", "models", "projection", "model", "compare", "queue", "export", "schema"}
            if route not in posts | gets:
                return self.error(404, f"unknown route {route!r}")
            if (route in posts) != (method == "POST"):
                return self.error(405, f"{route} takes {'POST' if route in posts else 'GET'}")
            body = None
            if method == "POST":
                if not self.headers.get("Content-Type", "").startswith("application/json") or self.headers.get("X-Requested-With") != "remap":
                    return self.error(403, "POST needs Content-Type: application/json and X-Requested-With: remap")
                n = int(self.headers.get("Content-Length") or 0)
                if n > 1_048_576:
                    return self.error(413, "request body over 1 MB")
                try:
                    body = json.loads(self.rfile.read(n) or b"null")
                except ValueError as e:
                    return self.error(400, f"body is not JSON: {e}")
            try:
                with store.lock:
                    return self.route(route, q, body)
            except (ValueError, KeyError) as e:
                return self.error(400, str(e.args[0]) if e.args else repr(e))
            except LookupError as e:
                return self.error(404, str(e.args[0]) if e.args else repr(e))

        def model_or_404(self, run):
            if run not in store.models:
                raise LookupError(f"unknown run {run!r}")
            return store.models[run]

        def route(self, route, q, body):
            s = store
            if route == "experiments":
                if empty:
                    return self.send_json({"experiments": [], "unreadable": []})
                return self.send_json({"experiments": [{"id": s.experiment, "dataset": s.dataset, "class_names": s.class_names,
                                                        "n_models": len(s.order), "input_shape": s.input_shape,
                                                        "num_classes": len(s.class_names), "fingerprint": {"dataset": s.dataset}}],
                                       "unreadable": [{"run": "broken_run", "reason": "no remap/model record (not a REMAP run?)"}] if len(s.order) < 100 else []})
            if route == "models":
                if q.get("experiment") != s.experiment:
                    raise LookupError(f"unknown experiment {q.get('experiment')!r}")
                return self.send_json({"experiment": s.experiment, "class_names": s.class_names,
                                       "models": [s.summary(s.models[i]) for i in s.order]})
            if route == "projection":
                kind = q.get("kind", "structural")
                if kind not in ("structural", "structural_normalised", "posthoc", "size"):
                    raise ValueError(f"kind must be structural, structural_normalised, posthoc or size, got {kind!r}")
                return self.send_json(s.projection(kind))
            if route == "model":
                return self.send_json(s.detail(self.model_or_404(q.get("run", ""))))
            if route == "compare":
                runs = [r for r in q.get("runs", "").split(",") if r]
                if not 2 <= len(runs) <= 8:
                    raise ValueError(f"compare takes 2 to 8 runs, got {len(runs)}")
                for r in runs:
                    self.model_or_404(r)
                return self.send_json(s.compare(runs))
            if route == "queue":
                return self.send_json(s.queue_json())
            if route == "schema":
                return self.send_json(schema_impl(None))
            if route == "export":
                m = self.model_or_404(q.get("run", ""))
                fmt = q.get("format", "json")
                if fmt == "json":
                    return self.send_body(json.dumps(m["_spec"], indent=2).encode(), "application/json",
                                          extra={"Content-Disposition": f'attachment; filename="{m["run"]}.json"'})
                if fmt == "pytorch":
                    src = f"# fixture export of {m['run']}\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    pass\n"
                    return self.send_body(src.encode(), "text/x-python",
                                          extra={"Content-Disposition": f'attachment; filename="{m["run"]}.py"'})
                if fmt == "state_dict":
                    raise LookupError(f"run {m['run']} has no saved weights (fixture)")
                raise ValueError("format must be json, pytorch or state_dict")
            if route == "validate":
                return self.send_json(s.validate(body))
            if route == "generate":
                return self.send_json(s.generate(body))
            if route == "enqueue":
                return self.send_json(s.enqueue(body))
            if route == "cancel":
                r = s.queue.get((body or {}).get("id"))
                if not r:
                    raise LookupError("unknown request id")
                if r["state"] in ("pending", "running"):
                    r["state"] = "cancelled"
                return self.send_json({"id": r["id"], "state": r["state"]})
            if route == "reorder":
                r = s.queue.get((body or {}).get("id"))
                if not r:
                    raise LookupError("unknown request id")
                r["priority"] = int(body.get("priority", 0))
                return self.send_json({"id": r["id"], "priority": r["priority"]})
            raise LookupError(route)

    return Handler


TOP_PAGE = """<!DOCTYPE html><html><head><title>TensorBoard (fixture)</title>
<style>body{margin:0;font-family:Roboto,Arial,sans-serif;display:flex;flex-direction:column;height:100vh}
header{background:#f57c00;color:#fff;height:48px;display:flex;align-items:center;padding:0 16px;gap:24px;font-size:14px}
header b{font-size:18px;font-weight:500} header span{opacity:.75} header span.on{opacity:1;border-bottom:2px solid #fff;padding-bottom:2px}
iframe{flex:1;border:0;width:100%}</style></head>
<body><header><b>TensorBoard</b><span>SCALARS</span><span>HPARAMS</span><span class="on">REMAP</span></header>
<iframe src="data/plugin_entry.html?name=remap"></iframe></body></html>"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=6123)
    ap.add_argument("--models", type=int, default=30)
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2, help="epochs of enqueued requests (fake worker: 1 per second)")
    ap.add_argument("--no-worker", action="store_true")
    ap.add_argument("--empty", action="store_true")
    ap.add_argument("--few", action="store_true", help="fewer than 8 finished models (no predicted accuracy yet)")
    args = ap.parse_args()
    store = Store(0 if args.empty else args.models, args.dataset, args.seed, not args.no_worker, args.epochs, args.few)

    def worker():
        while True:
            time.sleep(1.0)
            with store.lock:
                store.tick()

    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(store, args.empty))
    print(f"fixture: {len(store.order)} models on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
