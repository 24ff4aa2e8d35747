"""Reference PSI numbers for shared/src/drift.rs, computed with numpy on the same bins.

Reads the drift bins from feature_spec.json and the 250 golden test rows, builds a few live
samples (the test split as is, a shifted one, a tiny one, a single-category one), and writes
shared/tests/cases/psi.json: each sample's applications, probabilities and the PSI numpy gets
per monitored field. The Rust test bins the same rows itself and must agree to 1e-9.

Run by `cargo xtask train` after train.py; deterministic (no randomness).
"""
import json
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FLOOR = 1e-4  # drift.rs PSI_FLOOR


def bin_counts(bins: dict, values: list) -> np.ndarray:
    if "edges" in bins:
        # numpy.histogram: [a, b) bins, the last one closed; the outer edges are infinite.
        edges = [-np.inf, *bins["edges"], np.inf]
        return np.histogram(np.asarray(values, dtype=np.float64), bins=edges)[0]
    return np.array([sum(1 for v in values if v == allowed) for allowed in bins["values"]])


def psi(expected: list, counts: np.ndarray) -> float:
    expected = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    actual = np.maximum(counts / counts.sum(), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def sample(name: str, rows: list, spec: dict) -> dict:
    applications = [row["application"] for row in rows]
    # The edge keeps probabilities as f32; bin the f32 value widened to f64, as Rust does.
    probabilities = [float(np.float32(row["probability"])) for row in rows]
    expected_psi = {}
    for field, bins in spec["drift_bins"].items():
        values = probabilities if field == "probability" else [a[field] for a in applications]
        expected_psi[field] = psi(bins["proportions"], bin_counts(bins, values))
    assert all(math.isfinite(v) for v in expected_psi.values())
    return {"name": name, "applications": applications, "probabilities": probabilities,
            "psi": expected_psi}


def main() -> None:
    spec = json.loads((ROOT / "models/feature_spec.json").read_text())
    golden = json.loads((ROOT / "models/golden.json").read_text())["rows"]

    shifted = []
    for i, row in enumerate(golden):
        application = dict(row["application"])
        application["income"] = round(application["income"] * 0.6)
        application["age"] = min(application["age"] + 12, 99)
        if i % 2 == 0:
            application["job"] = "freelance"
        shifted.append({"application": application,
                        "probability": min(row["probability"] + 0.15, 0.99)})
    parents = [{"application": {**row["application"], "home": "parents"},
                "probability": row["probability"]} for row in golden[:40]]

    cases = [sample("test_split", golden, spec),
             sample("shifted_income_age_job", shifted, spec),
             sample("seven_rows", golden[:7], spec),
             sample("all_living_with_parents", parents, spec)]
    out = ROOT / "shared/tests/cases/psi.json"
    out.write_text(json.dumps({"floor": FLOOR, "cases": cases}, indent=1) + "\n")
    for case in cases:
        worst = max(case["psi"].items(), key=lambda item: item[1])
        print(f"{case['name']}: {len(case['applications'])} rows, max PSI {worst[1]:.4f} ({worst[0]})")


if __name__ == "__main__":
    main()
