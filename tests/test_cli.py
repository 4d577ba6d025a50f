"""The ``remap`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from remap_tb import metadata

VALID = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}


def remap(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "trainer.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_validate_prints_shapes_and_params(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(VALID))
    out = remap("validate", path)
    assert out.returncode == 0, out.stderr
    assert "4x6x6" in out.stdout and "valid: 1,490 parameters, 2 layers" in out.stdout
    as_json = json.loads(remap("validate", path, "--json").stdout)
    assert as_json["valid"] and as_json["total_params"] == 1490


def test_validate_reports_precise_errors_with_exit_code_1(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**VALID, "layers": [{"type": "maxpool2d", "pool_size": 2},
                                                     {"type": "maxpool2d", "pool_size": 2},
                                                     {"type": "maxpool2d", "pool_size": 5}]}))
    out = remap("validate", path)
    assert out.returncode == 1
    assert "layer 2 maxpool2d: pool_size 5 is larger than its 2x2 input" in out.stderr


def test_validate_rejects_a_missing_or_malformed_file_clearly(tmp_path):
    out = remap("validate", tmp_path / "nope.json")
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    out = remap("validate", broken)
    assert out.returncode == 2 and "not valid JSON" in out.stderr


def test_train_a_bare_spec_into_a_logdir(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(VALID))
    out = remap("train", path, tmp_path / "runs", "--epochs", "1", "--id", "hand-1")
    assert out.returncode == 0, out.stderr
    request = json.loads((tmp_path / "runs" / "hand-1" / metadata.REQUEST_FILE).read_text())
    assert request["provenance"]["origin"] == "handcrafted" and request["training"]["epochs"] == 1


def test_init_writes_the_experiment_and_trains_the_population(tmp_path):
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "digits", "--models", "3", "--epochs", "1", "--max-params", "20000",
                "--seed", "5")
    assert out.returncode == 0, out.stderr
    runs = sorted(p for p in os.listdir(logdir) if not p.startswith("."))
    assert len(runs) == 3
    for run in runs:
        assert os.path.isfile(logdir / run / metadata.WEIGHTS_FILE)
        request = json.loads((logdir / run / metadata.REQUEST_FILE).read_text())
        assert request["provenance"]["origin"] == "initial"
    [experiment] = os.listdir(logdir / metadata.STATE_DIR / "experiments")
    config = json.loads((logdir / metadata.STATE_DIR / "experiments" / experiment).read_text())
    assert config["dataset"]["name"] == "digits" and config["constraints"]["max_params"] == 20000
    assert experiment == config["fingerprint"]["id"] + ".json"


def test_init_with_a_missing_dataset_says_where_to_put_it_and_writes_nothing(tmp_path):
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "cifar10", "--data-dir", tmp_path / "nowhere", "--models", "2")
    assert out.returncode == 2
    assert "cifar-10-batches-py" in out.stderr and "never downloads" in out.stderr
    assert "Traceback" not in out.stderr
    assert not logdir.exists()


def write_quickdraw(folder, classes=("apple", "wine bottle"), per_class=60):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        images = rng.integers(0, 40, size=(per_class, 784), dtype=np.uint8)
        images[:, k * 300:(k * 300) + 200] = 255  # make the classes learnable
        np.save(folder / f"full_numpy_bitmap_{name}.npy", images)


def test_evaluate_scores_the_held_out_test_split_and_records_it(tmp_path):
    data = tmp_path / "quickdraw"
    write_quickdraw(data)
    spec = {"schema": 1, "input": {"shape": [1, 28, 28], "num_classes": 2}, "layers": [
        {"type": "maxpool2d", "pool_size": 4}, {"type": "dense", "units": 8}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    logdir = tmp_path / "runs"
    out = remap("train", tmp_path / "spec.json", logdir, "--dataset", "quickdraw", "--data-dir", data,
                "--limit", "40", "--test-fraction", "0.25", "--epochs", "3", "--id", "qd")
    assert out.returncode == 0, out.stderr
    out = remap("evaluate", logdir / "qd", "--split", "test")
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout and "on 20 samples" in out.stdout

    from tests.test_train import read_logdir

    [(step, record)] = read_logdir(str(logdir))["qd"]["remap"][metadata.TEST_TAG]
    assert record["n_samples"] == 20 and 0.0 <= record["accuracy"] <= 1.0
    assert len(record["per_class_accuracy"]) == 2

    weights = logdir / "qd" / metadata.WEIGHTS_FILE
    for corrupt in (weights.read_bytes()[:100], b"not a torch file"):
        weights.write_bytes(corrupt)
        out = remap("evaluate", logdir / "qd", "--split", "test")
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("remap: error: ") and "cannot be read as this model's weights" in out.stderr


def test_evaluate_refuses_a_dataset_without_test_split(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(VALID))
    assert remap("train", tmp_path / "spec.json", tmp_path, "--epochs", "1", "--id", "d").returncode == 0
    out = remap("evaluate", tmp_path / "d")
    assert out.returncode == 2 and "has no held-out test split" in out.stderr


def test_demo_copies_demo_logs_and_serves_the_remap_tab(tmp_path):
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logdir = tmp_path / "demo"
    process = subprocess.Popen([sys.executable, "-m", "trainer.cli", "demo", "--logdir", str(logdir),
                                "--port", str(port), "--workers", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        listing = None
        deadline = time.time() + 90
        while time.time() < deadline and listing is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugins_listing", timeout=5) as r:
                    listing = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert listing is not None and listing["remap"]["enabled"]
        runs = [p for p in os.listdir(logdir) if not p.startswith(".")]
        assert len(runs) >= 25  # the demo population was copied
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/remap/experiments", timeout=30) as r:
            assert json.load(r)["experiments"][0]["n_models"] == len(runs)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_init_with_residual_blocks_trains_graph_models(tmp_path):
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "digits", "--models", "3", "--epochs", "1", "--blocks", "residual",
                "--max-params", "20000", "--max-depth", "14", "--limit", "200")
    assert out.returncode == 0, out.stderr
    runs = sorted(p for p in os.listdir(logdir) if not p.startswith("."))
    assert len(runs) == 3
    for run in runs:
        assert os.path.isfile(logdir / run / metadata.WEIGHTS_FILE)
        spec = json.loads((logdir / run / metadata.REQUEST_FILE).read_text())["spec"]
        assert spec["schema"] == 2 and any(layer["type"] == "add" for layer in spec["layers"])
        assert len(spec["layers"]) <= 14
    [experiment] = os.listdir(logdir / metadata.STATE_DIR / "experiments")
    config = json.loads((logdir / metadata.STATE_DIR / "experiments" / experiment).read_text())
    assert config["blocks"] == "residual" and config["constraints"]["max_depth"] == 14


# --------------------------------------------------------------------------- issue 11: rough edges


def test_every_argument_of_every_command_has_help_text():
    import argparse

    from trainer.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"init", "train", "validate", "worker", "enqueue", "queue", "evaluate", "demo"} <= set(commands.choices)
    checked = 0
    for name, sub in [("remap", parser), *commands.choices.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            label = "/".join(action.option_strings) or action.dest
            assert isinstance(action.help, str) and action.help.strip(), f"remap {name}: {label} has no help"
            checked += 1
    assert checked > 60
    for name in ("queue", "worker", "enqueue", "init"):  # the positional LOGDIR says what it is
        assert "logdir" in remap(name, "--help").stdout.split("positional arguments:")[1].split("options:")[0]


def test_a_logdir_that_does_not_exist_or_has_no_queue_is_an_error_and_nothing_is_written(tmp_path):
    missing = tmp_path / "nowhere"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    for args in (("queue", missing), ("enqueue", missing, spec), ("worker", missing, "--once"),
                 ("evaluate", missing / "run")):
        out = remap(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("remap: error: ") and str(missing) in out.stderr and "Traceback" not in out.stderr
        assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = remap("queue", empty)
    assert out.returncode == 2 and out.stderr.startswith("remap: error: ")
    assert "has no queue" in out.stderr and "remap init" in out.stderr
    assert os.listdir(empty) == []


def test_config_errors_name_the_command_line_flags(tmp_path):
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "cifar10", "--models", "1")
    assert out.returncode == 2 and "remap: error: --data-dir is required for cifar10" in out.stderr
    out = remap("init", logdir, "--val-fraction", "1.5", "--models", "1")
    assert out.returncode == 2 and "--val-fraction must be a number in (0, 1)" in out.stderr
    out = remap("init", logdir, "--dataset", "quickdraw", "--data-dir", tmp_path / "qd", "--models", "1")
    assert out.returncode == 2 and "Put the files at" in out.stderr
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    out = remap("train", spec, logdir, "--dataset", "npz", "--epochs", "1")
    assert out.returncode == 2 and "--data-dir is required for npz" in out.stderr
    for text in (out.stderr,):
        assert "data_dir" not in text and "dataset." not in text
    assert not logdir.exists()


def test_init_refuses_a_dataset_with_one_class_and_warns_about_small_classes(tmp_path):
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--limit", "1", "--models", "1", "--epochs", "0")
    assert out.returncode == 2
    assert "remap: error: digits: the training labels hold one class only ('0') after --limit 1" in out.stderr
    assert "at least 2 classes" in out.stderr and not logdir.exists()
    out = remap("init", logdir, "--limit", "30", "--models", "1", "--epochs", "0", "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert "remap: warning: digits: class(es) with fewer than 5 training and validation samples" in out.stderr


def test_validate_reports_every_problem_and_shapes_past_a_failing_layer(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3},
        {"type": "activation", "fn": "relu6"},           # unknown function: the shape is still 4x6x6
        {"type": "dropout", "rate": 1.5},                # bad rate: still 4x6x6
        {"type": "conv2d", "filters": 4, "kernel_size": 7},  # larger than its 6x6 input
        {"type": "dense", "units": 10}]}))
    out = remap("validate", path)
    assert out.returncode == 1
    assert "invalid: 3 problem(s)" in out.stderr
    for text in ("layer 1 activation: fn must be one of", "layer 2 dropout: rate must be in [0, 1)",
                 "layer 3 conv2d: kernel_size 7 is larger than its 6x6 input"):
        assert text in out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.split()[:1] != ["input"]}
    assert rows["1"][2] == "4x6x6" and rows["2"][2] == "4x6x6" and rows["3"][2] == "?"
    as_json = json.loads(remap("validate", path, "--json").stdout)
    assert [e["index"] for e in as_json["errors"]] == [1, 2, 3]
    assert as_json["layers"][2]["output_shape"] == [4, 6, 6]


def test_enqueue_refuses_a_trained_model_in_disguise_and_notes_an_exact_repeat(tmp_path):
    logdir = tmp_path / "runs"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID))
    assert remap("train", spec, logdir, "--epochs", "0", "--id", "hand-1").returncode == 0
    disguised = tmp_path / "disguised.json"  # VALID (conv -> relu) with a second relu: the same model
    disguised.write_text(json.dumps({"spec": {**VALID, "layers": VALID["layers"] + [VALID["layers"][1]]},
                                     "dataset": {"name": "digits"}, "training": {"epochs": 1}}))
    out = remap("enqueue", logdir, disguised)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"remap: error: {disguised}: the same model as hand-1 once no-ops are removed")
    assert not (logdir / metadata.STATE_DIR / "queue").exists()
    again = tmp_path / "again.json"
    again.write_text(json.dumps({"spec": VALID, "dataset": {"name": "digits"}, "training": {"epochs": 2}}))
    out = remap("enqueue", logdir, again)
    assert out.returncode == 0, out.stderr
    assert f"remap: note: {again}: the same model as hand-1; queued to train it again" in out.stderr
    assert out.stdout.split("\t")[1].strip() == "queued"
