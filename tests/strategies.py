"""Hypothesis strategies for every event the governance Lambdas receive, from the real-shaped samples in
tests/events/ (the same shapes as /work/shared/events/).

Two families per event model (lambdas/ami_governance/models/events.py, models/jobs.py):

- `odd_*`: the sample's shape kept, one or more of the fields the product reads given an odd value: tag keys and
  values with control characters, NUL, astral unicode, over EC2's limits (key 128, value 256); AMI names at and
  over EC2's limits (3-128 characters of `[A-Za-z0-9()[] ./'@_-]`); ids of the wrong type (a number, a list,
  null) or size (`ami-` with 8 or 17 hex digits is an AMI id, 9, 16, 18 or 100,000 are not); regions that do not
  exist; foreign accounts; malformed times.
- `broken_*`: the structure broken at any level of the sample: a key removed, a value of the wrong type, extra
  keys, a value nested thousands deep, a list of thousands of items.

Each strategy draws an `Example`: the event and what was done to it (the test's failure message names it). The
events name `account` (by default moto's) so that a valid-shaped one reaches the services rather than being
refused as foreign, and AMI ids from `image_ids` (the caller's real AMIs, when it has some).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from tests.support import HOME_REGION, MOTO_ACCOUNT, load_event

# ---- the samples, by event model ---------------------------------------------------------------------------------

NEW_IMAGE_SAMPLES: Final = ("create_image", "create_image_console_untagged", "register_image", "copy_image")
TAG_SAMPLES: Final = ("create_tags_approval", "create_tags_mixed_resources")
DEREGISTER_SAMPLES: Final = ("deregister_image", "deregister_image_delete_snapshots")
MODIFY_SAMPLES: Final = ("modify_image_attribute_launch_permission",)
STATE_SAMPLES: Final = ("ami_state_available", "ami_state_deregistered", "ami_state_failed")
# ImportImage and CreateRestoreImageTask have no sample of their own: CreateImage's record with their name
# (their requestParameters differ, and the product reads only responseElements.imageId of them).
DERIVED_NEW_IMAGE_CALLS: Final = ("ImportImage", "CreateRestoreImageTask")

COPY_QUEUE_ARN: Final = f"arn:aws:sqs:{HOME_REGION}:{MOTO_ACCOUNT}:ami-governance-copy-jobs"
SCHEDULE_RULE_ARN: Final = f"arn:aws:events:{HOME_REGION}:{MOTO_ACCOUNT}:rule/ami-governance-report"

# A foreign account, an account id of the wrong shape.
FOREIGN_ACCOUNTS: Final = ("999988887777", "000000000000", "12345678901", "1234567890123", "abcdefghijkl", "")
# Region names EC2 does not have, of the right shape or not.
UNKNOWN_REGIONS: Final = (
    "us-east-9", "xx-nowhere-1", "mars-north-1", "us-east-1 ", " us-east-1", "US-EAST-1", "us_east_1",
    "us-east-1\n", "", "a" * 33, "us-east-1\x00", "eu-west-1a", "us-gov-east-12",
)  # fmt: skip
MALFORMED_TIMES: Final = (
    "not a time", "2026-13-45T99:61:61Z", "2026-02-30T00:00:00Z", "", "yesterday", "2026-11-20", "T10:30:00Z",
    "2026-11-20T10:30:00+25:00", "9" * 40, "2026-11-20T10:30:00Z\x00",
)  # fmt: skip
HUGE: Final = 100_000


@dataclass(frozen=True)
class Example:
    """A drawn event and what was done to it."""

    event: Any
    mutation: str
    sample: str = ""

    def __repr__(self) -> str:  # the event may be 100 KB: the failure message shows what was done instead
        return f"Example(sample={self.sample!r}, mutation={self.mutation!r})"


def sample(name: str, account: str = MOTO_ACCOUNT) -> dict[str, Any]:
    """A real-shaped sample for `account` (the samples use 111122223333, or 123456789012)."""
    event = load_event(name)
    event["account"] = account
    detail = event.get("detail")
    if isinstance(detail, dict) and isinstance(detail.get("userIdentity"), dict):
        identity = detail["userIdentity"]
        if identity.get("accountId") not in (None, account):
            identity["accountId"] = account
            for key in ("arn",):
                if isinstance(identity.get(key), str):
                    identity[key] = identity[key].replace("111122223333", account)
            issuer = (identity.get("sessionContext") or {}).get("sessionIssuer")
            if isinstance(issuer, dict) and isinstance(issuer.get("arn"), str):
                issuer["arn"] = issuer["arn"].replace("111122223333", account)
    return event


def cloudtrail_samples(account: str = MOTO_ACCOUNT) -> dict[str, dict[str, Any]]:
    samples = {name: sample(name, account) for name in (*NEW_IMAGE_SAMPLES, *TAG_SAMPLES, *DEREGISTER_SAMPLES,
                                                       *MODIFY_SAMPLES)}  # fmt: skip
    for call in DERIVED_NEW_IMAGE_CALLS:
        derived = sample("create_image", account)
        derived["detail"]["eventName"] = call
        samples[call] = derived
    delete_tags = sample("create_tags_approval", account)
    delete_tags["detail"]["eventName"] = "DeleteTags"
    samples["DeleteTags"] = delete_tags
    return samples


def state_samples(account: str = MOTO_ACCOUNT) -> dict[str, dict[str, Any]]:
    return {name: sample(name, account) for name in STATE_SAMPLES}


def copy_job(image_id: str = "ami-0a1b2c3d4e5f60718") -> dict[str, Any]:
    """A copy job as replication queues it (services/replicate.py)."""
    return {
        "source_image_id": image_id, "source_region": HOME_REGION, "target_region": "eu-west-1",
        "name": "payments-api-1.4.0", "description": "Copy of payments-api-1.4.0",
        "approved_by": f"arn:aws:iam::{MOTO_ACCOUNT}:role/ImageApprover",
        "approval_event_id": "c0ffee00-1111-4a4a-8b8b-000000000007", "generation": 0,
    }  # fmt: skip


def sqs_record(body: Any, message_id: str = "5fea7756-0ea4-451a-a703-a558b933e274") -> dict[str, Any]:
    """Lambda's SQS event record around `body` (a copy job, serialized unless it is already a string)."""
    return {
        "messageId": message_id, "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795084200000"},
        "messageAttributes": {}, "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3", "eventSource": "aws:sqs",
        "eventSourceARN": COPY_QUEUE_ARN, "awsRegion": HOME_REGION,
    }  # fmt: skip


