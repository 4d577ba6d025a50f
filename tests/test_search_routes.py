"""The local-search and queue routes over HTTP (werkzeug test client), and a fuzz of bad input."""

from __future__ import annotations

import json
import os
import random

import pytest
from werkzeug.test import Client

from remap_tb import metadata
from remap_tb.queue import DONE, PENDING, Queue
from remap_tb.search_routes import MAX_ITEMS, make_routes
from remap_tb.spec import Constraints, spec_hash

from tests.fixtures_runs import BASE, CHILD, model_record

HEADERS = {"X-Requested-With": "remap"}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Model records of two runs trained by the project's trainer (0 epochs: quick)."""
    from remap_tb.requests import make_request
    from trainer.train import DatasetCache, train

    logdir = str(tmp_path_factory.mktemp("trained"))
    cache = DatasetCache()
    training = {"epochs": 0, "batch_size": 128, "lr": 0.01}
    train(make_request(BASE, {"name": "digits"}, training, {"origin": "initial"}, request_id="base"), logdir,
          datasets=cache)
    train(make_request(CHILD, {"name": "digits"}, training,
                       {"origin": "ablation", "parent": "base", "changes": ["removed layer 1"]},
                       request_id="child"), logdir, datasets=cache)
    return {run: model_record(str(logdir), run) for run in ("base", "child")}


@pytest.fixture
def server(tmp_path, records):
    logdir = tmp_path / "logdir"
    logdir.mkdir()
    calls = []

    def fake_generate(parents, kind, options, constraints, existing_hashes, limits):
        calls.append((parents, kind, options, constraints, existing_hashes))
        if options.get("count") == "explode":
            raise ValueError("options.count must be an integer")
        return {"candidates": [], "made": 0, "wanted": options.get("count", 5), "summary": "made 0 of 5"}

    routes = make_routes(str(logdir), records.get, lambda: list(records.values()), generate=fake_generate)
    return Server(Client(_app(routes)), logdir, calls)


class Server:
    def __init__(self, client, logdir, calls):
        self.client, self.logdir, self.calls = client, logdir, calls

    def post(self, route, body, headers=HEADERS, raw=None, content_type="application/json"):
        data = raw if raw is not None else json.dumps(body)
        response = self.client.post(route, data=data, headers=headers, content_type=content_type)
        return response.status_code, response.get_json(silent=True)

    def get(self, route):
        response = self.client.get(route)
        return response.status_code, response.get_json(silent=True)

    def files(self):
        return sorted(os.path.relpath(os.path.join(d, n), self.logdir)
                      for d, _, names in os.walk(self.logdir) for n in names)


def write_experiment(logdir, record, training=None):
    folder = logdir / metadata.STATE_DIR / "experiments"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{record['fingerprint']['id']}.json").write_text(json.dumps({
        "version": 1, "dataset": record["dataset"], "training": training or record["training"],
        "constraints": {}, "fingerprint": record["fingerprint"]}))
    return record["fingerprint"]["id"]


# ---------------------------------------------------------------------- generate

def test_generate_passes_parents_constraints_and_known_hashes_to_the_operators(server, records):
    Queue(server.logdir).enqueue([_request(CHILD, epochs=1)])
    code, body = server.post("/generate", {"parents": ["base", "child"], "kind": "variation",
                                           "options": {"count": 3}, "constraints": {"max_params": 5000}})
    assert code == 200 and body == {"candidates": [], "made": 0, "wanted": 3, "summary": "made 0 of 5",
                                    "surrogate": {"n_models": 0, "ready": False, "best": None,
                                                  "reason": "this server does not say which models finished"}}
    [(parents, kind, options, constraints, existing)] = server.calls
    assert [p["id"] for p in parents] == ["base", "child"] and kind == "variation" and options == {"count": 3}
    assert constraints == Constraints(max_params=5000)
    assert {records["base"]["spec_hash"], records["child"]["spec_hash"], spec_hash(CHILD)} <= existing


