"""How many API calls a client has made: the report states its cost per region, and the benchmark checks it.

botocore emits `before-send` once per HTTP request it is about to send, retries included, so the count is what AWS
bills in throttling tokens. One handler per client (registered once, by unique id); the count lives on the client,
and a caller takes the difference between two readings.
"""

from __future__ import annotations

import threading
from typing import Any

_HANDLER_ID = "ami-governance-call-counter"
_lock = threading.Lock()
_counts: dict[int, int] = {}


def calls_made(client: Any) -> int:
    """The number of requests `client` has sent since it was first counted (0 on first sight)."""
    key = id(client)
    with _lock:
        if key not in _counts:
            _counts[key] = 0

            def _count(**_: Any) -> None:
                with _lock:
                    _counts[key] += 1

            # First: a stub (moto, botocore.stub) answers at before-send too, and handlers after it never run.
            client.meta.events.register_first("before-send", _count, unique_id=_HANDLER_ID)
        return _counts[key]