def scheduled_event(account: str = MOTO_ACCOUNT) -> dict[str, Any]:
    """EventBridge's scheduled event, as the report's schedule rule delivers it."""
    return {
        "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": account, "time": "2026-11-23T06:00:00Z", "region": HOME_REGION,
        "resources": [SCHEDULE_RULE_ARN], "detail": {},
    }  # fmt: skip


# ---- odd values --------------------------------------------------------------------------------------------------

# Every code point but surrogates (JSON and UTF-8 cannot carry a lone one; AWS would refuse it before any event).
ANY_CHARACTER = st.characters(exclude_categories=["Cs"])
CONTROL_CHARACTER = st.sampled_from(["\x00", "\x01", "\x07", "\x08", "\t", "\n", "\r", "\x1b", "\x7f", "\x85",
                                     "\u2028", "\u202e", "\ufeff"])  # fmt: skip
ASTRAL_CHARACTER = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF, exclude_categories=["Cs"])


def _with(characters: st.SearchStrategy[str], min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(characters, min_size=min_size, max_size=max_size).map("".join)


def odd_texts(limit: int) -> st.SearchStrategy[str]:
    """Strings a tag key or value may be given by a hostile caller: control characters, NUL, astral unicode, at and
    over `limit`, empty, or 100,000 characters."""
    return st.one_of(
        _with(ANY_CHARACTER, 0, 40),
        _with(CONTROL_CHARACTER | ANY_CHARACTER, 1, 40),
        _with(ASTRAL_CHARACTER, 1, limit + 8),
        st.integers(limit - 1, limit + 1).map(lambda n: "k" * n),
        st.integers(limit + 1, 4 * limit).flatmap(lambda n: _with(ANY_CHARACTER, n, n)),
        st.just("x" * HUGE),
        st.sampled_from(["", " ", "aws:created", "ami-governance:approved", "ami-governance:compliance"]),
    )


# EC2's AMI name: 3-128 characters of letters, digits, ( ) [ ] space . / - ' @ _ ("CreateImage", Name).
AMI_NAME_CHARACTERS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789()[] ./-'@_"
AMI_NAMES = st.one_of(
    st.sampled_from([3, 128]).flatmap(lambda n: _with(st.sampled_from(AMI_NAME_CHARACTERS), n, n)),  # at the limits
    st.sampled_from([0, 1, 2, 129, 1000, HUGE]).map(lambda n: "n" * n),  # over them
    _with(ANY_CHARACTER, 3, 128),  # outside the character set
    _with(CONTROL_CHARACTER, 3, 10),
)


def odd_image_ids(real: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """Ids where an AMI id belongs: the real ones, ids of the right shape that name no AMI, and ids of the wrong
    size or type."""
    hex_digits = "0123456789abcdef"
    right_shape = (
        st.sampled_from([8, 17])
        .flatmap(lambda n: _with(st.sampled_from(hex_digits), n, n))
        .map(lambda digits: f"ami-{digits}")
    )
    wrong_size = (
        st.sampled_from([0, 7, 9, 16, 18, 64])
        .flatmap(lambda n: _with(st.sampled_from(hex_digits), n, n))
        .map(lambda digits: f"ami-{digits}")
    )
    return st.one_of(
        *([st.sampled_from(list(real))] if real else []),
        right_shape,
        wrong_size,
        st.sampled_from(["ami-0A1B2C3D4E5F60718", "AMI-0a1b2c3d4e5f60718", "ami-0a1b2c3d4e5f6071g", "ami-",
                         "snap-0a1b2c3d4e5f60718", "i-0a1b2c3d4e5f60718", "ami-0a1b2c3d4e5f60718\n",
                         " ami-0a1b2c3d4e5f60718", "ami-0a1b2c3d\x00", "ami-" + "0" * HUGE]),
        wrong_types(),
    )  # fmt: skip


def wrong_types() -> st.SearchStrategy[Any]:
    """A value of a JSON type no string field has."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just([]),
        st.lists(st.text(max_size=10), min_size=1, max_size=3), st.just({}),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8), min_size=1, max_size=3),
    )  # fmt: skip


def odd_tags(real_keys: Sequence[str] = ()) -> st.SearchStrategy[list[Any]]:
    """A tagSet's items: odd keys and values, sometimes a real key with an odd value, sometimes not even items."""
    key = odd_texts(128) | (st.sampled_from(list(real_keys)) if real_keys else odd_texts(128))
    item = st.fixed_dictionaries({"key": key}, optional={"value": odd_texts(256) | st.none()})
    return st.lists(item | wrong_types(), max_size=6)


def odd_resources(image_ids: Sequence[str] = ()) -> st.SearchStrategy[list[Any]]:
    resource = st.fixed_dictionaries({"resourceId": odd_image_ids(image_ids)}) | wrong_types()
    return st.lists(resource, min_size=0, max_size=6)


# ---- mutations ---------------------------------------------------------------------------------------------------

Path = tuple[str | int, ...]


def _set(event: Any, path: Path, value: Any) -> None:
    target = event
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def _get(event: Any, path: Path) -> Any:
    for step in path:
        event = event[step]
    return event


def _mutated(name: str, template: dict[str, Any], changes: list[tuple[Path, Any]]) -> Example:
    event = copy.deepcopy(template)
    described = []
    for path, value in changes:
        _set(event, path, value)
        shown = repr(value)
        described.append(f"{'.'.join(map(str, path))}={shown if len(shown) <= 60 else shown[:60] + '…'}")
    return Example(event, "; ".join(described), name)


def _field_values(image_ids: Sequence[str]) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "id": st.one_of(
            st.uuids().map(str),
            st.just("e" * 129),
            st.just("e" * HUGE),
            wrong_types(),
            _with(CONTROL_CHARACTER | ANY_CHARACTER, 1, 20),
        ),
        "account": st.sampled_from(FOREIGN_ACCOUNTS) | wrong_types(),
        "region": st.sampled_from(UNKNOWN_REGIONS) | wrong_types(),
        "time": st.sampled_from(MALFORMED_TIMES) | wrong_types(),
        "image_id": odd_image_ids(image_ids),
        "name": AMI_NAMES | wrong_types(),
        "text": odd_texts(256) | wrong_types(),
        "instance_id": st.sampled_from(["i-0abc", "i-" + "0" * HUGE, "i-0ABC1234DEF567890", "ami-0a1b2c3d"])
        | wrong_types(),
        "bool": wrong_types() | st.sampled_from(["true", "yes", "0"]),
    }


# The fields the product reads, per model, and the kind of odd value each may take.
ENVELOPE_FIELDS: Final[list[tuple[Path, str]]] = [
    (("id",), "id"), (("account",), "account"), (("region",), "region"), (("time",), "time"),
]  # fmt: skip
CLOUDTRAIL_FIELDS: Final[list[tuple[Path, str]]] = [
    (("detail", "eventID"), "id"), (("detail", "awsRegion"), "region"), (("detail", "eventTime"), "time"),
    (("detail", "eventName"), "text"), (("detail", "eventSource"), "text"), (("detail", "errorCode"), "text"),
    (("detail", "userIdentity", "arn"), "text"), (("detail", "userIdentity", "type"), "text"),
    (("detail", "userIdentity", "accountId"), "account"),
]  # fmt: skip
FIELDS_BY_SAMPLE: Final[dict[str, list[tuple[Path, str]]]] = {
    "new": [
        (("detail", "responseElements", "imageId"), "image_id"), (("detail", "requestParameters", "name"), "name"),
        (("detail", "requestParameters", "instanceId"), "instance_id"),
        (("detail", "requestParameters", "noReboot"), "bool"),
    ],
    "copy_image": [
        (("detail", "responseElements", "imageId"), "image_id"), (("detail", "requestParameters", "name"), "name"),
        (("detail", "requestParameters", "sourceImageId"), "image_id"),
        (("detail", "requestParameters", "sourceRegion"), "region"),
    ],
    "tags": [],  # their resources and tags are drawn whole (odd_resources, odd_tags)
    "deregister": [
        (("detail", "requestParameters", "imageId"), "image_id"),
        (("detail", "requestParameters", "deleteAssociatedSnapshots"), "bool"),
    ],
    "modify": [
        (("detail", "requestParameters", "imageId"), "image_id"),
        (("detail", "requestParameters", "attributeType"), "text"),
    ],
    "state": [
        (("detail", "ImageId"), "image_id"), (("detail", "State"), "text"), (("detail", "ErrorMessage"), "text"),
    ],
}  # fmt: skip


def _kind_of(name: str) -> str:
    if name in TAG_SAMPLES or name == "DeleteTags":
        return "tags"
    if name in DEREGISTER_SAMPLES:
        return "deregister"
    if name in MODIFY_SAMPLES:
        return "modify"
    if name in STATE_SAMPLES:
        return "state"
    return "copy_image" if name == "copy_image" else "new"


@st.composite
def _odd(draw: st.DrawFn, templates: dict[str, dict[str, Any]], image_ids: Sequence[str],
         tag_keys: Sequence[str]) -> Example:  # fmt: skip
    name = draw(st.sampled_from(sorted(templates)))
    template = templates[name]
    kind = _kind_of(name)
    fields = ENVELOPE_FIELDS + FIELDS_BY_SAMPLE[kind] + (CLOUDTRAIL_FIELDS if kind != "state" else [])
    values = _field_values(image_ids)
    changes: list[tuple[Path, Any]] = []
    if kind != "state":
        # A valid-shaped AMI id where the call names one, so the odd values reach the services.
        for path, field_kind in FIELDS_BY_SAMPLE[kind]:
            if field_kind == "image_id" and image_ids:
                changes.append((path, draw(st.sampled_from(list(image_ids)))))
    elif image_ids:
        changes.append((("detail", "ImageId"), draw(st.sampled_from(list(image_ids)))))
    if kind == "tags":
        changes.append((("detail", "requestParameters", "resourcesSet", "items"), draw(odd_resources(image_ids))))
        changes.append((("detail", "requestParameters", "tagSet", "items"), draw(odd_tags(tag_keys))))
    if kind == "new" and draw(st.booleans()):
        spec = {"resourceType": "image", "tags": draw(odd_tags(tag_keys))}
        changes.append((("detail", "requestParameters", "tagSpecificationSet"), {"items": [spec]}))
    # Then odd values in up to three of the fields the product reads (none, for a tag call: its lists are odd).
    chosen = draw(st.lists(st.sampled_from(fields), max_size=3, unique=True, min_size=0 if kind == "tags" else 1))
    for path, field_kind in chosen:
        changes.append((path, draw(values[field_kind])))
    return _mutated(name, template, changes)


def odd_cloudtrail_events(
    account: str = MOTO_ACCOUNT, image_ids: Sequence[str] = (), tag_keys: Sequence[str] = ()
) -> st.SearchStrategy[Example]:
    """CloudTrail records of every call the product follows, valid-shaped, with odd values."""
    return _odd(cloudtrail_samples(account), image_ids, tag_keys)


def odd_state_change_events(account: str = MOTO_ACCOUNT, image_ids: Sequence[str] = ()) -> st.SearchStrategy[Example]:
    """`EC2 AMI State Change` events, valid-shaped, with odd values."""
    return _odd(state_samples(account), image_ids, ())


@st.composite
def odd_copy_job_records(draw: st.DrawFn, image_ids: Sequence[str] = ()) -> Example:
    """SQS records of copy jobs, valid-shaped, with odd values in the job or the record."""
    job = copy_job(draw(st.sampled_from(list(image_ids))) if image_ids else "ami-0a1b2c3d4e5f60718")
    values = {
        "source_image_id": odd_image_ids(image_ids), "source_region": st.sampled_from(UNKNOWN_REGIONS),
        "target_region": st.sampled_from(UNKNOWN_REGIONS) | st.sampled_from(["eu-west-1", "us-east-1"]),
        "name": AMI_NAMES, "description": odd_texts(255), "approved_by": odd_texts(256),
        "approval_event_id": odd_texts(128), "generation": st.sampled_from([-1, 2**63, 1.5, "1", None]),
    }  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=3, unique=True))
    for key in chosen:
        job[key] = draw(values[key] | wrong_types())
    record = sqs_record(job)
    record_fields = {"messageId": odd_texts(100), "receiptHandle": odd_texts(100),
                     "attributes": st.just({"ApproximateReceiveCount": "many"})}  # fmt: skip
    record_changes = draw(st.lists(st.sampled_from(sorted(record_fields)), max_size=1))
    for key in record_changes:
        record[key] = draw(record_fields[key])
    return Example({"Records": [record]}, f"job {chosen}, record {record_changes}", "copy job")