@pytest.mark.parametrize("body, code, words", [
    ({"parents": ["nope"], "kind": "ablation"}, 404, "no model in run"),
    ({"parents": [], "kind": "ablation"}, 400, "parents"),
    ({"parents": ["base"], "kind": "mutation"}, 400, "kind must be one of"),
    ({"parents": ["base"], "kind": "ablation", "constraints": {"max_params": -1}}, 400, "max_params"),
    ({"parents": ["base"], "kind": "ablation", "options": [1]}, 400, "options must be an object"),
    ({"parents": ["base"], "kind": "ablation", "options": {"count": "explode"}}, 400, "count"),
    ({"parents": ["base"], "kind": "ablation", "extra": 1}, 400, "unknown field"),
])
def test_generate_refuses_bad_input_with_a_message(server, body, code, words):
    status, answer = server.post("/generate", body)
    assert status == code and words in answer["error"]


def test_generate_with_the_real_operators(tmp_path, records):
    from remap_tb.spec import operators
    routes = make_routes(str(tmp_path), records.get, lambda: list(records.values()))
    client = Client(_app(routes))
    response = client.post("/generate", json={"parents": ["base"], "kind": "ablation"}, headers=HEADERS)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert {"candidates", "made", "wanted", "summary"} <= set(body) and operators is not None
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- enqueue

def test_enqueue_children_take_the_parents_dataset_and_training(server, records):
    code, body = server.post("/enqueue", {"items": [
        {"spec": CHILD, "parent": "base", "origin": "ablation", "changes": ["removed layer 1"]}], "epochs": 4})
    assert code == 200 and len(body["request_ids"]) == 1
    state, entry = Queue(server.logdir).get(body["request_ids"][0])
    request = entry["request"]
    assert state == PENDING and request["provenance"] == {"parent": "base", "origin": "ablation",
                                                          "changes": ["removed layer 1"]}
    assert request["dataset"] == records["base"]["dataset"]
    assert request["training"] == {**records["base"]["training"], "epochs": 4}
    code, listing = server.get("/queue")
    assert code == 200 and listing["requests"][0]["id"] == body["request_ids"][0]
    assert listing["requests"][0]["params"] == entry["queue"]["params"] and listing["worker_alive"] is False


def test_enqueue_handcrafted_models_use_the_experiment_config(server, records):
    experiment = write_experiment(server.logdir, records["base"], training={**records["base"]["training"],
                                                                            "lr": 0.005})
    code, body = server.post("/enqueue", {"items": [{"spec": BASE, "origin": "handcrafted"}]})
    assert code == 200
    request = Queue(server.logdir).get(body["request_ids"][0])[1]["request"]
    assert request["training"]["lr"] == 0.005 and request["provenance"]["parent"] is None
    code, body = server.post("/enqueue", {"items": [{"spec": BASE, "origin": "handcrafted"}],
                                          "experiment": experiment})
    assert code == 200
    code, body = server.post("/enqueue", {"items": [{"spec": BASE, "origin": "handcrafted"}],
                                          "experiment": "0123456789abcdef"})
    assert code == 404 and "no experiment" in body["error"]


def test_enqueue_without_an_experiment_file_falls_back_to_a_model_of_it(server, records):
    code, body = server.post("/enqueue", {"items": [{"spec": BASE, "origin": "handcrafted"}]})
    assert code == 200
    request = Queue(server.logdir).get(body["request_ids"][0])[1]["request"]
    assert request["dataset"] == records["base"]["dataset"]


def test_enqueue_is_idempotent_per_client_key(server):
    body = {"items": [{"spec": CHILD, "parent": "base", "origin": "ablation"}], "client_key": "k-1"}
    code, first = server.post("/enqueue", body)
    files = server.files()
    code2, second = server.post("/enqueue", body)
    assert code == code2 == 200 and first == second and server.files() == files
    code, answer = server.post("/enqueue", {**body, "epochs": 2})
    assert code == 400 and "client_key" in answer["error"] and server.files() == files


