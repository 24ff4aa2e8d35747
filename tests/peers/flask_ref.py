"""The reference peer for Valle's edge benchmark: the same POST /api/v1/score, written the
way a Python team would, with Flask and scikit-learn.

It serves the very model Valle ships: the logistic regression's coefficients are read from
models/valle.onnx into a scikit-learn LogisticRegression, inputs are encoded with
models/train.py's own feature code, and probabilities come from predict_proba. At start it
checks itself against the 250 golden rows (1e-5) and refuses to serve if they disagree.
Like the edge it validates every field, answers 400 with field codes, and returns the
band, decision, confidence and up to four counterfactual reasons. It keeps no KPIs. Without
--store it stores nothing, so the comparison favours it; with --store it stores every
decision in SQLite (WAL journal, a durable commit per decision) under the same idempotency
key as the edge (X-Request-ID): a repeat answers the stored decision, marked replayed, and
writes nothing.

    target/venv/bin/python tests/peers/flask_ref.py --port 8790 [--store target/peer.db]

`cargo xtask bench-peers` starts it next to `wrangler dev` and loads both the same way.
"""
import argparse
import json
import logging
import math
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import onnx
from flask import Flask, Response, request
from onnx import numpy_helper
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models"))
import train  # noqa: E402  (models/train.py: the feature code the model was trained with)

SPEC = json.loads((ROOT / "models/feature_spec.json").read_text())
FEATURES = SPEC["features"]
MEAN = np.array([f["mean"] for f in FEATURES])
STD = np.array([f["std"] for f in FEATURES])
REVIEW, DECLINE = SPEC["thresholds"]["review"], SPEC["thresholds"]["decline"]
BASELINE = SPEC["baseline"]
INTEGER_FIELDS = {"seniority_years", "term_months", "age"}
TEXT_FIELDS = {"applicant_id", "branch"}
MAX_BODY = 16 * 1024


def load_model() -> LogisticRegression:
    graph = onnx.load(str(ROOT / "models/valle.onnx")).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = weights["weights"].astype(np.float64).reshape(1, -1)
    model.intercept_ = weights["bias"].astype(np.float64).reshape(1)
    return model


MODEL = load_model()


def encode(apps: list) -> np.ndarray:
    raw = np.array([[train.raw_feature(app, f) for f in FEATURES] for app in apps])
    return ((raw - MEAN) / STD).astype(np.float32)


def probabilities(apps: list) -> np.ndarray:
    return MODEL.predict_proba(encode(apps))[:, 1]


def self_check() -> None:
    golden = json.loads((ROOT / "models/golden.json").read_text())["rows"]
    got = probabilities([row["application"] for row in golden])
    want = np.array([row["probability"] for row in golden])
    worst = float(np.max(np.abs(got - want)))
    if worst > 1e-5:
        raise SystemExit(f"peer disagrees with the golden rows by {worst}")


def field_error(field: str, code: str) -> dict:
    return {"field": field, "code": code}


def validate(body: bytes):
    """The application, or the list of field errors (the edge's rules, in Python)."""
    try:
        app = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, [field_error("", "E_JSON")]
    if not isinstance(app, dict):
        return None, [field_error("", "E_TYPE")]
    errors = []
    for field in app:
        if field not in train.FIELDS.values() and field not in TEXT_FIELDS:
            errors.append(field_error(field, "E_UNKNOWN_FIELD"))
    for field in train.NUMERIC:
        value = app.get(field)
        if value is None:
            errors.append(field_error(field, "E_REQUIRED"))
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (
                field in INTEGER_FIELDS and not float(value).is_integer()):
            errors.append(field_error(field, "E_TYPE"))
        elif not math.isfinite(value) or not (
                train.BOUNDS[field][0] <= value <= train.BOUNDS[field][1]):
            errors.append(field_error(field, "E_RANGE"))
    for field, allowed in train.CATEGORICAL.items():
        value = app.get(field)
        if value is None:
            errors.append(field_error(field, "E_REQUIRED"))
        elif value not in allowed:
            errors.append(field_error(field, "E_ENUM"))
    if not errors:
        if app["amount"] > app["price"]:
            errors.append(field_error("amount", "E_CROSS"))
        if app["age"] - app["seniority_years"] < 14:
            errors.append(field_error("seniority_years", "E_CROSS"))
        if app["amount"] > 100 * app["income"]:
            errors.append(field_error("amount", "E_CROSS"))
    return (None, errors) if errors else (app, [])