@st.composite
def odd_scheduled_events(draw: st.DrawFn, account: str = MOTO_ACCOUNT) -> Example:
    """The report's scheduled event with odd values, and on-demand invokes naming odd `regions`."""
    event: Any = scheduled_event(account)
    values = _field_values(())
    chosen = draw(st.lists(st.sampled_from(ENVELOPE_FIELDS), max_size=2, unique=True))
    for path, field_kind in chosen:
        _set(event, path, draw(values[field_kind]))
    described = [".".join(map(str, path)) for path, _ in chosen]
    if draw(st.booleans()):
        regions = draw(st.one_of(
            st.lists(st.sampled_from(UNKNOWN_REGIONS) | odd_texts(32), max_size=3), wrong_types(),
            st.just(["us-east-1"] * 1000), st.just([]),
        ))  # fmt: skip
        event["regions"] = regions
        described.append(f"regions={regions!r:.60}")
    return Example(event, "; ".join(described), "scheduled event")


# ---- broken structure --------------------------------------------------------------------------------------------


def _paths(value: Any, prefix: Path = (), depth: int = 8) -> list[Path]:
    """The paths into a JSON value (object keys and list indexes), the root's children first; not below `depth`
    levels, nor past a list's first items (a mutation may have made either huge)."""
    found: list[Path] = []
    if depth == 0:
        return found
    children = value.items() if isinstance(value, dict) else enumerate(value[:3]) if isinstance(value, list) else ()
    for key, child in children:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key), depth - 1))
    return found


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def deeply_nested(depth: int, leaf: Any = "ami-0a1b2c3d4e5f60718") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"items": value}
    return value