@pytest.mark.parametrize("raw", [
    b'{"items": [{"spec": null, "parent": "base", "origin": "ablation"}], "client_key": "\\ud800"}',
    b'{"items": [{"spec": null, "parent": "base", "origin": "ablation", "changes": ["\\udfff x"]}]}',
    b'{"\\ud800": 1}',
])
def test_a_lone_surrogate_in_any_string_is_a_400_not_a_500(server, raw):
    raw = raw.replace(b"null", json.dumps(CHILD).encode())
    files = server.files()
    for route in ("/enqueue", "/generate", "/cancel"):
        code, answer = server.post(route, None, raw=raw)
        assert code == 400 and "lone UTF-16 surrogate" in answer["error"], (route, code, answer)
    assert server.files() == files


@pytest.mark.parametrize("body, code, words", [
    ({"items": [{"spec": {**BASE, "input": {"shape": [3, 32, 32], "num_classes": 10}}, "parent": "base",
                 "origin": "ablation"}]}, 400, "input shape"),
    ({"items": [{"spec": {**BASE, "input": {"shape": [1, 8, 8], "num_classes": 3}}, "parent": "base",
                 "origin": "ablation"}]}, 400, "num_classes"),
    ({"items": [{"spec": {**BASE, "layers": [{"type": "conv2d", "filters": 0, "kernel_size": 3}]},
                 "parent": "base", "origin": "variation"}]}, 400, "items[0]: spec"),
    ({"items": [{"spec": BASE, "parent": "ghost", "origin": "variation"}]}, 404, "no model"),
    ({"items": [{"spec": BASE, "parent": "base", "origin": "mutant"}]}, 400, "origin must be one of"),
    ({"items": [{"spec": BASE, "parent": "base", "origin": "ablation"}], "epochs": 10**9}, 400, "epochs"),
    ({"items": [{"spec": BASE, "parent": "base", "origin": "ablation"}] * (MAX_ITEMS + 1)}, 400, "1 to 200"),
    ({"items": []}, 400, "items"),
    ({"items": [{"spec": BASE, "parent": "../../etc", "origin": "ablation"}]}, 404, "no model"),
    ({"items": [{"spec": BASE, "origin": "handcrafted"}], "experiment": "../x"}, 400, "experiment"),
])
def test_enqueue_refuses_bad_items_and_writes_nothing(server, body, code, words):
    status, answer = server.post("/enqueue", body)
    assert status == code and words in answer["error"], answer
    assert server.files() == []


def test_enqueue_of_a_parentless_model_with_two_experiments_needs_one_named(server, records):
    write_experiment(server.logdir, records["base"])
    other = {**records["base"], "fingerprint": {**records["base"]["fingerprint"], "id": "ffff0000ffff0000"}}
    write_experiment(server.logdir, other)
    code, answer = server.post("/enqueue", {"items": [{"spec": BASE, "origin": "handcrafted"}]})
    assert code == 400 and "experiment" in answer["error"]


# ---------------------------------------------------------------------- queue, cancel, reorder

def test_cancel_and_reorder(server):
    queue = Queue(server.logdir)
    ids = queue.enqueue([_request(BASE), _request(CHILD), _request(BASE, epochs=2)]).ids
    assert server.post("/reorder", {"id": ids[2], "priority": 7}) == (200, {"id": ids[2], "priority": 7})
    assert [r["id"] for r in server.get("/queue")[1]["requests"]] == [ids[2], ids[0], ids[1]]
    assert server.post("/cancel", {"id": ids[0]}) == (200, {"id": ids[0], "state": "cancelled"})
    claim = queue.claim("w")
    assert server.post("/cancel", {"id": claim.id}) == (200, {"id": claim.id, "state": "running"})
    code, answer = server.post("/reorder", {"id": claim.id, "priority": 1})
    assert code == 400 and "only pending" in answer["error"]
    queue.finish(claim, DONE)
    code, answer = server.post("/cancel", {"id": claim.id})
    assert code == 400 and "already done" in answer["error"]
    assert server.post("/cancel", {"id": "unknown-1"})[0] == 404
    assert server.post("/cancel", {"id": "../../etc/passwd"})[0] == 400
    assert server.post("/reorder", {"id": ids[1], "priority": "high"})[0] == 400
    assert server.post("/reorder", {"id": ids[1], "priority": 1e300})[0] == 400


