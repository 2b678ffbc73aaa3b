"""SNS notices."""

from __future__ import annotations

import json

from ami_governance.adapters.clients import client
from ami_governance.models.notices import Notice


class Notifier:
    def __init__(self, topic_arn: str) -> None:
        self.topic_arn = topic_arn
        region = topic_arn.split(":")[3]
        self._sns = client("sns", region)

    def publish(self, notice: Notice) -> str:
        response = self._sns.publish(
            TopicArn=self.topic_arn,
            Subject=notice.subject,
            Message=json.dumps(notice.body, indent=2, sort_keys=True),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": str(notice.body.get("kind", ""))}},
        )
        return str(response["MessageId"])