@st.composite
def _broken(draw: st.DrawFn, templates: dict[str, dict[str, Any]]) -> Example:
    name = draw(st.sampled_from(sorted(templates)))
    event = copy.deepcopy(templates[name])
    steps = []
    rounds = draw(st.integers(1, 3))
    for round_ in range(rounds):
        paths = _paths(event)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _get(event, path[:-1])
        # What makes the event huge comes last, so that the next step's paths stay few.
        kinds = ["remove", "wrong type", "extra keys", "null"]
        how = draw(st.sampled_from(kinds + (["deeply nested", "huge list"] if round_ == rounds - 1 else [])))
        if how == "remove":
            del parent[path[-1]]
        elif how == "wrong type":
            parent[path[-1]] = draw(JSON_VALUES | wrong_types())
        elif how == "null":
            parent[path[-1]] = None
        elif how == "extra keys":
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            if isinstance(target, dict):
                target.update(draw(st.dictionaries(st.text(min_size=1, max_size=12), JSON_VALUES, min_size=1,
                                                   max_size=5)))  # fmt: skip
        elif how == "deeply nested":
            parent[path[-1]] = deeply_nested(draw(st.sampled_from([50, 500, 5000])), parent[path[-1]])
        else:
            parent[path[-1]] = [copy.deepcopy(parent[path[-1]])] * draw(st.sampled_from([1000, 10_000]))
        steps.append(f"{how} at {'.'.join(map(str, path))}")
    if draw(st.integers(0, 9)) == 0:  # sometimes not even an object
        event = draw(st.sampled_from([None, [], "event", 5, [event]]))
        steps.append("the event itself of the wrong type")
    return Example(event, "; ".join(steps), name)


