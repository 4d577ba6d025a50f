"""The committed demo_logs/ must stay readable with the current contract."""

from __future__ import annotations

from pathlib import Path

from remap_tb import metadata
from remap_tb.spec import check, spec_hash
from tests.test_train import read_logdir

DEMO = Path(__file__).resolve().parents[1] / "demo_logs"


def test_demo_logs_hold_a_trained_digits_population_in_the_current_contract():
    runs = read_logdir(str(DEMO))
    models = {run: data for run, data in runs.items() if metadata.MODEL_TAG in data.get("remap", {})}
    assert len(models) >= 25
    fingerprints = set()
    for run, data in models.items():
        [(_, model)] = data["remap"][metadata.MODEL_TAG]
        assert model["version"] == metadata.RECORD_VERSION
        analysis = check(model["spec"])
        assert analysis.total_params == model["params"]
        assert spec_hash(model["spec"]) == model["spec_hash"]
        assert data["remap"][metadata.STATUS_TAG][-1][1]["state"] == metadata.DONE, run
        assert metadata.PREDICTIONS_TAG in data["remap"] and metadata.EVALUATION_TAG in data["remap"]
        assert [step for step, _ in data["scalars"][metadata.VAL_ACCURACY_TAG]] == list(range(1, 11))
        assert (DEMO / run / metadata.WEIGHTS_FILE).is_file()
        fingerprints.add(model["fingerprint"]["id"])
    assert len(fingerprints) == 1  # one comparable experiment
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 8 * 1024 * 1024
