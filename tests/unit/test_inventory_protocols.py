"""The services' views of the inventory (Protocols) promise what the adapter does, defaults included: mypy checks
that the adapter fits each Protocol, not that a default value is the same (a service written against the Protocol's
default would silently get the adapter's)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import pytest

from ami_governance.adapters.inventory import Inventory
from ami_governance.services.cleanup import CleanupInventory
from ami_governance.services.copy import CopyInventory
from ami_governance.services.enforce import InventoryStore
from ami_governance.services.lineage import LineageStore
from ami_governance.services.replicate import ReplicationInventory
from ami_governance.services.report import ReportInventory
from tests.fakes import FakeInventory

PROTOCOLS = [
    LineageStore,
    ReplicationInventory,
    CopyInventory,
    CleanupInventory,
    InventoryStore,
    ReportInventory,
]


def members(protocol: type) -> list[str]:
    return sorted(
        {
            name
            for cls in protocol.__mro__
            if getattr(cls, "_is_protocol", False) and cls is not Protocol
            for name, value in vars(cls).items()
            if callable(value) and not name.startswith("_")
        }
    )


def parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_the_adapter_takes_each_operation_as_the_service_calls_it(protocol: type) -> None:
    assert members(protocol)
    for name in members(protocol):
        assert parameters(getattr(Inventory, name)) == parameters(getattr(protocol, name)), name


@pytest.mark.parametrize(
    "protocol",
    [LineageStore, ReplicationInventory, CopyInventory, ReportInventory],
    ids=lambda p: p.__name__,
)
def test_the_fake_inventory_takes_each_operation_as_the_adapter_does(protocol: type) -> None:
    for name in members(protocol):
        assert parameters(getattr(FakeInventory, name)) == parameters(getattr(Inventory, name)), name


def test_cleanup_reads_are_consistent_by_default_as_the_adapters_are() -> None:
    default = inspect.signature(CleanupInventory.get).parameters["consistent"].default

    assert default is True


def _conforms(inventory: Inventory, fake: FakeInventory) -> None:
    # Checked by mypy (strict), never run: the adapter and the fake fit the report service's view of the inventory.
    views: list[ReportInventory] = [inventory, fake]
    del views
