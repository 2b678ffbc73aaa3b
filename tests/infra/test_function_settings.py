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
)
from tests.infra.support import function_by_handler

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

SETTINGS_OF_HANDLER: dict[str, type[FunctionSettings]] = {
    "handlers.enforce.handler": EnforceSettings,
    "handlers.cleanup.handler": CleanupSettings,
    "handlers.replicate.handler": ReplicateSettings,
    "handlers.copy.handler": CopySettings,
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
