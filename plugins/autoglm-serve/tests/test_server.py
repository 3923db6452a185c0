"""autoglm serve: answers as `autoglm run` gives them, batching, the cache, the bounded queue, keys, limits,
streaming, metrics and a graceful stop. Batching and queue mechanics use a slow stand-in model; answers use real
artifacts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from autoglm_sdk import build, load, validate_manifest
from autoglm_serve.server import Batcher, Metrics, ServeConfig, create_app

STORY = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"


@dataclass
class SlowModel:
    """A stand-in with a model's interface: each call takes ``seconds`` and records its batch size."""

    seconds: float = 0.05
    calls: list[int] = field(default_factory=list)
    textual: bool = False

    @property
    def task(self) -> Any:
        return type("Task", (), {"textual": self.textual, "kind": "classify"})()

    path = Path("slow")

    def predict(self, records: list, errors: str = "raise", **options: Any) -> list[dict]:
        self.calls.append(len(records))
        time.sleep(self.seconds)
        return [{"prediction": str(record).upper()} for _, record in records]


def post_at_once(client: TestClient, count: int) -> list[Any]:
    """``count`` one-input requests sent from as many threads at once; their replies, in the order they came."""
    replies: list[Any] = []
    threads = [
        threading.Thread(target=lambda i=i: replies.append(client.post("/v1/predict", json={"inputs": [f"q{i}"]})))
        for i in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replies


def test_answers_match_the_artifact_and_a_repeat_comes_from_the_cache(kinship):
    with TestClient(create_app({"kin": kinship})) as client:
        reply = client.post("/v1/predict", json={"inputs": [STORY, {"text": STORY}]})
        assert reply.status_code == 200, reply.text
        expected = kinship.predict([STORY])[0]
        assert reply.json()["model"] == "kin" and reply.json()["answers"][0]["prediction"] == expected["prediction"]
        assert client.post("/v1/predict", json={"model": "kin", "inputs": [STORY]}).status_code == 200
        metrics = client.get("/metrics").text
        assert 'autoglm_cache_total{model="kin",result="hit"} 1.0' in metrics
        assert 'autoglm_requests_total{code="200",endpoint="predict",model="kin"} 2.0' in metrics
        assert "autoglm_batch_size_bucket" in metrics and "autoglm_request_seconds_bucket" in metrics
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["status"] == "ready"
        assert client.get("/v1/models").json()["models"][0]["task"] == "classify"
        assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_user_mistakes_get_clear_status_codes(kinship):
    config = ServeConfig(max_inputs=2, max_body_bytes=2_000, api_key="sesame")
    with TestClient(create_app({"kin": kinship}, config)) as client:
        key = {"Authorization": "Bearer sesame"}
        assert client.post("/v1/predict", json={"inputs": [STORY]}).status_code == 401
        assert client.post("/v1/predict", json={"inputs": [STORY]}, headers={"X-API-Key": "sesame"}).status_code == 200
        missing = client.post("/v1/predict", json={"model": "kinship", "inputs": [STORY]}, headers=key)
        assert missing.status_code == 404 and "served: ['kin']" in missing.json()["detail"]
        assert client.post("/v1/predict", json={"inputs": [STORY] * 3}, headers=key).status_code == 413
        assert client.post("/v1/predict", json={"inputs": ["x" * 3_000]}, headers=key).status_code == 413
        assert client.post("/v1/predict", json={"inputs": []}, headers=key).status_code == 422
        assert client.post("/v1/generate", json={"inputs": [STORY]}, headers=key).status_code == 422
        bad = client.post("/v1/predict", json={"inputs": [{"txt": STORY}]}, headers=key)
        assert bad.status_code == 200 and "error" in bad.json()["answers"][0]  # the input's error, not a 500
        assert client.get("/healthz").status_code == 200  # no key needed to probe


def test_concurrent_requests_share_model_calls_and_a_lone_one_does_not_wait():
    model = SlowModel(seconds=0.05)
    config = ServeConfig(max_batch=8, max_wait_ms=200)
    with TestClient(create_app({"slow": model}, config)) as client:
        started = time.perf_counter()
        assert client.post("/v1/predict", json={"inputs": ["a"]}).json()["answers"] == [{"prediction": "A"}]
        assert time.perf_counter() - started < 0.2, "an idle server must not wait for a batch to fill"
        replies = post_at_once(client, 8)
        assert all(r.status_code == 200 for r in replies) and len(replies) == 8
        assert max(model.calls[1:]) > 1, f"no batching: {model.calls}"
        assert sum(model.calls[1:]) == 8


def test_a_full_queue_answers_429_with_retry_after_and_loses_nothing_it_took():
    model = SlowModel(seconds=0.2)
    with TestClient(create_app({"slow": model}, ServeConfig(max_batch=1, queue_size=1))) as client:
        replies = post_at_once(client, 6)
        codes = sorted(r.status_code for r in replies)
        assert set(codes) == {200, 429} and len(codes) == 6, codes
        assert all(r.headers["retry-after"] == "1" for r in replies if r.status_code == 429)
        assert sum(model.calls) == codes.count(200)


def test_stopping_finishes_the_queued_inputs():
    async def scenario() -> list[Any]:
        model = SlowModel(seconds=0.02)
        batcher = Batcher("slow", model, ServeConfig(max_batch=2), Metrics())
        batcher.start()
        futures = [batcher.submit(f"q{i}", {}) for i in range(5)]
        await batcher.stop()
        return [f.result() for f in futures]

    assert [a["prediction"] for a in asyncio.run(scenario())] == ["Q0", "Q1", "Q2", "Q3", "Q4"]


def test_generate_streams_a_text_pipelines_words(tmp_path: Path):
    raw = {
        "pipeline": {"name": "gen", "task": "generate", "target_field": "explanation"},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [1, 2], "stories": 80},
            "val": {"hops": [2], "stories": 8},
            "test": {"hops": [2], "stories": 8},
        },
        "decoder": {
            "plugin": "causal-lm",
            "hidden_size": 32,
            "num_layers": 1,
            "num_heads": 2,
            "intermediate_size": 64,
            "vocab_size": 400,
            "max_new_tokens": 8,
        },  # fmt: skip
        "train": {"epochs": 1, "lr": 0.01, "batch_size": 16},
    }
    build(validate_manifest(raw), tmp_path / "gen")
    pipeline = load(tmp_path / "gen")
    with TestClient(create_app({"gen": pipeline})) as client:
        whole = client.post("/v1/generate", json={"inputs": [STORY], "options": {"max_new_tokens": 6}})
        assert whole.status_code == 200, whole.text
        text = whole.json()["answers"][0]["generated"]
        with client.stream("POST", "/v1/generate", json={"inputs": [STORY], "stream": True,
                                                          "options": {"max_new_tokens": 6}}) as events:  # fmt: skip
            lines = [line for line in events.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        streamed = "".join(json.loads(line[6:]).get("text", "") for line in lines[:-1])
        assert streamed.strip() == text
        assert client.post("/v1/generate", json={"inputs": [STORY, STORY], "stream": True}).status_code == 422
