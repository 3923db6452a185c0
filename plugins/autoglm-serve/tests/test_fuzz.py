"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis: whatever a client sends that the schema
allows, or nearly allows, the server answers without a 500, with the status codes, content types and bodies its
schema documents."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from autoglm_serve.server import ServeConfig, create_app


def test_no_request_breaks_the_server(kinship: Any) -> None:
    app = create_app({"kin": kinship}, ServeConfig(max_batch=4, timeout_s=20))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /v1/predict", "POST /v1/generate"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            # a schema-valid /v1/generate to a labelling model is refused (422 "use /v1/predict"): by design
            refused = [positive_data_acceptance] if case.operation.path == "/v1/generate" else []
            case.call_and_validate(excluded_checks=refused)

        fuzz()
