"""Duplicates over HTTP (issue 11): generate and enqueue name the existing model they duplicate.

The routes run over the werkzeug test client on model records of runs trained by the
project's trainer (0 epochs) and a real queue.
"""

from __future__ import annotations

import json
import os

import pytest
from werkzeug.test import Client

from remap_tb.queue import Queue
from remap_tb.requests import make_request
from remap_tb.search_routes import make_routes
from remap_tb.spec import spec_hash
from remap_tb.spec.canonical import canonical_hash
from tests.fixtures_runs import BASE, CHILD, INPUT, model_record

HEADERS = {"X-Requested-With": "remap"}
RELU = {"type": "activation", "fn": "relu"}
# BASE is conv -> relu -> maxpool: the same model with the relu after the pool (max commutes
# with a monotone activation), or with a dropout of rate 0 inserted.
BASE_SWAPPED = {**BASE, "layers": [BASE["layers"][0], BASE["layers"][2], BASE["layers"][1]]}
BASE_DROPOUT0 = {**BASE, "layers": BASE["layers"][:2] + [{"type": "dropout", "rate": 0.0}] + BASE["layers"][2:]}
NEW = {"schema": 1, "input": INPUT, "layers": [{"type": "conv2d", "filters": 6, "kernel_size": 3}, RELU]}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from trainer.train import DatasetCache, train

    logdir = str(tmp_path_factory.mktemp("trained"))
    cache = DatasetCache()
    training = {"epochs": 0, "batch_size": 128, "lr": 0.01}
    train(make_request(BASE, {"name": "digits"}, training, {"origin": "initial"}, request_id="base"), logdir,
          datasets=cache)
    return {"base": model_record(logdir, "base"), "logdir": logdir}


@pytest.fixture
def client(tmp_path, records):
    logdir = tmp_path / "logdir"
    logdir.mkdir()
    models = {"base": records["base"]}
    routes = make_routes(str(logdir), models.get, lambda: list(models.values()))

    def app(environ, start_response):
        return routes[environ["PATH_INFO"]](environ, start_response)

    return Client(app), logdir


def post(client, route, body):
    response = client.post(route, data=json.dumps(body), headers=HEADERS, content_type="application/json")
    return response.status_code, response.get_json()


def files(logdir):
    return sorted(os.path.relpath(os.path.join(d, n), logdir) for d, _, names in os.walk(logdir) for n in names)


@pytest.mark.parametrize("disguised", [BASE_SWAPPED, BASE_DROPOUT0], ids=["relu-after-pool", "dropout-0"])
def test_enqueue_refuses_an_existing_model_in_disguise_naming_it_and_writes_nothing(client, disguised):
    client, logdir = client
    assert spec_hash(disguised) != spec_hash(BASE) and canonical_hash(disguised) == canonical_hash(BASE)
    code, body = post(client, "/enqueue", {"items": [{"spec": NEW, "origin": "handcrafted"},
                                                     {"spec": disguised, "parent": "base", "origin": "variation"}]})
    assert code == 409, body
    assert body["duplicate_of"] == "base" and body["item"] == 1
    assert body["error"].startswith("items[1]: the same model as base once no-ops are removed (layer ")
    assert files(logdir) == []  # the whole call is refused: not even the new model is queued


def test_enqueue_of_the_exact_spec_trains_it_again_and_says_whose_it_is(client):
    client, logdir = client
    code, body = post(client, "/enqueue", {"items": [{"spec": BASE, "parent": "base", "origin": "handcrafted"},
                                                     {"spec": NEW, "origin": "handcrafted"}], "epochs": 3})
    assert code == 200, body
    first, second = body["request_ids"]
    assert body["duplicates"] == [{"item": 0, "duplicate_of": "base"}]
    # A queued request counts too: NEW in disguise (a relu after its relu) names the pending request.
    code, body = post(client, "/enqueue", {"items": [{"spec": {**NEW, "layers": NEW["layers"] + [RELU]},
                                                      "origin": "handcrafted"}]})
    assert code == 409 and body["duplicate_of"] == second
    assert "activation relu removed" in body["error"]
    # The same body with the same client_key gives the same ids; they are not duplicates of themselves.
    again = {"items": [{"spec": CHILD, "origin": "handcrafted"}], "client_key": "k-1"}
    code, body = post(client, "/enqueue", again)
    assert code == 200 and body["duplicates"] == []
    code, repeat = post(client, "/enqueue", again)
    assert repeat["request_ids"] == body["request_ids"] and repeat["duplicates"] == []
    assert Queue(str(logdir)).state_of(first) == "pending"


def test_generate_names_the_model_a_candidate_duplicates(client, records):
    client, logdir = client
    # A pending request with the ablation child of BASE that removes its relu: that child is
    # BASE's canonical neighbour CHILD, so the ablation names the request.
    (rid,) = Queue(str(logdir)).enqueue([make_request(CHILD, training={"epochs": 0},
                                                      provenance={"origin": "handcrafted"})]).ids
    code, body = post(client, "/generate", {"parents": ["base"], "kind": "ablation"})
    assert code == 200, body
    by_layer = {c["changes"][0].split(" ")[2]: c for c in body["candidates"]}
    assert not by_layer["1"]["valid"] and by_layer["1"]["duplicate_of"] == rid
    assert by_layer["1"]["reason"] == f"same model as existing model {rid}"
    assert by_layer["0"]["duplicate_of"] is None
    assert {"duplicate_of": rid, "count": 1} in body["duplicates"]


def test_validate_names_the_model_a_valid_spec_already_is(records):
    from tests.test_plugin_http import make_app

    client, plugin, _ = make_app(records["logdir"])
    try:
        def validate(spec):
            response = client.post("/data/plugin/remap/validate", data=json.dumps(spec),
                                   headers={**HEADERS, "Content-Type": "application/json"})
            assert response.status_code == 200
            return response.get_json()

        assert validate(BASE)["duplicate_of"] == "base"
        assert validate({"spec": BASE_SWAPPED})["duplicate_of"] == "base"
        assert validate(BASE_DROPOUT0)["valid"] and validate(BASE_DROPOUT0)["duplicate_of"] == "base"
        assert validate(NEW)["duplicate_of"] is None
        invalid = validate({**NEW, "layers": [{"type": "maxpool2d", "pool_size": 20}]})
        assert not invalid["valid"] and "duplicate_of" not in invalid
    finally:
        plugin.close()
