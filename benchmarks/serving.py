"""Serving: dynamic batching against one-by-one, over real HTTP.

    python benchmarks/serving.py [--artifact DIR] [--requests 2000] [--flood 10000]

Starts ``autoglm serve`` twice on a BERT classifier of kinship stories the size of MiniLM-L6 (384 wide, 6
layers; examples/kinship-text-only.toml resized and trained for one epoch on 500 stories when no artifact is
given: its answers do not matter here, its cost does): with batching (``--max-batch 16``) and one by one
(``--max-batch 1``), the answer cache off in both so that every request is a model call. Measured from
light keep-alive HTTP clients in this process (``RawClient``):

* 16 concurrent clients: throughput and p50/p99 latency, batched vs one by one;
* 1 client: p50 latency, batched vs one by one (what waiting for a batch costs when there is none to wait for);
* 64 clients sending ``--flood`` requests to the batched server with a small queue: every request must get 200 or
  429, none lost.

Writes benchmarks/results/serving.{json,md,png} (``--out STEM``: STEM.{json,md,png}).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
AUTOGLM = Path(sys.executable).parent / "autoglm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``autoglm serve`` in a child process, until the context ends."""

    def __init__(self, artifact: Path, *options: str) -> None:
        self.port = free_port()
        self.command = [str(AUTOGLM), "serve", str(artifact), "--port", str(self.port), "--cache-size", "0", *options]

    def __enter__(self) -> str:
        import httpx

        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the clients need the other core
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command, env=env, stderr=self.log)
        url = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.log.seek(0)
        said = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError("the server did not become ready: " + " | ".join(said))

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)


class RawClient:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for POST /v1/predict: a load generator that
    costs the machine far less than httpx per request, so that on 2 cores the server, not the clients, is what is
    measured (as wrk or hey would be used)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
        self.writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(url: str, inputs: list[str], clients: int, total: int) -> dict:
    """``clients`` concurrent clients sending ``total`` requests (one input each); latency per 200 answer."""
    host, port = url.removeprefix("http://").split(":")
    bodies = [json.dumps({"inputs": [text]}).encode() for text in inputs]
    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors = 0
    counter = iter(range(total))

    async def client() -> None:
        nonlocal errors
        http = RawClient(host, int(port))
        try:
            for i in counter:
                started = time.perf_counter()
                try:
                    code = await http.post("/v1/predict", bodies[i % len(bodies)])
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    errors += 1
                    http.close()
                    http = RawClient(host, int(port))
                    continue
                codes[code] = codes.get(code, 0) + 1
                if code == 200:
                    latencies.append(time.perf_counter() - started)
        finally:
            http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else None  # noqa: E731
    return {
        "clients": clients,
        "requests": total,
        "seconds": seconds,
        "throughput": codes.get(200, 0) / seconds,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "transport_errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, help="a built artifact (default: build examples/kinship.toml)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrent measurement")
    parser.add_argument("--flood", type=int, default=10_000, help="requests from 64 clients")
    parser.add_argument("--out", default="serving", help="results file stem in benchmarks/results")
    args = parser.parse_args()

    from autoglm_sdk import build, load_manifest
    from autoglm_sdk import load as load_artifact

    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact
        if artifact is None:
            artifact = Path(tmp) / "kinship"
            print("building the classifier ...", file=sys.stderr, flush=True)
            quick = [
                "train.epochs=1",
                "data.train={hops=[1,2,3],stories=500}",
                "encoders.text.hidden_size=384",
                "encoders.text.num_layers=6",
                "encoders.text.num_heads=6",
                "encoders.text.intermediate_size=1536",
            ]
            build(load_manifest(REPO / "examples" / "kinship-text-only.toml", quick), artifact)
        inputs = [s["text"] for s in load_artifact(artifact).data_split("test")]
        runs: dict[str, dict] = {}
        for label, options in (
            ("batched", ["--max-batch", "16", "--max-wait-ms", "5"]),
            ("one by one", ["--max-batch", "1"]),
        ):
            with Server(artifact, *options) as url:
                asyncio.run(load(url, inputs, 16, 200))  # warm-up
                for clients, total in ((16, args.requests), (1, args.requests // 4)):
                    print(f"{label}: {clients} clients ...", file=sys.stderr, flush=True)
                    runs[f"{label}, {clients}"] = asyncio.run(load(url, inputs, clients, total))
        print("flood: 64 clients ...", file=sys.stderr, flush=True)
        with Server(artifact, "--max-batch", "16", "--queue-size", "32") as url:
            flood = asyncio.run(load(url, inputs, 64, args.flood))
    batched, single = runs["batched, 16"], runs["one by one, 16"]
    checks = {
        "throughput_ratio_16_clients": batched["throughput"] / single["throughput"],
        "p99_ratio_16_clients": batched["p99_ms"] / single["p99_ms"],
        "p50_added_ms_1_client": runs["batched, 1"]["p50_ms"] - runs["one by one, 1"]["p50_ms"],
        "flood_answered": sum(flood["codes"].values()),
        "flood_lost": args.flood - sum(flood["codes"].get(c, 0) for c in ("200", "429")),
    }
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "artifact": str(
            args.artifact or "examples/kinship-text-only.toml as a 384-wide, 6-layer BERT, 1 epoch on 500 stories"
        ),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "checks": checks, "runs": runs, "flood": flood},
                                                     indent=2) + "\n")  # fmt: skip
    lines = [
        "# Serving: dynamic batching vs one by one",
        "",
        f"{meta['date']}, Python {meta['python']}, {meta['platform']}, {meta['cpus']} CPUs; server and clients on "
        f"one machine; {meta['artifact']}; answer cache off.",
        "",
        "| server | clients | requests | throughput (req/s) | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in runs.items():
        lines.append(
            f"| {label.split(',')[0]} | {r['clients']} | {r['requests']} | {r['throughput']:.0f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    lines += [
        "",
        f"- 16 clients: batched throughput {checks['throughput_ratio_16_clients']:.2f}x one by one, p99 "
        f"{checks['p99_ratio_16_clients']:.2f}x.",
        f"- 1 client: batching adds {checks['p50_added_ms_1_client']:+.2f} ms to p50.",
        f"- 64 clients, {args.flood} requests, queue of 32: answered {checks['flood_answered']} "
        f"({', '.join(f'{k}: {v}' for k, v in flood['codes'].items())}), lost {checks['flood_lost']}, transport "
        f"errors {flood['transport_errors']}.",
        "",
        f"![throughput and p99]({args.out}.png)",
        "",
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines))

    from autoglm_sdk.plugin import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4), dpi=110)
    labels = ["batched", "one by one"]
    left.bar(labels, [runs[f"{k}, 16"]["throughput"] for k in labels], color=["tab:blue", "tab:orange"])
    left.set_ylabel("requests/s (16 clients)")
    right.bar(labels, [runs[f"{k}, 16"]["p99_ms"] for k in labels], color=["tab:blue", "tab:orange"])
    right.set_ylabel("p99 latency, ms (16 clients)")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.out}.png")
    print((RESULTS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
