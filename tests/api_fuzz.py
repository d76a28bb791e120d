"""A Schemathesis property-based run against a served bot's /api/v1 (used by tests/test_api.py,
in its own process so Schemathesis' Hypothesis settings stay apart from the suite's):
`python tests/api_fuzz.py BASE_URL TOKEN`. Exit 1 when any answer is a server error."""

from __future__ import annotations

import sys

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error


def main(base: str, token: str) -> int:
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        @schemathesis.given(case=op.as_strategy())  # noqa: B023
        def run(case) -> None:
            response = case.call(base_url=base.removesuffix("/api/v1"), headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except Exception as err:  # noqa: BLE001 (report every operation's failure, then exit 1)
            failures.append(f"{op.method.upper()} {op.path}: {type(err).__name__}: {str(err)[:500]}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
