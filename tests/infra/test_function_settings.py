"""Each function's template environment is exactly what its settings model reads: a variable the model needs and
the template does not give would fail the function's cold start in the cloud, and one the template gives and no
model reads is dead configuration."""

from __future__ import annotations

from typing import Any

import pytest

from ami_governance.settings import (
    CleanupSettings,
    CopySettings,
    EnforceSettings,
    FunctionSettings,
    ReplicateSettings,
    ReportSettings,
    SettingsError,
)
from tests.infra.support import function_by_handler

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

SETTINGS_OF_HANDLER: dict[str, type[FunctionSettings]] = {
    "handlers.enforce.handler": EnforceSettings,
    "handlers.cleanup.handler": CleanupSettings,
    "handlers.replicate.handler": ReplicateSettings,
    "handlers.copy.handler": CopySettings,
    "handlers.report.handler": ReportSettings,
}
# Set by the Lambda runtime itself, not by the template.
RUNTIME_VARIABLES = {"AWS_REGION"}


@pytest.mark.parametrize("handler", SETTINGS_OF_HANDLER)
def test_a_functions_environment_is_what_its_settings_read(replication_app: Any, handler: str) -> None:
    # Given a function of the replicating app, and the settings model its handler loads at the cold start
    _, function = function_by_handler(replication_app.template(replication_app.home), handler)
    model = SETTINGS_OF_HANDLER[handler]

    # Then the template gives it every variable its model reads, and none that it does not (Powertools' own aside)
    given = {name for name in function["Environment"]["Variables"] if not name.startswith("POWERTOOLS_")}
    assert given == set(model.VARIABLES.values()) - RUNTIME_VARIABLES


REPORT_ENVIRONMENT = {
    "POLICY_PARAMETER_NAME": "/ami-governance/policy",
    "INVENTORY_TABLE_NAME": "inventory",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notifications",
    "AWS_REGION": "us-east-1",
}


def test_the_report_is_told_its_bucket() -> None:
    # Given the report's environment with the bucket CloudFormation named, then its settings read it
    settings = ReportSettings.from_environment(
        {**REPORT_ENVIRONMENT, "REPORTS_BUCKET_NAME": "amigovernancehome-reports-1a2b"}
    )
    assert settings.reports_bucket_name == "amigovernancehome-reports-1a2b"


@pytest.mark.parametrize(
    "bucket", ["arn:aws:s3:::reports", "s3://reports", "Reports", "ab", "reports-", f"r{'e' * 63}"]
)
def test_a_report_bucket_that_is_not_a_bucket_name_fails_the_cold_start_naming_the_variable(bucket: str) -> None:
    # Given a value that is not an S3 bucket name (an ARN, a URL, uppercase, too short or long, a trailing hyphen)
    with pytest.raises(SettingsError, match=f"REPORTS_BUCKET_NAME is not an S3 bucket name: {bucket!r}"):
        ReportSettings.from_environment({**REPORT_ENVIRONMENT, "REPORTS_BUCKET_NAME": bucket})


def test_a_report_without_its_bucket_fails_the_cold_start_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="missing environment variables: REPORTS_BUCKET_NAME"):
        ReportSettings.from_environment(REPORT_ENVIRONMENT)