def test_post_rules_and_methods(server):
    body = {"items": [{"spec": BASE, "parent": "base", "origin": "ablation"}]}
    assert server.post("/enqueue", body, headers={})[0] == 403
    assert server.post("/enqueue", body, content_type="text/plain")[0] == 415
    assert server.post("/enqueue", None, raw=b"x" * (1_048_577))[0] == 413
    assert server.client.get("/enqueue").status_code == 405
    assert server.client.post("/queue", headers=HEADERS).status_code == 405
    assert server.files() == []


# ---------------------------------------------------------------------- fuzz

PATHS = ["../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "C:\\Windows", "\x00", "run\x00x",
         "~/.ssh", "a" * 2000, "", " ", "%2e%2e%2f", "base/../base", "\u202ebase", "base/"]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(11 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([-1, 0, 1, 2**31, 2**63, -(2**63), 10**40, rng.randint(-10**6, 10**6)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 5e-324, rng.uniform(-1e9, 1e9)])
    if kind == 4:
        return rng.choice(PATHS)
    if kind == 5:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 30)))
    if kind == 6:
        return rng.choice(["ablation", "variation", "handcrafted", "initial", "conv2d", "base"])
    if kind in (7, 8):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    keys = ["items", "spec", "parent", "origin", "epochs", "id", "priority", "parents", "kind", "options",
            "constraints", "layers", "schema", "input", "client_key", "experiment", "x"]
    return {rng.choice(keys) if rng.random() < 0.8 else str(rng.random()):
            random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))}


def nested(depth: int) -> bytes:
    if depth % 2:
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"items": ' * depth + b"1" + b"}" * depth


def malformed_bodies(rng: random.Random):
    """(route, raw bytes) pairs that must all be refused."""
    good_item = {"spec": BASE, "parent": "base", "origin": "ablation"}
    templates = {
        "/enqueue": {"items": [good_item], "epochs": 1},
        "/generate": {"parents": ["base"], "kind": "ablation"},
        "/cancel": {"id": "unknown-request"},
        "/reorder": {"id": "unknown-request", "priority": 1},
    }
    mutable = {  # fields whose every wrong value is an error (options are the operators' to check)
        "/enqueue": ["items", "epochs", "experiment", "client_key", "item.spec", "item.parent", "item.origin",
                     "item.changes", "spec.layers", "spec.input", "spec.schema"],
        "/generate": ["parents", "kind", "constraints"],
        "/cancel": ["id"],
        "/reorder": ["id", "priority"],
    }
    for n in range(500):
        route = rng.choice(list(templates))
        mode = n % 5
        if mode == 0:  # random JSON of any shape
            body = random_value(rng)
        elif mode == 1:  # deep nesting
            yield route, nested(rng.choice([65, 200, 3001, 100000]))
            continue
        elif mode == 2:  # not JSON / numbers JSON forbids / huge digits
            yield route, rng.choice([b"{", b"NaN", b'{"items": Infinity}', b"\xff\xfe", b"[1,]", b"",
                                     b'{"id": ' + b"9" * 5000 + b"}", b"nul", bytes(rng.randrange(256)
                                                                                    for _ in range(40))])
            continue
        else:  # a valid template with one field made wrong
            body = json.loads(json.dumps(templates[route]))
            field = rng.choice(mutable[route])
            value = _wrong_value(rng, field)
            if field.startswith("item."):
                body["items"][0][field[5:]] = value
            elif field.startswith("spec."):
                body["items"][0]["spec"] = {**BASE, field[5:]: value}
            else:
                body[field] = value
            if rng.random() < 0.2:
                body[rng.choice(["unknown", "Items", "__proto__"])] = random_value(rng)
        yield route, json.dumps(body).encode()


