"""Round-trip latency of ``handnet serve``: POST /api/predict over real HTTP, as the page sends it.

The server runs in its own process (``python -m handnet serve MODEL --port 0``), as it does for
a user; this process is the browser: one keep-alive connection, requests one after another.
Each request is an MNIST test digit drawn as the page's canvas sends it (280×280 PNG, dark ink
on white, base64 data URL) or, with the "pixels" form, the 28×28 grid itself. A round trip is
from sending the request to holding the decoded JSON answer: preprocessing, the layer-by-layer
forward pass with its feature-map summaries, JSON both ways, and the HTTP exchange.

    python benchmarks/bench_serve.py [--model runs/demo/model.npz] [--requests 200] [--json PATH]

Without a model file an untrained cnn is served (the time does not depend on the weights).
"""

import argparse
import base64
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import print_table, set_threads, write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", type=Path, help="model file to serve (default: an untrained cnn)")
parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind")
parser.add_argument("--warmup", type=int, default=10)
parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the server")
parser.add_argument("--json")
args = parser.parse_args()
set_threads(args.threads)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import handnet as hn  # noqa: E402
from handnet.zoo import architectures  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def canvas_data_url(digit):
    """An MNIST digit (28, 28) uint8 as the page's 280×280 canvas sends it: dark on white."""
    image = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def start_server(model_path):
    """The server process and its (host, port), read from the address it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "handnet", "serve", str(model_path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=os.environ,
    )
    for line in process.stdout:
        if "http://" in line:
            address = line.split("http://")[1].split("/")[0]
            host, port = address.rsplit(":", 1)
            return process, host, int(port)
    raise SystemExit(f"the server did not start (exit status {process.wait()})")


def round_trips(connection, bodies):
    """Seconds of each request/answer exchange, one after another on one connection."""
    times = []
    for body in bodies:
        start = time.perf_counter()
        connection.request(
            "POST", "/api/predict", body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
        times.append(time.perf_counter() - start)
        assert response.status == 200, answer
    return times


def summary(kind, times, body_bytes):
    milliseconds = sorted(1000 * t for t in times)
    return {
        "request": kind,
        "requests": len(times),
        "body_kib": body_bytes / 1024,
        "median_ms": statistics.median(milliseconds),
        "p95_ms": milliseconds[int(0.95 * (len(milliseconds) - 1))],
        "max_ms": milliseconds[-1],
    }


def main():
    (_, _), (x_test, _) = hn.datasets.mnist.load_data(verbose=False)
    digits = x_test[: args.requests]
    with tempfile.TemporaryDirectory() as folder:
        model_path = args.model
        if model_path is None:
            model_path = Path(folder) / "cnn.npz"
            architectures.build("cnn", seed=0).save(model_path)
        process, host, port = start_server(model_path.resolve())
        try:
            connection = http.client.HTTPConnection(host, port)
            kinds = {
                "image (280×280 PNG)": [
                    json.dumps({"image": canvas_data_url(d)}).encode() for d in digits
                ],
                "pixels (28×28)": [json.dumps({"pixels": d.tolist()}).encode() for d in digits],
            }
            rows = []
            for kind, bodies in kinds.items():
                round_trips(connection, bodies[: args.warmup])
                times = round_trips(connection, bodies)
                rows.append(summary(kind, times, np.mean([len(b) for b in bodies])))
        finally:
            process.terminate()
            process.wait()
    print_table(
        f"handnet serve, POST /api/predict round trips ({model_path.name}, {args.threads} "
        "BLAS thread(s), one keep-alive connection)",
        rows,
        [
            ("request", "request", "{}"),
            ("requests", "n", "{}"),
            ("body_kib", "body KiB", "{:.1f}"),
            ("median_ms", "median ms", "{:.1f}"),
            ("p95_ms", "p95 ms", "{:.1f}"),
            ("max_ms", "max ms", "{:.1f}"),
        ],
    )
    write_json(args.json, {"model": str(model_path), "threads": args.threads, "results": rows})


main()