def broken_cloudtrail_events(account: str = MOTO_ACCOUNT) -> st.SearchStrategy[Example]:
    """CloudTrail records of every call the product follows, with their structure broken at any level."""
    return _broken(cloudtrail_samples(account))


def broken_state_change_events(account: str = MOTO_ACCOUNT) -> st.SearchStrategy[Example]:
    return _broken(state_samples(account))


def broken_scheduled_events(account: str = MOTO_ACCOUNT) -> st.SearchStrategy[Example]:
    return _broken({"scheduled event": scheduled_event(account)})


@st.composite
def broken_copy_job_records(draw: st.DrawFn) -> Example:
    """Lambda SQS events around copy jobs, broken at any level: the event, a record, or the job in the body."""
    where = draw(st.sampled_from(["job", "record", "event"]))
    if where == "job":
        broken = draw(_broken({"copy job": copy_job()}))
        body = draw(st.sampled_from(["json", "not json", "truncated"]))
        text = json.dumps(broken.event) if body == "json" else "{not json" if body == "not json" else '{"source'
        event: Any = {"Records": [sqs_record(text)]}
        return Example(event, f"job: {broken.mutation}, body {body}", "copy job")
    if where == "record":
        broken = draw(_broken({"record": sqs_record(copy_job())}))
        return Example({"Records": [broken.event]}, f"record: {broken.mutation}", "copy job")
    broken = draw(_broken({"event": {"Records": [sqs_record(copy_job())]}}))
    return Example(broken.event, f"event: {broken.mutation}", "copy job")