def _wrong_value(rng, field):
    """A value that is wrong for ``field`` (never a valid one)."""
    wrong_by_field = {
        "epochs": [-1, 10**9, 1.5, "10", True, [], {}],
        "priority": ["1", None, [], {}, 10**12, -(10**12), True],
        "kind": ["", "ablations", 1, None, ["ablation"]],
        "parents": [[], "base", [1], [None], ["nope"], [p for p in PATHS[:3]], ["base"] * 51],
        "id": PATHS + [1, None, [], {}, "unknown-request"],
        "items": [[], {}, "items", [1], [None], [[]]],
        "item.origin": ["", "Ablation", 3, None],
        "item.parent": PATHS + [1, [], {}, "ghost"],
        "item.changes": ["x", [1], [None], ["x" * 400], list(range(200))],
        "item.spec": [None, 1, "spec", [], {}, {"schema": 2}],
        "spec.layers": [None, "x", [1], [{"type": "conv9d"}], [{"type": "conv2d", "filters": 10**40,
                                                                 "kernel_size": 3}],
                        [{"type": "maxpool2d", "pool_size": 50}], [{"type": "dense", "units": -1}]],
        "spec.input": [None, {}, {"shape": [1, 8]}, {"shape": [1, 8, 8], "num_classes": 0}, [1, 8, 8]],
        "spec.schema": [0, 2, "1", None, 1.5],
        "experiment": PATHS[:6] + [1, [], {}],
        "client_key": ["", 1, [], "k" * 201],
        "constraints": [[], "x", {"max_params": -1}, {"max_params": "1"}, {"allowed_types": ["conv9d"]},
                        {"min_params": 10, "max_params": 5}, {"unknown": 1}],
    }
    return rng.choice(wrong_by_field[field])


def test_500_malformed_bodies_are_all_refused_and_nothing_is_written(server):
    rng = random.Random(20261128)
    statuses = []
    for route, raw in malformed_bodies(rng):
        response = server.client.post(route, data=raw, headers=HEADERS, content_type="application/json")
        assert 400 <= response.status_code < 500, (route, raw[:300], response.status_code, response.data[:300])
        assert isinstance(response.get_json()["error"], str)
        statuses.append(response.status_code)
    assert len(statuses) == 500 and server.files() == []
    # Still healthy: a good request works afterwards.
    code, body = server.post("/enqueue", {"items": [{"spec": BASE, "parent": "base", "origin": "ablation"}]})
    assert code == 200 and server.get("/queue")[0] == 200


# ---------------------------------------------------------------------- helpers

def _request(spec, epochs=0):
    from remap_tb.requests import make_request

    return make_request(spec, training={"epochs": epochs}, provenance={"origin": "handcrafted"})


def _app(routes):
    def app(environ, start_response):
        handler = routes.get(environ.get("PATH_INFO", ""))
        if handler is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        return handler(environ, start_response)

    return app
def test_enqueue_and_generate_apply_the_servers_parameter_cap(tmp_path, records):
    from remap_tb.spec.schema import Limits

    logdir = tmp_path / "logdir"
    logdir.mkdir()
    routes = make_routes(str(logdir), records.get, lambda: list(records.values()), limits=Limits(max_params=5_000))
    server = Server(Client(_app(routes)), logdir, [])
    big = {**records["base"]["spec"], "layers": [{"type": "dense", "units": 1000}]}
    status, body = server.post("/enqueue", {"items": [{"spec": big, "parent": "base", "origin": "handcrafted"}]})
    assert status == 400 and "over the cap of 5,000" in body["error"]
    assert not [f for f in server.files() if "/pending/" in f or f.startswith(".remap/queue/pending")]
    status, body = server.post("/generate", {"parents": ["base"], "kind": "variation",
                                             "options": {"count": 5, "seed": 1, "max_changes": 3}})
    assert status == 200
    assert all(c["params"] <= 5_000 for c in body["candidates"] if c["valid"])
