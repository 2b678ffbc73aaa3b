"""The emulator's HTTP endpoint: moto's server, CloudTrail emulation around it, and the `/_governance` API.

POST /_governance/drain      block until every queued event and deliverable mapped SQS message is handled; JSON
                             list of what ran ({"queues": true}: {"invocations": [...], "sqs_messages_not_visible":
                             {queue ARN: messages in flight or delayed, which the drain does not wait for}})
GET  /_governance/events     the event log: every event put on a bus, with the rules it matched
POST /_governance/schedule   fire the scheduled rules now
GET  /_governance/functions  the deployed functions (name, handler, environment)
POST /_governance/principals {"<access key>": "<principal ARN>", ...}: who CloudTrail says made a call
POST /_governance/creation-dates {"region": ..., "images": {"ami-…": ISO 8601}, "snapshots": {"snap-…": ...}}: age
                             AMIs and snapshots (CreationDate, StartTime), which no EC2 API can
GET  /_governance/iam        with --enforce-iam: evaluations, time spent evaluating, and every denial
GET  /_governance/health     200 once the stack is deployed

Lambda's Invoke (POST /2015-03-31/functions/{FunctionName}/invocations) runs the deployed functions in the
emulator's workers (emulator/lambda_invoke.py); every other AWS call is moto's.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.events.models import EventsBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import Queue, SQSBackend
from werkzeug.serving import BaseWSGIServer, make_server

from emulator import lambda_invoke, moto_extensions
from emulator.api_call_recording import RECORD_API_CALLS_ENV, recording_directory, start_recording
from emulator.assembly import read_assembly, synthesize
from emulator.clients import EmulatorClients
from emulator.cloudtrail import (
    NEW_IMAGE_CALLS,
    RECORDED_CALLS,
    STATE_AFTER_CALL,
    ApiCall,
    PrincipalBook,
    cloudtrail_event,
    image_of_call,
    nest,
    parse_query,
    state_change_event,
)
from emulator.deployer import DeployedStack, StackDeployer
from emulator.functions import FunctionRegistry, FunctionSpec
from emulator.iam.enforcement import Enforcer, PolicyRegistry, error_response
from emulator.iam.evaluator import Evaluator
from emulator.iam.requests import Caller
from emulator.router import Router

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

logger = logging.getLogger(__name__)

ACCOUNT = "123456789012"  # moto's account
CONTROL_PREFIX = "/_governance/"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class GovernanceEmulator:
    """moto's server with the governance stack deployed into it. `start()` synthesizes (or reads `cdk_out`),
    serves on `host:port` (port 0 picks a free one) and deploys every stack of the assembly."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4566,
        policy_file: Path | None = None,
        cdk_out: Path | None = None,
        workdir: Path | None = None,
        principals: Mapping[str, str] | None = None,
        pending_seconds: float = 0.0,
        cloudtrail_delay_seconds: float = 0.0,
        enforce_iam: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.policy_file = policy_file
        self.cdk_out = cdk_out
        # A workdir the emulator made for itself (assembly, logs) goes when it stops; a given one stays.
        self._temporary_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ami-governance-emulator-"))
        self.pending_seconds = pending_seconds
        # CloudTrail reaches EventBridge after the service's own events (on AWS the `EC2 AMI State Change` usually
        # comes first): a delay shows that order.
        self.cloudtrail_delay_seconds = cloudtrail_delay_seconds
        self.principals = PrincipalBook(ACCOUNT, principals)
        self.stacks: list[DeployedStack] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.functions: FunctionRegistry | None = None
        self.router: Router | None = None
        self._ready = False
        self._clients: EmulatorClients | None = None
        # (region, AMI) whose creation state change was sent: a CopyImage repeated with its client token creates
        # nothing, so AWS sends nothing more for it.
        self._announced: set[tuple[str, str]] = set()
        # With IAM enforced, each function's calls are evaluated against its role's policies (emulator/iam/).
        self.enforce_iam = enforce_iam
        self.policies = PolicyRegistry()
        self.evaluator: Evaluator | None = None
        self.enforcer: Enforcer | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GovernanceEmulator:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per AWS call
        moto_extensions.apply()
        assembly_dir = self.cdk_out or synthesize(self.workdir / "cdk.out", self.policy_file)
        artifacts = read_assembly(assembly_dir)
        if self.enforce_iam:
            self.evaluator = Evaluator().start()  # before serving: a missing Node or package fails the start
            self.enforcer = Enforcer(ACCOUNT, self.evaluator, self.policies, self._caller_of)
        app = _GovernanceApp(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator-http", daemon=True)
        self._thread.start()
        self._clients = EmulatorClients(self.endpoint_url, "emulator-eventbridge")  # the port is known now
        self.functions = FunctionRegistry(self.endpoint_url, self.workdir / "logs", self._function_access_key)
        clients = self._clients
        enforcer = self.enforcer
        self.router = Router(
            ACCOUNT, self.functions, self._send_sqs, self._publish_sns, lambda region: clients.client("sqs", region),
            sns_target_refusal=enforcer.eventbridge_publish_refusal if enforcer is not None else None,
        )  # fmt: skip
        _route_put_events_through(self.router)
        _report_queue_changes_to(self.router)
        deployer = StackDeployer(
            self.endpoint_url, ACCOUNT, self.functions, self.router.add_sqs_mapping, policies=self.policies
        )
        self.stacks = [deployer.deploy(artifact) for artifact in artifacts]
        record_base = recording_directory()
        if record_base is not None:
            run = start_recording(record_base, zip(artifacts, self.stacks, strict=True))
            self.functions.worker_environment[RECORD_API_CALLS_ENV] = str(run)  # read by lambda_bootstrap.py
        self._ready = True
        return self

    def stop(self) -> None:
        if self.router is not None:
            self.router.stop()
        if self.functions is not None:
            self.functions.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.evaluator is not None:
            self.evaluator.stop()
        if self._temporary_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- wiring ------------------------------------------------------------------------------

    def _function_access_key(self, spec: FunctionSpec) -> str:
        key = f"lambda-{spec.name}"
        role = spec.role_arn.rsplit("/", 1)[-1] or spec.name
        self.principals.add(key, f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{spec.name}")
        return key

    def _caller_of(self, access_key: str) -> Caller | None:
        """The session of the function whose access key signed a call (see _function_access_key)."""
        if self.functions is None or not access_key.startswith("lambda-"):
            return None
        spec = self.functions.find(access_key.removeprefix("lambda-"))
        if spec is None:
            return None
        role = spec.role_arn.rsplit("/", 1)[-1] or spec.name
        return Caller(
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{spec.name}",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
            account=ACCOUNT,
        )

    def _publish_sns(self, topic_arn: str, message: str) -> None:
        assert self._clients is not None
        self._clients.client("sns", topic_arn.split(":")[3]).publish(TopicArn=topic_arn, Message=message)

    def _send_sqs(self, queue_arn: str, body: str, attributes: Mapping[str, str] | None = None) -> None:
        region, name = queue_arn.split(":")[3], queue_arn.rsplit(":", 1)[-1]
        assert self._clients is not None
        sqs = self._clients.client("sqs", region)
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        message_attributes: dict[str, MessageAttributeValueTypeDef] = {
            k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
        }
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=message_attributes)

    def record_call(self, call: ApiCall, status: int, response_body: str) -> None:
        """CloudTrail: the call's event on its region's default bus, then the AMI's state change if any."""
        assert self.router is not None
        event = cloudtrail_event(call, ACCOUNT, status, response_body)
        self.router.put(call.region, "default", event, delay=self.cloudtrail_delay_seconds)
        state = STATE_AFTER_CALL.get(call.action)
        image_id = image_of_call(event)
        if status >= 400 or not state or not image_id:
            return
        request_id = event["detail"]["requestID"]
        if call.action not in NEW_IMAGE_CALLS:
            self.router.put(
                call.region, "default", state_change_event(image_id, state, call.region, ACCOUNT, request_id)
            )
            return
        if (call.region, image_id) in self._announced:
            return
        self._announced.add((call.region, image_id))
        # A new AMI ends as moto made it: available, or failed (a copy whose KMS key is unusable) with its reason.
        final_state, reason = moto_extensions.image_state(ACCOUNT, call.region, image_id)
        change = state_change_event(image_id, final_state, call.region, ACCOUNT, request_id, reason)
        if self.pending_seconds > 0:
            # moto makes AMIs available at once; AWS keeps them pending for minutes. Show them pending until
            # their state-change event, so that what the functions see matches what AWS would show.
            moto_extensions.set_image_state(ACCOUNT, call.region, image_id, "pending")
            self.router.put(
                call.region,
                "default",
                change,
                delay=self.pending_seconds,
                before=lambda: moto_extensions.set_image_state(ACCOUNT, call.region, image_id, final_state),
            )
        else:
            self.router.put(call.region, "default", change)

    # ---- control API -------------------------------------------------------------------------

    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:  # noqa: PLR0911 - one per route
        if self.router is None or self.functions is None:
            return 503, {"ready": False}
        route = path.removeprefix(CONTROL_PREFIX).strip("/")
        if route == "health" and method == "GET":
            return (200, {"ready": self._ready}) if self._ready else (503, {"ready": False})
        if route == "drain" and method == "POST":
            request = json.loads(body or b"{}")
            invocations = [asdict(invocation) for invocation in self.router.drain(float(request.get("timeout", 60)))]
            if not request.get("queues"):
                return 200, invocations
            return 200, {"invocations": invocations, "sqs_messages_not_visible": self.router.messages_not_visible()}
        if route == "events" and method == "GET":
            return 200, self.router.event_log()
        if route == "schedule" and method == "POST":
            return 200, {"fired": self.router.fire_schedules()}
        if route == "functions" and method == "GET":
            return 200, [
                {"name": f.name, "arn": f.arn, "handler": f.handler, "environment": f.environment,
                 "code": str(f.code_dir), "log": str(self.workdir / "logs" / f"{f.name}.log"),
                 "event_source_mappings": [
                     {"uuid": m.uuid, "event_source_arn": m.queue_arn, "batch_size": m.batch_size,
                      "maximum_batching_window_seconds": m.maximum_batching_window_seconds,
                      "report_batch_item_failures": m.report_batch_item_failures, "enabled": m.enabled}
                     for m in self.router.mappings if m.function.name == f.name
                 ]}
                for f in self.functions.all()
            ]  # fmt: skip
        if route == "principals" and method == "POST":
            for access_key, arn in json.loads(body or b"{}").items():
                self.principals.add(access_key, arn)
            return 200, {"ok": True}
        if route == "iam" and method == "GET":
            if self.enforcer is None:
                return 404, {"error": "IAM is not enforced (python -m emulator --enforce-iam)"}
            return 200, self.enforcer.report()
        if route == "creation-dates" and method == "POST":
            return _set_creation_dates(body)
        return 404, {"error": f"no such control route: {method} {path}"}


class _GovernanceApp:
    """WSGI middleware in front of moto: the control API, and CloudTrail records of the EC2 calls it serves."""

    def __init__(self, moto_app: Callable[..., Iterable[bytes]], emulator: GovernanceEmulator) -> None:
        self.moto_app = moto_app
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            status, payload = self.emulator.control(environ["REQUEST_METHOD"], path, body)
            data = json.dumps(payload, default=str).encode()
            start_response(f"{status} {'OK' if status < 400 else 'ERROR'}", [("Content-Type", "application/json")])
            return [data]
        enforcer = self.emulator.enforcer
        denial = None
        if enforcer is not None:
            denial = enforcer.put_events_refusal(environ, body, lambda key: self.emulator.principals.caller(key).arn)
            denial = denial or enforcer.check(environ, body)
        if denial is not None:
            refusal = error_response(denial)
            start_response(f"{refusal.status} ERROR", refusal.headers)
            return [refusal.body]
        if lambda_invoke.is_invoke(environ["REQUEST_METHOD"], path):
            return self._invoke(environ, path, body, start_response)
        call = self._recorded_ec2_call(environ, body)
        if call is None:
            return self.moto_app(environ, start_response)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        chunks = list(self.moto_app(environ, capture))
        response = b"".join(chunks)
        self.emulator.record_call(call, captured.get("status", 500), response.decode("utf-8", "replace"))
        return [response]

    def _invoke(
        self, environ: dict[str, Any], path: str, body: bytes, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Lambda Invoke for the deployed functions, which run in the emulator's workers, not in moto."""
        emulator = self.emulator
        if emulator.router is None or emulator.functions is None:
            start_response("503 ERROR", [("Content-Type", "application/json")])
            return [b'{"ready": false}']
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(2) if match else "us-east-1"

        def header(name: str) -> str | None:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return None if value is None else str(value)

        try:
            response = lambda_invoke.invoke(
                environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""), header, body, region, ACCOUNT,
                emulator.functions, emulator.router,
            )  # fmt: skip
        except Exception as error:  # the emulator failed (a worker that cannot start): Lambda's ServiceException
            logger.exception("Invoke failed in the emulator: %s", path)
            response = lambda_invoke.service_error(f"the emulator failed: {type(error).__name__}: {error}")
        reason = "OK" if response.status < 400 else "ERROR"
        headers = [*response.headers.items(), ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    def _recorded_ec2_call(self, environ: dict[str, Any], body: bytes) -> ApiCall | None:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match is None or match.group(3) != "ec2":
            return None
        text = body.decode("utf-8", "replace") if body else environ.get("QUERY_STRING", "")
        params = parse_query(text)
        action = params.get("Action", "")
        if action not in RECORDED_CALLS:
            return None
        access_key, region = match.group(1), match.group(2)
        return ApiCall(
            action=action,
            region=region,
            params=nest({k: v for k, v in params.items() if k not in ("Action", "Version")}),
            caller=self.emulator.principals.caller(access_key),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
        )


def _set_creation_dates(body: bytes) -> tuple[int, Any]:
    """Seed an aged estate: moto stamps every AMI and snapshot with the time of its creation call."""
    try:
        request = json.loads(body or b"{}")
        region = str(request["region"])
        images = {str(k): datetime.fromisoformat(v) for k, v in request.get("images", {}).items()}
        snapshots = {str(k): datetime.fromisoformat(v) for k, v in request.get("snapshots", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return 400, {"error": f'expected {{"region": ..., "images": {{id: ISO 8601}}, "snapshots": {{...}}}}: {error}'}
    try:
        moto_extensions.set_creation_dates(ACCOUNT, region, images, snapshots)
    except moto_extensions.UnknownResource as error:
        return 404, {"error": str(error)}
    except (KeyError, ValueError) as error:  # an unknown region, a time in the future
        return 400, {"error": str(error)}
    return 200, {"images": len(images), "snapshots": len(snapshots)}


def _route_put_events_through(router: Router) -> None:
    """PutEvents through the API goes to the emulator's router (moto would drop Lambda targets)."""

    def put_events(backend: EventsBackend, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for entry in entries:
            missing = [key for key in ("Source", "DetailType", "Detail") if not entry.get(key)]
            if missing:
                results.append({"ErrorCode": "InvalidArgument", "ErrorMessage": f"{missing[0]} is required"})
                continue
            try:
                detail = json.loads(entry["Detail"])
            except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
                detail = None
            if not isinstance(detail, dict):
                # EventBridge takes only a JSON object as Detail: an array, a string or a number is refused too.
                logger.warning("PutEvents entry refused: Detail is not a JSON object: %.200s", entry["Detail"])
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                continue
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
                "account": backend.account_id, "time": _now(), "region": backend.region_name,
                "resources": entry.get("Resources", []), "detail": detail,
            }  # fmt: skip
            router.put(backend.region_name, bus, event)
            results.append({"EventId": event["id"]})
        return results

    EventsBackend.put_events = put_events  # type: ignore[method-assign,assignment]


def _report_queue_changes_to(router: Router) -> None:
    """Tell the router when moto changes a queue, whoever the change comes from (a client, a function, SNS, a
    redrive), so an event source mapping polls as soon as a message can be received."""
    original_add = Queue.add_message
    original_receive = SQSBackend.receive_message
    original_change = SQSBackend.change_message_visibility

    def add_message(queue: Queue, message: Any) -> None:
        original_add(queue, message)
        router.queue_changed(queue.queue_arn)

    def receive_message(backend: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        messages = original_receive(backend, queue_name, *args, **kwargs)
        router.queue_changed(backend.get_queue(queue_name).queue_arn)
        return messages

    def change_message_visibility(backend: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> None:
        original_change(backend, queue_name, *args, **kwargs)
        router.queue_changed(backend.get_queue(queue_name).queue_arn)

    Queue.add_message = add_message  # type: ignore[method-assign,assignment]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign,assignment]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign,assignment]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
