"""IAM enforcement in the emulator's HTTP middleware: a function's call is evaluated against its role's policies
before moto serves it, and refused as AWS refuses it.

Only calls signed with a function's access key (`lambda-<function name>`) are evaluated: test clients, the
emulator's own clients and its CloudTrail emulation are not principals of the stack.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulator.cloudtrail import nest, parse_query
from emulator.iam.evaluator import EXPLICIT_DENY, Decision, Evaluator
from emulator.iam.requests import Authorization, Call, Caller, Key, Unmodelled, authorizations

logger = logging.getLogger("emulator.iam")

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
FUNCTION_KEY_PREFIX = "lambda-"
EVENTBRIDGE = "events.amazonaws.com"
# JSON protocol targets: X-Amz-Target is `<service's target prefix>.<Operation>`.
_S3_SUBRESOURCES = frozenset({"acl", "tagging", "uploads", "uploadId", "partNumber", "retention", "legal-hold"})


@dataclass(frozen=True)
class Policy:
    name: str
    document: Mapping[str, Any]


@dataclass
class PolicyRegistry:
    """The identity policies of each role (by role name), as the deployer resolved them from the templates."""

    by_role: dict[str, list[Policy]] = field(default_factory=dict)

    def attach(self, role_name: str, name: str, document: Mapping[str, Any]) -> None:
        self.by_role.setdefault(role_name, []).append(Policy(name, document))

    def of(self, role_name: str) -> list[Policy]:
        return list(self.by_role.get(role_name, []))


def parse_call(environ: Mapping[str, Any], body: bytes, caller: Caller) -> Call | None:
    """The service, operation and parameters of a signed request; None if it is not signed with SigV4."""
    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match is None:
        return None
    region, service = match.group(2), match.group(3)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return Call(service, str(target).rsplit(".", 1)[-1], region, params if isinstance(params, dict) else {}, caller)
    if service == "s3":
        return _s3_call(environ, region, caller)
    text = body.decode("utf-8", "replace") if body else str(environ.get("QUERY_STRING", ""))
    flat = parse_query(text)
    operation = flat.pop("Action", "")
    flat.pop("Version", None)
    return Call(service, operation or f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}", region,
                nest(flat), caller)  # fmt: skip


def _s3_call(environ: Mapping[str, Any], region: str, caller: Caller) -> Call:
    method = str(environ.get("REQUEST_METHOD", ""))
    parts = unquote(str(environ.get("PATH_INFO", ""))).lstrip("/").split("/", 1)
    query = parse_query(str(environ.get("QUERY_STRING", "")))
    bucket, key = parts[0], parts[1] if len(parts) > 1 else ""
    operation = f"{method} /{bucket}/{key}"
    if key and not (_S3_SUBRESOURCES & set(query)) and not environ.get("HTTP_X_AMZ_COPY_SOURCE"):
        operation = {"PUT": "PutObject", "GET": "GetObject"}.get(method, operation)
    return Call("s3", operation, region, {"Bucket": bucket, "Key": key}, caller)


class MotoState:
    """What the request builder reads, straight from moto's backends in this process."""

    def __init__(self, account: str) -> None:
        self.account = account

    def ec2_tags(self, region: str, resource_id: str) -> dict[str, str]:
        from moto.ec2.models import ec2_backends

        return dict(ec2_backends[self.account][region].tags.get(resource_id, {}))

    def ec2_owner(self, region: str, resource_id: str) -> str | None:
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[self.account][region]
        if resource_id.startswith("ami-"):
            image = backend.amis.get(resource_id)
            if image is None:
                return None
            return "amazon" if image.owner_alias == "amazon" else str(image.owner_id)
        snapshot = backend.snapshots.get(resource_id)
        return None if snapshot is None else str(snapshot.owner_id)

    def key(self, region: str, reference: str) -> Key | None:
        from moto.kms.models import kms_backends

        account = reference.split(":")[4] if reference.startswith("arn:") else self.account
        try:
            key = kms_backends[account][region].describe_key(reference)
        except Exception:  # moto raises its own NotFoundException (or KeyError) for an unknown key or alias
            return None
        policy = json.loads(key.policy) if key.policy else None
        return Key(key.arn, policy, tuple(sorted(key.aliases)))

    def bus_policy(self, region: str, bus: str) -> dict[str, Any] | None:
        from moto.events.models import events_backends

        event_bus = events_backends[self.account][region].event_buses.get(bus)
        policy = event_bus.policy if event_bus is not None else None
        return json.loads(policy) if policy else None

    def topic_key(self, topic_arn: str) -> str | None:
        from moto.sns.models import sns_backends

        _, _, _, region, account, _ = topic_arn.split(":", 5)
        topic = sns_backends[account][region].topics.get(topic_arn)
        return str(topic.kms_master_key_id) if topic is not None and topic.kms_master_key_id else None

    def queue_key(self, queue_arn: str) -> str | None:
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, name = queue_arn.split(":", 5)
        queue = sqs_backends[account][region].queues.get(name)
        key = getattr(queue, "kms_master_key_id", None) if queue is not None else None
        # SSE-SQS (no key) and the AWS managed key need nothing of the caller.
        return str(key) if key and key != "alias/aws/sqs" else None


