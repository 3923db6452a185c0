"""Built artifacts behind an HTTP API: dynamic batching, a response cache, a bounded queue and metrics.

Each served artifact has one :class:`Batcher`: requests put their inputs on its queue and await one future per
input; a worker takes the first waiting input, then whatever else is already waiting (up to ``max_batch``), and
only when more than one request was waiting does it wait up to ``max_wait_ms`` for the batch to fill (an idle
server answers a lone request at once). The batch runs in a thread (``Pipeline.predict``), so the event loop keeps
accepting requests meanwhile. Answers are cached by the hash of their input and options (least recently used
out first). A full queue answers 429 with ``Retry-After``; shutting down stops taking requests (readyz says 503)
and finishes the queued ones.

Endpoints: ``POST /v1/predict`` and ``POST /v1/generate`` (``{"model": NAME, "inputs": [text or record, ...],
"options": {...}}``, answers as ``autoglm run`` prints them; ``"stream": true`` on generate streams one input's
text as server-sent events), ``GET /v1/models``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``
(Prometheus), and the OpenAPI schema at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

#: the most inputs one request may carry (the schema's limit; ``ServeConfig.max_inputs`` may lower it: 413)
MAX_INPUTS = 64


@dataclass
class ServeConfig:
    """How the server batches, caches, bounds and guards its work."""

    max_batch: int = 16
    max_wait_ms: float = 5.0
    queue_size: int = 256
    cache_size: int = 1024
    max_inputs: int = MAX_INPUTS  # inputs per request
    max_body_bytes: int = 1_000_000
    timeout_s: float = 30.0
    api_key: str | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="Served artifact's name (default: the only one, else the first).")
    inputs: list[str | dict[str, Any]] = Field(
        ..., min_length=1, max_length=MAX_INPUTS, description="Texts or records, as `autoglm run` takes them."
    )


class GenerateRequest(PredictRequest):
    options: dict[str, Any] = Field(
        default_factory=dict, description="Generation options, as `autoglm run`'s flags (max_new_tokens, ...)."
    )
    stream: bool = Field(False, description="Stream one input's text as server-sent events.")


class ErrorReply(BaseModel):
    detail: str = Field(description="What was wrong, in one line.")


class PredictReply(BaseModel):
    model: str = Field(description="The artifact that answered.")
    answers: list[dict[str, Any]] = Field(description="One answer per input, in order, as `autoglm run` prints them.")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers an endpoint can give (each with an ErrorReply body)."""
    what = {
        401: "missing or wrong API key",
        404: "no artifact of that name is served",
        413: "too many inputs, or a body over the size limit",
        422: "the request does not fit the schema, or asks what the artifact cannot do",
        429: "the queue is full; retry after Retry-After seconds",
        503: "starting up or shutting down",
        504: "no answer within the timeout",
    }
    return {code: {"model": ErrorReply, "description": what[code]} for code in codes}


