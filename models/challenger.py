"""Trains the shadow challenger and writes challenger.onnx, challenger_spec.json and
challenger.json.

The challenger is the champion's logistic regression retrained without the protected
characteristics: no age, no marital status, and no ratio built from age. It runs beside the
champion at the edge on every decision and is stored, never shown to the applicant, so the
cooperative can see on live traffic what deciding without those attributes would change.
Same split, gap filling, scaling and cut-offs as train.py (its own functions), so the two
are compared on equal terms. Run by `cargo xtask train`, after train.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from train import (DECLINE_THRESHOLD, REVIEW_THRESHOLD, SEED, TEST_SHARE, export_onnx, impute,
                   is_valid_application, load_credit_data, metrics, raw_matrix, scale,
                   to_applications, train_test_split, wire)

HERE = Path(__file__).resolve().parent
CHALLENGER_NAME = "valle-logit-unaware"
PROTECTED = {"age", "marital"}


def uses_protected(feature: dict) -> bool:
    fields = {feature.get("field"), feature.get("numerator"), feature.get("denominator")}
    return bool(fields & PROTECTED)


def main() -> None:
    champion = json.loads((HERE / "feature_spec.json").read_text())
    frame, _ = load_credit_data()
    apps, target = to_applications(frame)
    train_apps, test_apps, train_y, test_y = train_test_split(
        apps, target, test_size=TEST_SHARE, stratify=target, random_state=SEED)
    baseline = champion["baseline"]
    train_full, test_full = impute(train_apps, baseline), impute(test_apps, baseline)
    # The champion's definitions and scaling, less every feature that reads a protected field.
    features = [feature for feature in champion["features"] if not uses_protected(feature)]
    train_x = scale(raw_matrix(train_full, features), features)
    test_x = scale(raw_matrix(test_full, features), features)

    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    logit = GridSearchCV(LogisticRegression(max_iter=5000), {"C": [0.01, 0.03, 0.1, 0.3, 1.0]},
                         scoring="roc_auc", cv=folds).fit(train_x, train_y)
    model = logit.best_estimator_
    onnx_bytes = export_onnx(model.coef_[0], float(model.intercept_[0]), len(features),
                             CHALLENGER_NAME)
    (HERE / "challenger.onnx").write_bytes(onnx_bytes)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_test = session.run(None, {"features": test_x})[0][:, 0]
    parity = float(np.max(np.abs(onnx_test - model.predict_proba(test_x)[:, 1])))
    assert parity < 1e-5, f"ONNX and scikit-learn disagree by {parity}"

    spec = dict(champion)
    spec |= {"model_name": CHALLENGER_NAME, "model_file": "challenger.onnx",
             "model_sha256": hashlib.sha256(onnx_bytes).hexdigest(), "features": features}
    (HERE / "challenger_spec.json").write_text(json.dumps(spec, indent=1) + "\n")

    # The first 50 complete, valid test rows with onnxruntime's probability: tract must give
    # the same (shared/tests/challenger.rs).
    golden = []
    complete = test_apps.notna().all(axis=1).to_numpy()
    records = test_apps.to_dict("records")
    for index in np.flatnonzero(complete):
        if is_valid_application(records[index]):
            golden.append({"application": wire(records[index]),
                           "probability": float(onnx_test[index])})
        if len(golden) == 50:
            break
    report = {
        "model_name": CHALLENGER_NAME,
        "model_sha256": spec["model_sha256"],
        "dropped_features": [f["name"] for f in champion["features"] if uses_protected(f)],
        "features": len(features),
        "params": logit.best_params_,
        "cv_roc_auc": round(float(logit.best_score_), 4),
        "test": metrics(test_y, onnx_test),
        "thresholds": {"review": REVIEW_THRESHOLD, "decline": DECLINE_THRESHOLD},
        "onnx_vs_sklearn_max_abs": parity,
        "golden": golden,
    }
    (HERE / "challenger.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({key: report[key] for key in ["model_name", "cv_roc_auc", "test"]}))


if __name__ == "__main__":
    main()
