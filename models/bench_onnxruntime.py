"""onnxruntime on the same ONNX model and golden rows as shared/examples/native_scoring.rs,
measured the same way: one row per session.run (median and p99 of many calls) and one
10,000-row batch (best of five). Prints JSON. Run by `cargo xtask bench-peers`.
"""
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    golden = json.loads((ROOT / "models/golden.json").read_text())["rows"]
    features = np.array([row["features"] for row in golden], dtype=np.float32)
    options = ort.SessionOptions()
    # One thread, as the edge has: a fair per-call comparison.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ROOT / "models/valle.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = [features[i:i + 1] for i in range(len(features))]
    for row in rows:
        session.run(None, {name: row})

    micros = []
    for i in range(20_000):
        row = rows[i % len(rows)]
        started = time.perf_counter()
        session.run(None, {name: row})
        micros.append((time.perf_counter() - started) * 1e6)
    micros.sort()

    def percentile(q: float) -> float:
        rank = int(np.ceil(q * len(micros)))
        return micros[min(max(rank, 1), len(micros)) - 1]

    batch = np.tile(features, (40, 1))[:10_000]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        session.run(None, {name: batch})
        best = min(best, time.perf_counter() - started)

    print(json.dumps({
        "engine": f"onnxruntime {ort.__version__} (Python)",
        "single_row_us": {"p50": percentile(0.5), "p99": percentile(0.99)},
        "batch": {"rows": len(batch), "seconds": best, "rows_per_s": len(batch) / best},
    }))


if __name__ == "__main__":
    main()
