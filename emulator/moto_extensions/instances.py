"""DescribeInstances paging as EC2 does it. moto 5.2.5 answers 100 reservations and a NextToken when `MaxResults`
is absent (EC2 answers all of them), accepts any page size, and continues by position in a list that may have
changed since the previous page."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.instances import InstanceResponse

from emulator.moto_extensions.paging import page, page_size, refuse_with_ids

# "This value can be between 5 and 1000. You cannot specify this parameter and the instance IDs parameter in the
# same call." (the EC2 model's DescribeInstances MaxResults doc; today's keeps only the second sentence).
INSTANCES_PAGE_MIN = 5
INSTANCES_PAGE_MAX = 1000


def apply() -> None:
    _describe_instances_pages_as_ec2_does()


def _describe_instances_pages_as_ec2_does() -> None:
    def describe_instances(self: InstanceResponse) -> ActionResult:
        self.error_on_dryrun()
        instance_ids = self._get_param("InstanceIds", [])
        token = self._get_param("NextToken")
        requested = self._get_int_param("MaxResults")
        refuse_with_ids(instance_ids, requested, "instancesSet")
        size = page_size(requested, INSTANCES_PAGE_MIN, INSTANCES_PAGE_MAX, paging=bool(token))
        filters = self._filters_from_querystring()
        reservations: list[Any] = (
            self.ec2_backend.get_reservations_by_instance_ids(instance_ids, filters=filters)
            if instance_ids
            else self.ec2_backend.describe_instances(filters=filters)
        )
        if size is None:
            # "If you do not specify instance IDs or filters, the output includes information for all instances"
            return ActionResult({"Reservations": reservations})
        chosen, next_token = page(reservations, lambda reservation: (reservation.id,), size, token)
        return ActionResult({"Reservations": chosen, "NextToken": next_token})

    InstanceResponse.describe_instances = describe_instances  # type: ignore[method-assign]