class Metrics:
    """Prometheus figures of one server (its own registry, so several servers in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "autoglm_requests", "Requests answered", ["model", "endpoint", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "autoglm_request_seconds",
            "Request latency",
            ["model", "endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch = Histogram(
            "autoglm_batch_size", "Inputs per model call", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )  # fmt: skip
        self.queue = Gauge("autoglm_queue_depth", "Inputs waiting", ["model"], registry=self.registry)
        self.cache = Counter("autoglm_cache", "Cache lookups", ["model", "result"], registry=self.registry)


@dataclass
class _Job:
    key: str
    record: Any
    options: dict[str, Any]
    future: asyncio.Future


@dataclass
class Batcher:
    """One artifact's queue, worker, and cache."""

    name: str
    pipeline: Any
    config: ServeConfig
    metrics: Metrics
    queue: asyncio.Queue = field(init=False)
    cache: OrderedDict = field(default_factory=OrderedDict)
    worker: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.config.queue_size)

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Finish every queued input, then stop the worker."""
        await self.queue.join()
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker

    def submit(self, record: Any, options: dict[str, Any]) -> asyncio.Future:
        """A future for ``record``'s answer: from the cache, or queued (QueueFull when the queue is full)."""
        key = hashlib.sha256(json.dumps([record, options], sort_keys=True, default=str).encode()).hexdigest()
        future = asyncio.get_running_loop().create_future()
        if key in self.cache:
            self.cache.move_to_end(key)
            self.metrics.cache.labels(self.name, "hit").inc()
            future.set_result(self.cache[key])
            return future
        self.metrics.cache.labels(self.name, "miss").inc()
        self.queue.put_nowait(_Job(key, record, options, future))
        self.metrics.queue.labels(self.name).set(self.queue.qsize())
        return future

    async def _work(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            waiting = not self.queue.empty()  # an idle server answers a lone request at once
            deadline = time.monotonic() + self.config.max_wait_ms / 1000
            while len(jobs) < self.config.max_batch:
                if not self.queue.empty():
                    jobs.append(self.queue.get_nowait())
                    continue
                left = deadline - time.monotonic()
                if not waiting or left <= 0:
                    break
                try:
                    jobs.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            self.metrics.queue.labels(self.name).set(self.queue.qsize())
            try:
                await self._run(jobs)
            finally:
                for _ in jobs:
                    self.queue.task_done()

    async def _run(self, jobs: list[_Job]) -> None:
        """One model call per set of options (inputs asking for other generation options cannot share a call)."""
        groups: dict[str, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(json.dumps(job.options, sort_keys=True, default=str), []).append(job)
        for group in groups.values():
            self.metrics.batch.labels(self.name).observe(len(group))
            records = [(f"input {i + 1}", job.record) for i, job in enumerate(group)]
            try:
                answers = await asyncio.to_thread(self.pipeline.predict, records, errors="report", **group[0].options)
            except Exception as exc:  # a bad option, a plugin's bug: every input of the call gets the error
                answers = [{"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}] * len(group)
            for job, answer in zip(group, answers):
                answer = {k: v for k, v in answer.items() if k != "input"} if "error" in answer else answer
                if "error" not in answer:
                    self.cache[job.key] = answer
                    while len(self.cache) > self.config.cache_size:
                        self.cache.popitem(last=False)
                if not job.future.done():
                    job.future.set_result(answer)


class Guard:
    """The API key and the body size limit on /v1/ paths, as plain ASGI middleware (Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream copy per request, a fifth of the server's time here)."""

    def __init__(self, app: Any, config: ServeConfig) -> None:
        self.app, self.config = app, config

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            key = self.config.api_key
            if key and headers.get("authorization") != f"Bearer {key}" and headers.get("x-api-key") != key:
                return await JSONResponse({"detail": "missing or wrong API key"}, status_code=401)(scope, receive, send)
            size = headers.get("content-length", "")
            if size.isdigit() and int(size) > self.config.max_body_bytes:
                limit = f"body over {self.config.max_body_bytes} bytes"
                return await JSONResponse({"detail": limit}, status_code=413)(scope, receive, send)
        await self.app(scope, receive, send)


def create_app(pipelines: dict[str, Any], config: ServeConfig | None = None) -> FastAPI:
    """The HTTP app serving ``pipelines`` (name -> loaded artifact, :func:`autoglm_sdk.load`)."""
    config = config or ServeConfig()
    metrics = Metrics()
    state: dict[str, Any] = {"ready": False, "batchers": {}}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        for name, pipeline in pipelines.items():
            state["batchers"][name] = Batcher(name, pipeline, config, metrics)
            state["batchers"][name].start()
        state["ready"] = True
        yield
        state["ready"] = False  # graceful: take no more, finish what is queued
        await asyncio.gather(*(b.stop() for b in state["batchers"].values()))

    app = FastAPI(title="AutoGLM serving", version="0.1.0", lifespan=lifespan)

    app.add_middleware(Guard, config=config)

    def batcher(name: str | None) -> Batcher:
        if not state["ready"]:
            raise HTTPException(503, "not ready", headers={"Retry-After": "1"})
        batchers = state["batchers"]
        if name is None:
            return next(iter(batchers.values()))
        if name not in batchers:
            raise HTTPException(404, f"no model {name!r}; served: {sorted(batchers)}")
        return batchers[name]

    async def answer(request: PredictRequest | GenerateRequest, endpoint: str) -> Any:
        started = time.perf_counter()
        chosen = batcher(request.model)
        code = 200
        try:
            if len(request.inputs) > config.max_inputs:
                raise HTTPException(413, f"{len(request.inputs)} inputs; at most {config.max_inputs} a request")
            if endpoint == "generate" and not chosen.pipeline.task.textual:
                raise HTTPException(422, f"model {chosen.name!r} answers with labels; use /v1/predict")
            try:
                options = getattr(request, "options", {})
                futures = [chosen.submit(record, options) for record in request.inputs]
            except asyncio.QueueFull:
                raise HTTPException(429, "queue full", headers={"Retry-After": "1"}) from None
            try:
                answers = await asyncio.wait_for(asyncio.gather(*futures), config.timeout_s)
            except TimeoutError:
                raise HTTPException(504, f"no answer within {config.timeout_s} s") from None
            # straight to JSON: answers are plain JSON already, and FastAPI's encoder walks every nested value
            return JSONResponse({"model": chosen.name, "answers": answers})
        except HTTPException as exc:
            code = exc.status_code
            raise
        finally:
            metrics.requests.labels(chosen.name, endpoint, str(code)).inc()
            metrics.latency.labels(chosen.name, endpoint).observe(time.perf_counter() - started)

    @app.post("/v1/predict", responses={200: {"model": PredictReply}, **_errors(401, 404, 413, 422, 429, 503, 504)})
    async def predict(request: PredictRequest) -> Any:
        """Answer each input as `autoglm run` does (a label, or a text pipeline's generated text)."""
        return await answer(request, "predict")

    @app.post(
        "/v1/generate",
        responses={
            **_errors(401, 404, 413, 422, 429, 503, 504),
            200: {
                "model": PredictReply,
                "content": {"text/event-stream": {}},
                "description": "answers, or with `stream` the text as events",
            },
        },
    )
    async def generate(request: GenerateRequest) -> Any:
        """A text pipeline's generated text for each input; `stream` sends one input's text as it is written."""
        if not request.stream:
            return await answer(request, "generate")
        chosen = batcher(request.model)
        if len(request.inputs) != 1 or not chosen.pipeline.task.textual:
            raise HTTPException(422, "streaming needs one input and a text pipeline")
        loop, pieces = asyncio.get_running_loop(), asyncio.Queue()
        put = lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)  # noqa: E731

        def work() -> None:
            try:
                chosen.pipeline.predict(request.inputs, **request.options, on_text=put)
            except Exception as exc:  # the stream says so and ends
                put({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
            put(None)

        async def events():  # noqa: ANN202
            task = asyncio.create_task(asyncio.to_thread(work))
            while (piece := await pieces.get()) is not None:
                yield f"data: {json.dumps(piece if isinstance(piece, dict) else {'text': piece})}\n\n"
            await task
            yield "data: [DONE]\n\n"

        metrics.requests.labels(chosen.name, "generate", "200").inc()
        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/models")
    async def models() -> Any:
        """The served artifacts and their tasks."""
        return {"models": [{"name": name, "task": p.task.kind, "path": str(p.path)} for name, p in pipelines.items()]}

    @app.get("/healthz")
    async def healthz() -> Any:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "starting up or shutting down"}})
    async def readyz() -> Any:
        """Models loaded and taking requests (503 while starting or shutting down)."""
        if not state["ready"]:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return {"status": "ready", "queue": {n: b.queue.qsize() for n, b in state["batchers"].items()}}

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def prometheus() -> Response:
        """Requests, latency, batch sizes, queue depth and cache hits, in Prometheus' text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