@dataclass(frozen=True)
class Denial:
    call: Call
    authorization: Authorization | None
    decision: Decision | None
    message: str


class Enforcer:
    """Evaluates a function's call; `check` returns a Denial, or None to let moto serve it."""

    def __init__(
        self,
        account: str,
        evaluator: Evaluator,
        policies: PolicyRegistry,
        caller_of: Callable[[str], Caller | None],
        state: Any = None,
    ) -> None:
        self.account = account
        self.evaluator = evaluator
        self.policies = policies
        self.caller_of = caller_of
        self.state = state or MotoState(account)
        self._lock = threading.Lock()
        self.denials: list[Denial] = []

    def caller(self, environ: Mapping[str, Any]) -> Caller | None:
        match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if match is None or not match.group(1).startswith(FUNCTION_KEY_PREFIX):
            return None
        return self.caller_of(match.group(1))

    def report(self) -> dict[str, Any]:
        stats = self.evaluator.stats
        return {
            "evaluations": stats.evaluations,
            "evaluation_seconds": round(stats.seconds, 3),
            "ms_per_evaluation": round(1000 * stats.seconds / stats.evaluations, 3) if stats.evaluations else None,
            "denials": [
                {"principal": d.call.caller.arn, "service": d.call.service, "operation": d.call.operation,
                 "region": d.call.region, "action": d.authorization.action if d.authorization else None,
                 "resource": d.authorization.resource if d.authorization else None, "message": d.message}
                for d in self.denials
            ],
        }  # fmt: skip

    def check(self, environ: Mapping[str, Any], body: bytes) -> Denial | None:
        caller = self.caller(environ)
        if caller is None:
            return None
        call = parse_call(environ, body, caller)
        if call is None:
            return None
        try:
            requests = authorizations(call, self.state)
        except Unmodelled as error:
            return self._deny(Denial(call, None, None, str(error)))
        role = caller.role_arn.rsplit("/", 1)[-1]
        policies = [{"name": p.name, "policy": p.document} for p in self.policies.of(role)]
        for request in requests:
            decision = self.evaluator.evaluate(simulation(caller, request, policies))
            if not decision.allowed:
                return self._deny(Denial(call, request, decision, denial_message(caller, request, decision)))
        return None

    def put_events_refusal(
        self, environ: Mapping[str, Any], body: bytes, principal_of: Callable[[str], str]
    ) -> Denial | None:
        """Whether a bus's resource policy refuses a PutEvents, whoever calls (`principal_of`: access key ->
        principal ARN, as CloudTrail names it).

        Only the bus policy is evaluated: the callers' own identity policies live in their accounts (or are a
        test's), so they are taken to allow the call; an explicit Deny of the bus policy still refuses it, and a
        caller of another account needs the bus policy's Allow as well. The context is what EventBridge
        documents for PutEvents: `events:source` and `events:detail-type`, each the list of the request's
        entries' values, and the principal's account. AWS refuses the whole request (AccessDeniedException)."""
        match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if (
            match is None
            or match.group(3) != "events"
            or not str(environ.get("HTTP_X_AMZ_TARGET", "")).endswith(".PutEvents")
        ):
            return None
        access_key, region = match.group(1), match.group(2)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return None
        entries = [e for e in params.get("Entries") or [] if isinstance(e, dict)] if isinstance(params, dict) else []
        arn = principal_of(access_key)
        account = arn.split(":")[4] if arn.count(":") >= 5 else self.account
        caller = Caller(arn, arn, account)
        by_bus: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            by_bus.setdefault(bus, []).append(entry)
        allow_all = [
            {
                "name": "the caller's own policies",
                "policy": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}],
                },
            }
        ]
        for bus, bus_entries in by_bus.items():
            policy = self.state.bus_policy(region, bus)
            if policy is None and account == self.account:
                continue  # no resource policy: the same account's identity policy is all IAM asks
            request = Authorization(
                "events:PutEvents",
                f"arn:aws:events:{region}:{self.account}:event-bus/{bus}",
                {
                    "aws:PrincipalAccount": account,
                    "aws:PrincipalArn": arn,
                    "aws:RequestedRegion": region,
                    "events:source": sorted({str(e.get("Source")) for e in bus_entries}),
                    "events:detail-type": sorted({str(e.get("DetailType")) for e in bus_entries}),
                },
                self.account,
                resource_policy=policy or {"Version": "2012-10-17", "Statement": []},
            )
            decision = self.evaluator.evaluate(simulation(caller, request, allow_all))
            if not decision.allowed:
                call = Call("events", "PutEvents", region, {"EventBusName": bus}, caller)
                # The callers' own policies allow it here: what refuses is the bus policy.
                reason = ("with an explicit deny in a resource-based policy" if decision.result == EXPLICIT_DENY
                          else "because no resource-based policy allows the events:PutEvents action")  # fmt: skip
                message = f"User: {arn} is not authorized to perform: events:PutEvents on resource: {request.resource} "
                return self._deny(Denial(call, request, decision, message + reason))
        return None

    def eventbridge_publish_refusal(self, topic_arn: str) -> str | None:
        """Why EventBridge may not publish to a KMS-encrypted topic, or None if its key policy lets it. SNS uses
        the key as events.amazonaws.com, with the topic in the encryption context and no aws:SourceAccount or
        aws:SourceArn (SNS developer guide, key management): only the key policy can grant it."""
        reference = self.state.topic_key(topic_arn)
        if reference is None:
            return None
        region = topic_arn.split(":")[3]
        key = self.state.key(region, reference)
        if key is None:
            return f"the KMS key {reference} of {topic_arn} does not exist"
        principal = Caller(EVENTBRIDGE, EVENTBRIDGE, self.account)
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            request = Authorization(
                action,
                key.arn,
                {"kms:EncryptionContext:aws:sns:topicArn": topic_arn},
                key.arn.split(":")[4],
                resource_policy=key.policy or {"Version": "2012-10-17", "Statement": []},
                via="sns:Publish",
            )
            decision = self.evaluator.evaluate(simulation(principal, request, []))
            if not decision.allowed:
                message = denial_message(principal, request, decision)
                call = Call("events", "PutTargets", region, {"Target": topic_arn}, principal)
                self._deny(Denial(call, request, decision, message))
                return message
        return None

    def _deny(self, denial: Denial) -> Denial:
        with self._lock:
            self.denials.append(denial)
        call, request, decision = denial.call, denial.authorization, denial.decision
        context = dict(request.context) if request else {}
        logger.warning(
            "IAM denied %s %s:%s in %s: %s%s%s",
            call.caller.arn, call.service, call.operation, call.region,
            denial.message,
            f" (context: {json.dumps(context, sort_keys=True)})" if request else "",
            f"; keys that do not apply, ignored: {list(decision.ignored_context_keys)}" if decision else "",
        )  # fmt: skip
        return denial


