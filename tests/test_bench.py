"""`autoglm bench`: latency and throughput over batch sizes, and the advice it gives."""

from __future__ import annotations

import json

import pytest
from helpers import SMALL, run_cli

from autoglm_backends.bench import recommend
from autoglm_sdk.bench import measure, percentile


def rows(*triples):
    return [
        {"batch_size": b, "p50_ms": p90 * 0.9, "p90_ms": p90, "samples_per_second": rate, "passes": 5}
        for b, p90, rate in triples
    ]


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    assert percentile([7.0], 90) == 7.0


def test_recommends_the_smallest_batch_near_the_best_throughput():
    table = rows((1, 2.0, 500), (8, 5.0, 1600), (32, 16.0, 2000), (64, 40.0, 1900))
    assert recommend(table)["batch_size"] == 32  # 8 is 20% short of the best; 32 is the best
    assert recommend(table, tolerance=0.25)["batch_size"] == 8


def test_latency_budget_limits_the_advice_and_says_when_nothing_fits():
    table = rows((1, 2.0, 500), (8, 5.0, 1600), (32, 16.0, 2000))
    advice = recommend(table, max_latency_ms=10)
    assert advice["batch_size"] == 8 and "p90 <= 10 ms" in advice["reason"]
    none = recommend(table, max_latency_ms=1)
    assert none["batch_size"] == 1 and "no batch size meets p90 <= 1 ms" in none["reason"]


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory):
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    path = tmp_path_factory.mktemp("bench") / "art"
    build(validate_manifest({**SMALL, "train": {"epochs": 2}}), path)
    return path


def test_measure_times_each_batch_size_on_the_artifact(small_artifact):
    from autoglm_sdk import load

    pipeline = load(small_artifact)
    table = measure(
        pipeline.model, pipeline.backend, pipeline.data_split("test"), (1, 3), seconds=0.0, min_repeats=3, warmup=1
    )
    assert [r["batch_size"] for r in table] == [1, 3]
    for r in table:
        assert r["passes"] >= 3 and 0 < r["p50_ms"] <= r["p90_ms"]
        assert r["samples_per_second"] == pytest.approx(r["batch_size"] * 1000 / r["p50_ms"])


def test_cli_bench_prints_the_table_and_writes_json(small_artifact, tmp_path):
    result = run_cli(
        "bench", str(small_artifact), "-b", "1", "-b", "2", "--seconds", "0", "-o", str(tmp_path / "b.json")
    )
    assert result.returncode == 0, result.stderr
    assert "recommended batch size:" in result.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    assert [r["batch_size"] for r in data["rows"]] == [1, 2] and data["device"] == "cpu"
    assert data["recommendation"]["batch_size"] in (1, 2)
    # the machine the figures read with: CPU, ISA flags, GEMM rates
    assert "machine: " in result.stdout and "fp32 GEMM" in result.stdout
    assert data["machine"]["fp32_gemm_gflops"] > 0 and isinstance(data["machine"]["isa"], list)
    # thread counts are measured too, and the advice names one
    result = run_cli(
        "bench",
        str(small_artifact),
        "-b",
        "2",
        "--threads",
        "1",
        "--threads",
        "2",
        "--seconds",
        "0",
        "-o",
        str(tmp_path / "t.json"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "t.json").read_text())
    assert [(r["batch_size"], r["threads"]) for r in data["rows"]] == [(2, 1), (2, 2)]
    assert data["recommendation"]["threads"] in (1, 2) and "threads" in result.stdout


def test_the_cpu_backend_picks_and_reports_its_threads(monkeypatch):
    import torch

    from autoglm_backends.cpu import CPUBackend, pick_threads
    from autoglm_backends.specs import CPUConfig

    pick_threads.cache_clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert pick_threads(None) == (1, "OMP_NUM_THREADS")
    assert pick_threads(3) == (3, "backend.threads")
    pick_threads.cache_clear()
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.getloadavg", lambda: (64.0, 0.0, 0.0))
    with pytest.warns(UserWarning, match=r"oversubscribed \(1-minute load 64.0 on \d+ cores\): torch runs on 1"):
        assert pick_threads(None)[0] == 1
    before = torch.get_num_threads()
    try:
        backend = CPUBackend(CPUConfig())
        backend.prepare(torch.nn.Linear(2, 2))
        assert torch.get_num_threads() == 1 and backend.describe()["why"].endswith("oversubscribed")
        assert backend.probe().capabilities["threads"] == 1
    finally:
        torch.set_num_threads(before)
        pick_threads.cache_clear()


def test_cli_bench_on_a_missing_artifact_is_one_clear_line(tmp_path):
    result = run_cli("bench", str(tmp_path / "nope"))
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_gemm_rates_and_the_machine_line():
    from autoglm_sdk.bench import describe_machine, gemm_rate

    assert gemm_rate(size=64, seconds=0.01) > 0
    line = describe_machine(
        {"cpu": "X", "isa": ["avx512_vnni"], "threads": 2, "fp32_gemm_gflops": 210.4, "int8_gemm_gops": 1861.8}
    )
    assert line == "X (avx512_vnni), 2 threads, fp32 GEMM 210 GFLOP/s, int8 GEMM 1,862 GOP/s"


def test_time_split_separates_operator_time_from_the_rest():
    import torch

    from autoglm_sdk.bench import time_split

    class Slow(torch.nn.Module):  # a model whose Python part is known to dominate
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, samples):
            import time as clock

            clock.sleep(0.004)  # 4 ms of "Python"
            return self.linear(torch.ones(len(samples), 4))

    split = time_split(Slow(), [{}], batch_size=1, passes=5)
    assert split["wall_ms"] >= 4 and split["other_ms"] >= 3.5
    assert 0 < split["torch_ops_ms"] < 1 and split["torch_ops_ms"] + split["other_ms"] == pytest.approx(
        split["wall_ms"]
    )