# ---- the fields a model cannot do without: broken, the event must be refused --------------------------------------

REQUIRED_ENVELOPE: Final[tuple[Path, ...]] = (("id",), ("source",), ("account",), ("time",), ("region",),
                                              ("resources",), ("detail",))  # fmt: skip
REQUIRED_CLOUDTRAIL: Final[tuple[Path, ...]] = (
    ("detail", "eventName"), ("detail", "eventSource"), ("detail", "eventTime"), ("detail", "eventID"),
    ("detail", "awsRegion"),
)  # fmt: skip
REQUIRED_STATE: Final[tuple[Path, ...]] = (("detail", "ImageId"), ("detail", "State"))
# Neither a string, nor a date (pydantic reads a number as a Unix time), nor a list of strings.
UNREADABLE: st.SearchStrategy[Any] = st.sampled_from([None, {}, {"S": "x"}, [{}], [[1]], True])


@st.composite
def _missing_or_unreadable(draw: st.DrawFn, templates: dict[str, dict[str, Any]], required: Sequence[Path]) -> Example:
    name = draw(st.sampled_from(sorted(templates)))
    path = draw(st.sampled_from([*REQUIRED_ENVELOPE, *required]))
    event = copy.deepcopy(templates[name])
    if draw(st.booleans()):
        del _get(event, path[:-1])[path[-1]]
        return Example(event, f"no {'.'.join(map(str, path))}", name)
    value = draw(UNREADABLE)
    _set(event, path, value)
    return Example(event, f"{'.'.join(map(str, path))}={value!r}", name)


def unreadable_cloudtrail_events(account: str = MOTO_ACCOUNT) -> st.SearchStrategy[Example]:
    """CloudTrail records missing a field the model requires, or carrying one no model reads: always refused."""
    return _missing_or_unreadable(cloudtrail_samples(account), REQUIRED_CLOUDTRAIL)


def unreadable_state_change_events(account: str = MOTO_ACCOUNT) -> st.SearchStrategy[Example]:
    return _missing_or_unreadable(state_samples(account), REQUIRED_STATE)


# ---- a tag call naming many resources ----------------------------------------------------------------------------


def create_tags_naming(
    resource_ids: Sequence[str], tags: dict[str, str], account: str = MOTO_ACCOUNT
) -> dict[str, Any]:
    """The sample CreateTags record naming `resource_ids` (in that order) and setting `tags`."""
    event = sample("create_tags_approval", account)
    parameters = event["detail"]["requestParameters"]
    parameters["resourcesSet"]["items"] = [{"resourceId": resource} for resource in resource_ids]
    parameters["tagSet"]["items"] = [{"key": key, "value": value} for key, value in tags.items()]
    return event
