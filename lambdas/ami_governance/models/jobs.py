"""Copy jobs: the messages replication puts on its copy queue, one per source AMI and target region, and the
CopyImage request a copy worker makes of one."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from ami_governance.models.ids import ImageId, RegionName


class CopyJob(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    # The source's id and region key its inventory item: a job that could not name one is malformed.
    source_image_id: ImageId
    source_region: RegionName
    target_region: RegionName
    name: str
    description: str = ""
    approved_by: str
    approval_event_id: str
    generation: int = Field(ge=0)


@dataclass(frozen=True)
class CopyRequest:
    """One CopyImage call, as the copy rules build it from a job and the policy (rules/approval.py)."""

    region: str
    source_image_id: str
    source_region: str
    client_token: str
    name: str
    description: str
    encrypted: bool
    kms_key_id: str | None
    tags: dict[str, str] = field(default_factory=dict)


class SqsRecord(BaseModel):
    """The fields of a Lambda SQS event record that the copy worker reads."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message_id: str = Field(alias="messageId")
    receipt_handle: str = Field(alias="receiptHandle")
    body: str
    attributes: dict[str, str] = Field(default_factory=dict)
    event_source_arn: str = Field(alias="eventSourceARN")

    @property
    def receive_count(self) -> int:
        try:
            return int(self.attributes.get("ApproximateReceiveCount", "1"))
        except ValueError:
            return 1
