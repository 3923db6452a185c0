"""Ray Serve, the scale-out path: the deployment answers as the artifact does, on a local Ray instance."""

from __future__ import annotations

from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an extra: pip install 'autoglm-serve[ray]'")

STORY = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"


def test_a_ray_serve_deployment_answers_like_the_artifact(kinship: Any) -> None:
    from ray import serve

    from autoglm_serve.ray_app import build

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        handle = serve.run(build({"artifact": str(kinship.path), "max_batch": "4"}), name="kin", route_prefix=None)
        replies = [handle.remote({"inputs": [STORY, {"text": STORY}]}) for _ in range(3)]
        expected = kinship.predict([STORY])[0]["prediction"]
        for reply in replies:
            answers = reply.result(timeout_s=120)["answers"]
            assert [a["prediction"] for a in answers] == [expected, expected]
    finally:
        serve.shutdown()
        ray.shutdown()


def test_the_builder_names_what_it_takes() -> None:
    from autoglm_serve.ray_app import build

    with pytest.raises(ValueError, match="takes artifact=DIR"):
        build({"replica": "2", "artifact": "x"})