def classify(p: float):
    if p < REVIEW:
        return "bajo", "approve", (REVIEW - p) / REVIEW
    if p < DECLINE:
        half = (DECLINE - REVIEW) / 2
        return "medio", "review", min(p - REVIEW, DECLINE - p) / half
    return "alto", "decline", (p - DECLINE) / (1 - DECLINE)


def score(app: dict) -> dict:
    fields = [f for f in train.FIELDS.values() if app[f] != BASELINE[f]]
    rows = [app] + [{**app, f: BASELINE[f]} for f in fields]
    p = probabilities(rows)
    pushes = sorted(((f, float(p[0] - q)) for f, q in zip(fields, p[1:]) if p[0] - q > 0),
                    key=lambda item: -item[1])[:4]
    band, decision, confidence = classify(float(p[0]))
    reasons = []
    for field, impact in pushes:
        if field in train.NUMERIC:
            code = f"R_{field.upper()}_{'HIGH' if app[field] > BASELINE[field] else 'LOW'}"
        else:
            code = f"R_{field.upper()}_{str(app[field]).upper()}"
        reasons.append({"code": code, "field": field, "impact": impact})
    return {"probability": float(p[0]), "band": band, "decision": decision,
            "confidence": max(0.0, min(1.0, confidence)), "reasons": reasons,
            "model_version": {"name": SPEC["model_name"], "sha256": SPEC["model_sha256"]}}


app = Flask(__name__)
STORE = {"path": None}
LOCAL = threading.local()
SCHEMA = """CREATE TABLE IF NOT EXISTS decisions (
    request_id TEXT PRIMARY KEY NOT NULL,
    application TEXT NOT NULL,
    score TEXT NOT NULL,
    received_at INTEGER NOT NULL
)"""


def database() -> sqlite3.Connection:
    """This thread's connection: WAL, and a commit is on disk before the answer."""
    connection = getattr(LOCAL, "connection", None)
    if connection is None:
        connection = sqlite3.connect(STORE["path"], timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        LOCAL.connection = connection
    return connection


def store(request_id: str, application: dict, scored: dict):
    """Stores the decision once; answers the stored score and whether it was a repeat."""
    connection = database()
    inserted = connection.execute(
        "INSERT INTO decisions (request_id, application, score, received_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(request_id) DO NOTHING",
        (request_id, json.dumps(application), json.dumps(scored), int(time.time() * 1000)),
    ).rowcount
    if inserted == 1:
        return scored, False
    row = connection.execute(
        "SELECT score FROM decisions WHERE request_id = ?", (request_id,)).fetchone()
    return json.loads(row[0]), True


def answer(status: int, body: dict, request_id: str) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json",
                    headers={"x-request-id": request_id})


@app.post("/api/v1/score")
def post_score():
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    if request.mimetype != "application/json":
        return answer(415, {"error": {"code": "E_CONTENT_TYPE"}}, request_id)
    if (request.content_length or 0) > MAX_BODY:
        return answer(413, {"error": {"code": "E_TOO_LARGE"}}, request_id)
    application, errors = validate(request.get_data())
    if errors:
        return answer(400, {"error": {"code": "E_VALIDATION", "fields": errors}}, request_id)
    scored = score(application)
    if STORE["path"] is None:
        return answer(200, {"request_id": request_id, "score": scored}, request_id)
    scored, replayed = store(request_id, application, scored)
    return answer(200, {"request_id": request_id, "score": scored, "replayed": replayed},
                  request_id)


@app.get("/healthz")
def health():
    return answer(200, {"status": "ok"}, str(uuid.uuid4()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--store", help="SQLite file to store every decision in")
    args = parser.parse_args()
    self_check()
    if args.store:
        STORE["path"] = args.store
        database().execute(SCHEMA)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    kind = f"storing in {args.store}" if args.store else "storing nothing"
    print(f"flask reference peer on http://127.0.0.1:{args.port}, {kind}", flush=True)
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
