"""boto3 clients for the emulator's own endpoint, one per (service, region), from one session (one model load)."""

from __future__ import annotations

from typing import Any

import boto3


class EmulatorClients:
    def __init__(self, endpoint_url: str, access_key: str) -> None:
        self.endpoint_url = endpoint_url
        self.access_key = access_key  # names the principal in the emulator's CloudTrail records
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(  # type: ignore[call-overload]
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key,
                aws_secret_access_key="emulator",
            )
        return self._clients[key]
