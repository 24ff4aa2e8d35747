"""Writes holdout.json: the model's 1,114 held-out test rows with their true outcomes, and
scikit-learn's figures on them, so Valle's performance maths can be checked against them.

Run by `cargo xtask train`, after train.py (the venv of models/requirements.txt). The split, the gap filling
and the scaling are train.py's own functions, so the rows are the ones the model card's test
figures come from. Rows are the R package modeldata's `credit_data` (MIT licence).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy.stats import binomtest
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from train import (DECLINE_THRESHOLD, REVIEW_THRESHOLD, impute, is_valid_application, raw_matrix,
                   scale, split, wire)

HERE = Path(__file__).resolve().parent
DECILES = 10


def band(probability: float) -> str:
    if probability < REVIEW_THRESHOLD:
        return "bajo"
    return "medio" if probability < DECLINE_THRESHOLD else "alto"


def expected_auc(probability: np.ndarray) -> float:
    """AUC if every row defaulted with its predicted probability: all pairs, counted directly."""
    bad_weight, good_weight = probability, 1.0 - probability
    above = probability[:, None] > probability[None, :]
    tied = probability[:, None] == probability[None, :]
    np.fill_diagonal(tied, False)
    pairs = bad_weight[:, None] * good_weight[None, :]
    numerator = float((pairs * above).sum() + 0.5 * (pairs * tied).sum())
    denominator = float(bad_weight.sum() * good_weight.sum() - (bad_weight * good_weight).sum())
    return numerator / denominator


def figures(target: np.ndarray, probability: np.ndarray) -> dict:
    """What GET /api/v1/performance reports, computed here by scikit-learn, numpy and scipy."""
    auc = float(roc_auc_score(target, probability))
    false_positive, true_positive, _ = roc_curve(target, probability)
    deciles = []
    for chunk in np.array_split(np.argsort(probability, kind="stable"), DECILES):
        defaults = int(target[chunk].sum())
        interval = binomtest(defaults, len(chunk)).proportion_ci(0.95, method="wilson")
        deciles.append({"rows": int(len(chunk)), "defaults": defaults,
                        "mean_predicted": float(probability[chunk].mean()),
                        "observed": defaults / len(chunk),
                        "low": float(interval.low), "high": float(interval.high)})
    bands = {}
    for name in ["bajo", "medio", "alto"]:
        rows = np.array([band(float(p)) == name for p in probability])
        bands[name] = {"rows": int(rows.sum()), "defaults": int(target[rows].sum())}
    return {"rows": int(len(target)), "defaults": int(target.sum()),
            "roc_auc": auc, "gini": 2 * auc - 1,
            "ks": float(np.max(true_positive - false_positive)),
            "brier": float(brier_score_loss(target, probability)),
            "expected_default_rate": float(probability.mean()),
            "expected_auc": expected_auc(probability.astype(np.float64)),
            "deciles": deciles, "bands": bands}


def main() -> None:
    data = split()
    test_apps, test_y = data.test_apps, data.test_y
    test_full = impute(test_apps, data.baseline)

    spec = json.loads((HERE / "feature_spec.json").read_text())
    test_x = scale(raw_matrix(test_full, spec["features"]), spec["features"])
    session = ort.InferenceSession(str(HERE / spec["model_file"]),
                                   providers=["CPUExecutionProvider"])
    probability = session.run(None, {"features": test_x})[0][:, 0].astype(np.float64)

    records = test_full.to_dict("records")
    valid = np.array([is_valid_application(app) for app in records])
    rows = [{"application": wire(app), "bad": int(bad), "probability": float(p),
             "valid": bool(ok)}
            for app, bad, p, ok in zip(records, test_y, probability, valid)]
    report = {
        "model_sha256": spec["model_sha256"],
        "note": "Test split of models/train.py, gaps filled with the training baseline. "
                "Rows with valid=false break a validation rule and cannot be scored by the API.",
        "all_rows": figures(test_y, probability),
        "valid_rows": figures(test_y[valid], probability[valid]),
        "rows": rows,
    }
    (HERE / "holdout.json").write_text(json.dumps(report, indent=None) + "\n")
    print(json.dumps({key: {k: v for k, v in report[key].items() if k in
                            ("rows", "roc_auc", "ks", "brier")}
                      for key in ("all_rows", "valid_rows")}))


if __name__ == "__main__":
    main()