def simulation(caller: Caller, request: Authorization, policies: list[dict[str, Any]]) -> dict[str, Any]:
    """The runSimulation input of one request (see simulate.mjs)."""
    simulation: dict[str, Any] = {
        "request": {
            "principal": caller.arn,
            "action": request.action,
            "resource": {"resource": request.resource, "accountId": request.resource_account},
            "contextVariables": dict(request.context),
        },
        "identityPolicies": policies,
    }
    if request.resource_policy is not None:
        simulation["resourcePolicy"] = request.resource_policy
    return simulation


def denial_message(caller: Caller, request: Authorization, decision: Decision) -> str:
    # The wording of AWS's authorization errors ("User: … is not authorized to perform: … on resource: …"). A
    # service principal has no identity policy: only a resource policy can grant it.
    kind = "identity-based" if caller.arn.startswith("arn:") else "resource-based"
    if decision.result == EXPLICIT_DENY:
        reason = f"with an explicit deny in {'an' if kind == 'identity-based' else 'a'} {kind} policy"
    else:
        reason = f"because no {kind} policy allows the {request.action} action"
    return f"User: {caller.arn} is not authorized to perform: {request.action} on resource: {request.resource} {reason}"


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_response(denial: Denial) -> ErrorResponse:
    """The refusal in the service's own error shape (each service's protocol in botocore's models)."""
    service, message = denial.call.service, denial.message
    request_id = str(uuid.uuid4())
    if service == "ec2":
        text = f"You are not authorized to perform this operation. {message}"
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>'
            f"<Message>{_xml(text)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return ErrorResponse(403, [("Content-Type", "text/xml")], xml.encode())
    if service in ("sns", "autoscaling", "sts"):
        code = "AuthorizationError" if service == "sns" else "AccessDenied"
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return ErrorResponse(403, [("Content-Type", "text/xml")], xml.encode())
    if service == "s3":
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>{_xml(message)}'
            f"</Message><RequestId>{request_id}</RequestId></Error>"
        )
        return ErrorResponse(403, [("Content-Type", "application/xml")], xml.encode())
    if service == "sqs":
        # SQS's JSON protocol keeps its query error codes (awsQueryCompatible): AccessDenied, HTTP 403.
        payload = {"__type": "com.amazonaws.sqs#AccessDenied", "message": message}
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "AccessDenied;Sender")]
        return ErrorResponse(403, headers, json.dumps(payload).encode())
    error_type = "com.amazonaws.dynamodb.v20120810#AccessDeniedException" if service == "dynamodb" else (
        "AccessDeniedException")  # fmt: skip
    payload = {"__type": error_type, "message": message}
    return ErrorResponse(400, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(payload).encode())


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
