"""Ray Serve: the scale-out path. One deployment per artifact (or cascade file), as many replicas as the cluster
has room for, each batching its inputs with ``serve.batch``; requests and answers are /v1/predict's JSON.

    pip install "autoglm-serve[ray]"
    serve run autoglm_serve.ray_app:build artifact=artifacts/kinship replicas=2

or from Python: ``serve.run(deployment("artifacts/kinship", replicas=2))``. ``autoglm serve`` stays the
single-machine server (its cache, bounded queue, metrics and streaming); Ray Serve brings its own autoscaling,
queueing and metrics.
"""

from __future__ import annotations

from typing import Any


def deployment(
    artifact: str,
    *,
    name: str = "autoglm",
    replicas: int = 1,
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
    cpus_per_replica: float = 1.0,
    gpus_per_replica: float = 0.0,
) -> Any:
    """A bound Ray Serve application answering ``POST /`` with ``{"inputs": [...]}`` from ``artifact``."""
    from ray import serve

    @serve.deployment(
        name=name, num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
    )
    class AutoGLMDeployment:
        def __init__(self, path: str) -> None:
            from autoglm_sdk import load

            self.pipeline = load(path)  # each replica loads its own copy, on the device Ray gave it

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=max_wait_ms / 1000)
        async def answer(self, records: list[Any]) -> list[dict[str, Any]]:
            import asyncio

            return await asyncio.to_thread(self.pipeline.predict, records, errors="report")

        async def __call__(self, request: Any) -> dict[str, Any]:
            import asyncio

            from autoglm_serve.server import PredictRequest

            body = request if isinstance(request, dict) else await request.json()
            parsed = PredictRequest.model_validate(body)
            answers = await asyncio.gather(*(self.answer(record) for record in parsed.inputs))
            return {"model": name, "answers": list(answers)}

    return AutoGLMDeployment.bind(artifact)


def build(args: dict[str, str]) -> Any:
    """The application builder ``serve run autoglm_serve.ray_app:build artifact=DIR [replicas=N] ...`` calls."""
    known = {"artifact", "name", "replicas", "max_batch", "max_wait_ms", "cpus_per_replica", "gpus_per_replica"}
    unknown = sorted(set(args) - known)
    if unknown or "artifact" not in args:
        raise ValueError(f"serve run ...:build takes artifact=DIR and optionally {sorted(known - {'artifact'})}")
    numbers = {"replicas": int, "max_batch": int, "max_wait_ms": float, "cpus_per_replica": float}
    options = {k: numbers.get(k, float if k == "gpus_per_replica" else str)(v) for k, v in args.items()}
    return deployment(options.pop("artifact"), **options)
