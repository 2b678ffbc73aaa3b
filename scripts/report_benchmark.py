"""`make bench`: the report on a big synthetic estate — API calls per listing against the minimum each needs, the
per-candidate and per-image calls, wall time and peak memory.

The estate (per region, default 3 regions): 2,000 AMIs (disabled, deprecated, public and shared ones among them)
with 6,000 snapshots (two per AMI, plus orphans of deregistered and of copied AMIs, snapshots of AMIs in the AMI
Recycle Bin, plain backups, a few public and protected ones), ~500 instances (some stopped, some from Amazon's and
from a community AMI), ~200 launch templates (some with three versions, one pinned by an Auto Scaling group), Auto
Scaling groups and launch configurations, SSM parameters of data type aws:ec2:image, and both Recycle Bins.

How it is measured:
- moto, with the emulator's extensions (emulator/moto_extensions), runs as a server in a child process: its
  memory is not the report's, and every call the report makes goes over HTTP as it would to AWS.
- The child seeds the AMIs, snapshots and community AMI on moto's backend objects directly (through the API that
  would be ~10,000 calls per region and minutes of moto time; EC2 also cannot age resources), and the rest
  (instances, launch templates, groups, parameters, Recycle Bin rules and deletions, sharing) through the API.
- The report reads ONLY through boto3: the same ReportService, scanner and adapters the CLI builds
  (cli/service.py), with clients of one session whose botocore events count every call (`before-parameter-build`,
  once per call or page) and every HTTP request (`before-send`, retries included), by listing.
- Minimum calls per listing: ceil(N / the page size adapters/scan.py asks for, AWS's maximum), at least one call;
  per candidate: ceil(candidates / 10) DescribeImageReferences in each region; per image: one DescribeImageAttribute
  for each AMI without a fresh inventory record — first with an empty inventory table, then with one the event path
  would have filled (every AMI's launch permissions recorded a day ago).
- Wall time of each run; peak memory: ru_maxrss of this process (the report's) after the two runs, and
  tracemalloc's peak during a third run (tracemalloc slows Python down, so that run's wall time is not quoted).

Cloud Custodian is not run: the issue's reference figure (about 6,000 calls on such an estate, 5,700 of them
per-image DescribeImageAttribute) is printed beside ours.

    .venv/bin/python scripts/report_benchmark.py [--small] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

ACCOUNT = "123456789012"  # moto's
OTHER_ACCOUNT = "210987654321"  # an account the policy does not name: sharing with it is exposure
COMMUNITY_OWNER = "999988887777"
AMAZON_OWNER = "137112412989"  # Amazon Linux's owner in us-east-1
HOME = "us-east-1"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
INVENTORY_TABLE = "ami-governance-inventory"
DEFAULT_OUTPUT = ROOT / "build" / "report-benchmark.json"
CUSTODIAN_REFERENCE = {"calls": 6000, "describe_image_attribute": 5700}
MEMORY_TARGET_MIB = 256
TOLERANCE = 0.10  # the issue's target: within 10% of the minimum, plus the per-candidate and per-image calls


@dataclass(frozen=True)
class Sizes:
    """One region's estate."""

    images: int  # listed AMIs (disabled included), each with two snapshots
    binned_images: int  # AMIs deregistered into the AMI Recycle Bin (their two snapshots stay)
    orphans_create_image: int  # snapshots of deregistered AMIs, CreateImage's description
    orphans_copy_image: int  # snapshots of deregistered copies, CopyImage's description
    backups: int  # snapshots of volumes, no AMI
    binned_snapshots: int  # deleted snapshots kept by the snapshot Recycle Bin
    disabled: int
    deprecated: int
    shared: int  # AMIs shared with another account
    instances: int
    stopped: int
    templates: int  # launch templates, half with a second version
    pinned_templates: int  # of those, three-version templates whose version 2 a group pins
    launch_configurations: int
    groups_with_configurations: int
    image_parameters: int
    other_parameters: int
    public_snapshots: int
    protected_snapshots: int

    @property
    def snapshots(self) -> int:
        """The snapshots DescribeSnapshots lists."""
        return (
            2 * self.images
            + 2 * self.binned_images
            + self.orphans_create_image
            + self.orphans_copy_image
            + self.backups
        )

    @property
    def groups(self) -> int:
        return self.pinned_templates + self.groups_with_configurations


FULL = Sizes(
    images=2000,
    binned_images=50,
    orphans_create_image=1100,
    orphans_copy_image=300,
    backups=500,
    binned_snapshots=50,
    disabled=100,
    deprecated=100,
    shared=20,
    instances=500,
    stopped=100,
    templates=200,
    pinned_templates=10,
    launch_configurations=10,
    groups_with_configurations=5,
    image_parameters=50,
    other_parameters=50,
    public_snapshots=5,
    protected_snapshots=20,
)
SMALL = Sizes(
    images=200,
    binned_images=5,
    orphans_create_image=110,
    orphans_copy_image=30,
    backups=50,
    binned_snapshots=5,
    disabled=10,
    deprecated=10,
    shared=2,
    instances=50,
    stopped=10,
    templates=20,
    pinned_templates=2,
    launch_configurations=2,
    groups_with_configurations=1,
    image_parameters=5,
    other_parameters=5,
    public_snapshots=1,
    protected_snapshots=2,
)


def log(message: str) -> None:
    """Progress on stderr: the full estate takes minutes to seed and to report on."""
    print(f"[report-benchmark {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# ---- the moto server and its estate (child process) ------------------------------------------------------------


def serve(sizes: Sizes, regions: Sequence[str]) -> None:
    """Child: moto with the emulator's extensions on a free port, seeded; prints READY <endpoint>, then serves until
    stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    from emulator import moto_extensions

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_extensions.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    shared: dict[str, list[str]] = {}
    for index, region in enumerate(regions):
        started = time.perf_counter()
        shared |= seed_region(endpoint, region, sizes, index)
        log(f"seeded {region} in {time.perf_counter() - started:.1f} s")
    # The parent records in the inventory what the event path would have: which AMIs are shared with whom.
    print(f"READY {endpoint} {json.dumps(shared)}", flush=True)
    sys.stdin.read()
    server.stop()


def seed_region(endpoint: str, region: str, sizes: Sizes, index: int) -> dict[str, list[str]]:  # noqa: PLR0912, PLR0915 - one estate
    import boto3
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id, random_instance_id

    from emulator.moto_additions.launches import set_last_launched_time

    backend = ec2_backends[ACCOUNT][region]
    zone = f"{region}a"
    now = datetime.now(UTC).replace(tzinfo=None)  # moto keeps naive UTC
    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=region)
    autoscaling = session.client("autoscaling", endpoint_url=endpoint)
    ssm = session.client("ssm", endpoint_url=endpoint)
    rbin = session.client("rbin", endpoint_url=endpoint)

    def snapshot(description: str, size: int, age_days: int, from_ami: str | None = None) -> Any:
        volume = backend.create_volume(size=size, zone_name=zone)
        created = backend.create_snapshot(volume.id, description, from_ami=from_ami)
        created.start_time = now - timedelta(days=age_days)
        return created

    def image(number: int, name: str, tags: Mapping[str, str]) -> Ami:
        image_id = random_ami_id()
        age = 10 + (number * 7) % 700
        instance_id = random_instance_id()
        made = Ami(
            backend,
            image_id,
            name=name,
            description=f"bench image {number}",
            region_name=zone,
            snapshot_description=f"Created by CreateImage({instance_id}) for {image_id} from vol-{number:017x}",
        )
        root = made.ebs_snapshot
        root.start_time = now - timedelta(days=age)
        data = snapshot(
            f"Created by CreateImage({instance_id}) for {image_id} from vol-{number + 1:017x}", 50, age, image_id
        )
        made.registered_block_device_mappings = [  # type: ignore[attr-defined]
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root.id, "VolumeSize": 15, "DeleteOnTermination": True}},
            {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": data.id, "VolumeSize": 50, "DeleteOnTermination": True}},
        ]
        made.creation_date = now - timedelta(days=age)
        backend.amis[image_id] = made
        backend.create_tags([image_id], dict(tags))
        return made

    # AMIs: most follow the naming convention and carry the required tags; one in ten does not.
    applications = [f"app{n:02d}" for n in range(40)]
    images: list[Ami] = []
    for number in range(sizes.images + sizes.binned_images):
        application = applications[number % len(applications)]
        if number % 10 == 9:
            images.append(image(number, f"scratch image {number}", {}))
            continue
        name = f"{application}-al2023-1.{number // len(applications)}.{index}"
        tags = {"Owner": "platform-team", "Environment": "prod", "CostCenter": "CC-1042", "Application": application}
        images.append(image(number, name, tags))
    listed, binned = images[: sizes.images], images[sizes.images :]
    for made in listed[: sizes.disabled]:
        made.state = "disabled"
    for made in listed[sizes.disabled : sizes.disabled + sizes.deprecated]:
        made.deprecation_time = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # type: ignore[attr-defined]
    sharing = listed[sizes.disabled + sizes.deprecated :][: sizes.shared + 1]
    sharing[0].launch_permissions.append({"Group": "all"})
    for made in sharing[1:]:
        made.launch_permissions.append({"UserId": OTHER_ACCOUNT})
    for number, made in enumerate(listed):
        if number % 3 == 0:
            set_last_launched_time(ACCOUNT, region, made.id, now.replace(tzinfo=UTC) - timedelta(days=number % 400))

    # Snapshots without a live AMI.
    for number in range(sizes.orphans_create_image):
        gone = random_ami_id()
        orphan = snapshot(f"Created by CreateImage(i-{number:017x}) for {gone} from vol-{number:017x}", 20, 200, gone)
        if number < sizes.protected_snapshots:
            backend.create_tags([orphan.id], {"ami-governance:protected": "true"})
    for number in range(sizes.orphans_copy_image):
        gone, source = random_ami_id(), random_ami_id()
        snapshot(
            f"Copied for DestinationAmi {gone} from SourceAmi {source} for SourceSnapshot snap-{number:017x}. "
            f"Task created on {(now - timedelta(days=90)).strftime('%a %b %d %H:%M:%S UTC %Y')}.",
            30,
            90,
            gone,
        )
    backups = [snapshot(f"daily backup {number}", 100, number % 60) for number in range(sizes.backups)]
    for backup in backups[: sizes.public_snapshots]:
        backup.create_volume_permission_groups.add("all")

    # A community AMI (another owner, public) that some instances run.
    community_id = random_ami_id()
    backend.amis[community_id] = Ami(
        backend, community_id, name="community-ubuntu", owner_id=COMMUNITY_OWNER, public=True, region_name=zone
    )
    # moto's ~1,300 preloaded Amazon AMIs are not loaded (MOTO_EC2_LOAD_DEFAULT_AMIS=false: seconds per region);
    # one stands in for them.
    amazon = random_ami_id()
    backend.amis[amazon] = Ami(
        backend,
        amazon,
        name="al2023-ami-2023",
        owner_id=AMAZON_OWNER,
        owner_alias="amazon",
        public=True,
        region_name=zone,
    )

    # Launch templates on the backend too; instances (20 a call) and the rest through the API.
    ec2 = session.client("ec2", endpoint_url=endpoint)
    launchable = [made.id for made in listed[sizes.disabled :]]
    per_call = 20
    launched: list[str] = []
    ours = sizes.instances - sizes.instances // 5
    for start in range(0, ours, per_call):
        image_id = launchable[(start // per_call) % len(launchable)]
        count = min(per_call, ours - start)
        reservation = ec2.run_instances(ImageId=image_id, MinCount=count, MaxCount=count)
        launched += [instance["InstanceId"] for instance in reservation["Instances"]]
    for image_id in (amazon, community_id):
        count = (sizes.instances - ours) // 2
        reservation = ec2.run_instances(ImageId=image_id, MinCount=count, MaxCount=count)
        launched += [instance["InstanceId"] for instance in reservation["Instances"]]
    ec2.stop_instances(InstanceIds=launched[: sizes.stopped])

    template_images = launchable[len(launchable) // 2 :]
    pinned: list[str] = []
    for number in range(sizes.templates):
        template = backend.create_launch_template(
            f"bench-{number}", "", {"ImageId": template_images[number]}, tag_spec={}
        )
        versions = 3 if number < sizes.pinned_templates else (2 if number % 2 else 1)
        for extra in range(1, versions):
            template.create_version({"ImageId": template_images[sizes.templates + number * 2 + extra]}, "")
        if number < sizes.pinned_templates:
            pinned.append(template.id)
    for number, template in enumerate(pinned):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=f"bench-pinned-{number}",
            LaunchTemplate={"LaunchTemplateId": template, "Version": "2"},
            MinSize=0,
            MaxSize=0,
            AvailabilityZones=[zone],
        )
    configuration_images = template_images[sizes.templates * 3 + 10 :]
    for number in range(sizes.launch_configurations):
        autoscaling.create_launch_configuration(
            LaunchConfigurationName=f"bench-lc-{number}", ImageId=configuration_images[number], InstanceType="t3.micro"
        )
    for number in range(sizes.groups_with_configurations):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=f"bench-lc-{number}",
            LaunchConfigurationName=f"bench-lc-{number}",
            MinSize=0,
            MaxSize=0,
            AvailabilityZones=[zone],
        )
    parameter_images = configuration_images[sizes.launch_configurations :]
    for number in range(sizes.image_parameters):
        ssm.put_parameter(
            Name=f"/images/app{number:02d}/latest",
            Value=parameter_images[number],
            Type="String",
            DataType="aws:ec2:image",
        )
    for number in range(sizes.other_parameters):
        ssm.put_parameter(Name=f"/config/setting-{number}", Value="x", Type="String")

    # Both Recycle Bins: Region-level rules, then deletions they keep.
    for resource_type in ("EC2_IMAGE", "EBS_SNAPSHOT"):
        rbin.create_rule(
            ResourceType=resource_type, RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"}
        )
    for made in binned:
        backend.deregister_image(made.id)
    for number in range(sizes.binned_snapshots):
        backend.delete_snapshot(snapshot(f"deleted backup {number}", 10, 20).id)
    return {made.id: [OTHER_ACCOUNT] for made in sharing[1:]}


class EstateServer:
    def __init__(self, sizes: Sizes, regions: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--regions", ",".join(regions), *(["--small"] * (sizes == SMALL))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": f"{ROOT / 'lambdas'}{os.pathsep}{ROOT}",
                "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            },
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the moto server did not start: {line!r}")
        _ready, self.endpoint, shared = line.split(maxsplit=2)
        self.shared: dict[str, list[str]] = json.loads(shared)

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ---- counting --------------------------------------------------------------------------------------------------


def listing_of(service: str, operation: str, params: Mapping[str, Any]) -> str:
    """The report's name for what a call lists (models/scan.py Listing values where there is one)."""
    if operation == "DescribeSnapshots":
        return "public-snapshots" if params.get("RestorableByUserIds") else "snapshots"
    if operation == "DescribeLaunchTemplateVersions":
        named = params.get("LaunchTemplateId") or params.get("LaunchTemplateName")
        return "pinned-launch-template-versions" if named else "launch-template-versions"
    return {
        "DescribeImages": "images",
        "DescribeInstances": "instances",
        "DescribeFleets": "fleets",
        "DescribeAutoScalingGroups": "auto-scaling-groups",
        "DescribeLaunchConfigurations": "launch-configurations",
        "DescribeParameters": "ssm-image-parameters (DescribeParameters)",
        "GetParameters": "ssm-image-parameters (GetParameters)",
        "ListImagesInRecycleBin": "recycle-bin-images",
        "ListSnapshotsInRecycleBin": "recycle-bin-snapshots",
        "GetImageBlockPublicAccessState": "image-block-public-access",
        "GetSnapshotBlockPublicAccessState": "snapshot-block-public-access",
        "DescribeInstanceImageMetadata": "instance-image-metadata",
        "DescribeImageReferences": "image-references (per candidate)",
        "DescribeImageAttribute": "launch-permissions (per image)",
        "Scan": "inventory (DynamoDB Scan)",
        "GetCallerIdentity": "caller identity (STS)",
    }.get(operation, f"{service}:{operation}")


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.requests = 0
        self.candidates: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def before_parameter_build(
        self, params: Mapping[str, Any], model: Any, context: Mapping[str, Any] | None = None, **_: Any
    ) -> None:
        service = model.service_model.service_name
        listing = listing_of(service, model.name, params)
        with self._lock:
            self.calls[listing] += 1
            if model.name == "DescribeImageReferences":
                # Pages of one batch repeat its ids: candidates are the distinct (region, AMI) pairs asked about.
                region = (context or {}).get("client_region", "")
                self.candidates |= {(region, image_id) for image_id in params.get("ImageIds", [])}

    def before_send(self, **_: Any) -> None:
        with self._lock:
            self.requests += 1


# ---- the runs ---------------------------------------------------------------------------------------------------


def minimum_calls(sizes: Sizes, regions: int) -> dict[str, int]:
    """Per listing, over all regions: ceil(N / the page size adapters/scan.py asks for), at least one call."""
    from ami_governance.adapters import scan

    def pages(items: int, page: int) -> int:
        return regions * max(1, math.ceil(items / page))

    return {
        "images": pages(sizes.images, scan.IMAGES_PAGE),
        "snapshots": pages(sizes.snapshots, scan.SNAPSHOTS_PAGE),
        "public-snapshots": pages(sizes.public_snapshots, scan.SNAPSHOTS_PAGE),
        "instances": pages(sizes.instances, scan.INSTANCES_PAGE),
        # $Latest and $Default of every template in one listing: two entries a template.
        "launch-template-versions": pages(2 * sizes.templates, scan.LAUNCH_TEMPLATE_VERSIONS_PAGE),
        # One call per template whose pinned version is neither its $Default nor its $Latest.
        "pinned-launch-template-versions": regions * sizes.pinned_templates,
        "fleets": pages(0, scan.FLEETS_PAGE),
        "auto-scaling-groups": pages(sizes.groups, scan.AUTO_SCALING_PAGE),
        "launch-configurations": pages(sizes.launch_configurations, scan.AUTO_SCALING_PAGE),
        "ssm-image-parameters (DescribeParameters)": pages(sizes.image_parameters, scan.PARAMETERS_PAGE),
        "ssm-image-parameters (GetParameters)": pages(sizes.image_parameters, scan.PARAMETER_NAMES_PER_CALL),
        "recycle-bin-images": pages(sizes.binned_images, scan.RECYCLE_BIN_PAGE),
        "recycle-bin-snapshots": pages(sizes.binned_snapshots, scan.RECYCLE_BIN_PAGE),
        "image-block-public-access": regions,
        "snapshot-block-public-access": regions,
        "instance-image-metadata": pages(sizes.instances, scan.INSTANCE_IMAGE_METADATA_PAGE),
    }


PER_CANDIDATE = "image-references (per candidate)"
PER_IMAGE = "launch-permissions (per image)"


@dataclass
class RunFigures:
    name: str
    wall_seconds: float
    calls: dict[str, int]
    minimum: dict[str, int]
    http_requests: int
    candidates: int
    image_references_minimum: int
    images_without_fresh_record: int
    findings: int
    complete: bool
    region_errors: dict[str, dict[str, str]]
    tracemalloc_peak_mib: float | None = None

    @property
    def bulk_calls(self) -> int:
        return sum(self.calls.get(listing, 0) for listing in self.minimum)

    @property
    def bulk_minimum(self) -> int:
        return sum(self.minimum.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def build_service(endpoint: str, policy: Any, counter: CallCounter, inventory_table: str | None) -> Any:
    from botocore.config import Config

    from ami_governance.adapters.clients import ADAPTIVE_RETRY_CONFIG
    from ami_governance.adapters.session import OperatorSession
    from ami_governance.cli.service import report_service

    # moto answers a 1,000-AMI page in seconds, and in more than the report's 30 s read timeout on a loaded
    # machine: the listing would fail and the run be incomplete (as the report says it is). The retries are the
    # report's; only the timeout is moto's.
    config = ADAPTIVE_RETRY_CONFIG.merge(Config(read_timeout=600))
    session = OperatorSession(endpoint_url=endpoint, config=config)
    session.register("before-parameter-build", counter.before_parameter_build)
    session.register("before-send", counter.before_send)
    account_id = session.account_id(HOME)
    return report_service(session, policy, account_id, HOME, inventory_table)


def run_report(
    name: str,
    endpoint: str,
    policy: Any,
    sizes: Sizes,
    regions: Sequence[str],
    *,
    trace_memory: bool = False,
) -> RunFigures:
    log(f"run: {name}")
    counter = CallCounter()
    service = build_service(endpoint, policy, counter, INVENTORY_TABLE)
    counter.calls.clear()  # GetCallerIdentity: the CLI's once-per-run credential check, not the report's
    counter.requests = 0
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    report = service.run(list(regions))
    wall = time.perf_counter() - started
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    describe_needed = sum(
        status.verified_by.get("describe", 0) + status.verified_by.get("unknown", 0) for status in report.regions
    )
    return RunFigures(
        name=name,
        wall_seconds=round(wall, 2),
        calls=dict(counter.calls),
        minimum=minimum_calls(sizes, len(regions)),
        http_requests=counter.requests,
        candidates=len(counter.candidates),
        image_references_minimum=sum(
            math.ceil(count / 10) for count in Counter(region for region, _image in counter.candidates).values()
        ),
        images_without_fresh_record=describe_needed,
        findings=len(report.findings),
        complete=report.complete,
        region_errors={status.region: dict(status.errors) for status in report.regions if status.errors},
        tracemalloc_peak_mib=None if peak is None else round(peak, 1),
    )


def create_inventory(endpoint: str) -> Any:
    import boto3

    dynamodb = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench").client(
        "dynamodb", region_name=HOME, endpoint_url=endpoint
    )
    dynamodb.create_table(
        TableName=INVENTORY_TABLE,
        KeySchema=[{"AttributeName": "image_id", "KeyType": "HASH"}, {"AttributeName": "region", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "image_id", "AttributeType": "S"},
            {"AttributeName": "region", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def fill_inventory(endpoint: str, dynamodb: Any, regions: Sequence[str], shared: Mapping[str, list[str]]) -> int:
    """What the event path records for every AMI: its snapshots and its launch permissions, verified a day ago."""
    import boto3

    recorded_at = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    written = 0
    for region in regions:
        ec2 = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench").client(
            "ec2", region_name=region, endpoint_url=endpoint
        )
        pages = ec2.get_paginator("describe_images").paginate(
            Owners=["self"], IncludeDisabled=True, PaginationConfig={"PageSize": 1000}
        )
        items = []
        for page in pages:
            for image in page["Images"]:
                accounts = {"L": [{"S": account} for account in shared.get(image["ImageId"], [])]}
                permissions = {"public": {"BOOL": bool(image.get("Public"))}, "accounts": accounts}
                permissions |= {"organization_arns": {"L": []}, "ou_arns": {"L": []}, "recorded_at": {"S": recorded_at}}
                snapshots = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m]
                items.append(
                    {
                        "image_id": {"S": image["ImageId"]},
                        "region": {"S": region},
                        "account": {"S": ACCOUNT},
                        "name": {"S": image.get("Name", "")},
                        "state": {"S": image.get("State", "available")},
                        "snapshot_ids": {"L": [{"S": s} for s in snapshots]},
                        "launch_permissions": {"M": permissions},
                    }
                )
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(
                RequestItems={INVENTORY_TABLE: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            )
        written += len(items)
    return written


def bench_policy(regions: Sequence[str]) -> Any:
    from ami_governance.models.policy import load_policy_file, parse_policy

    document = json.loads(load_policy_file(ROOT / "governance-policy.yaml").model_dump_json())
    document["governed_regions"] = list(regions)
    document["home_region"] = HOME
    document["replication"]["regions"] = [r for r in document["replication"].get("regions", []) if r in regions]
    document["replication"]["kms_keys"] = {
        r: key for r, key in document["replication"].get("kms_keys", {}).items() if r in regions
    }
    document.setdefault("report", {})["snapshot_price_per_gb_month"] = {}
    return parse_policy(document)


def measure(sizes: Sizes, regions: Sequence[str], *, quick: bool = False) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    seeding = time.perf_counter()
    server = EstateServer(sizes, regions)
    seeded_in = time.perf_counter() - seeding
    try:
        policy = bench_policy(regions)
        dynamodb = create_inventory(server.endpoint)
        empty = run_report("empty inventory", server.endpoint, policy, sizes, regions)
        records = fill_inventory(server.endpoint, dynamodb, regions, server.shared)
        if quick:
            # One run fewer: the populated run is traced, and its wall time is tracemalloc's.
            populated = run_report("populated inventory", server.endpoint, policy, sizes, regions, trace_memory=True)
            traced = populated
        else:
            populated = run_report("populated inventory", server.endpoint, policy, sizes, regions)
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if not quick:
            traced = run_report("populated, traced", server.endpoint, policy, sizes, regions, trace_memory=True)
    finally:
        server.stop()
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "regions": list(regions),
        "estate_per_region": {
            **asdict(sizes),
            "snapshots_listed": sizes.snapshots,
            "auto_scaling_groups": sizes.groups,
        },
        "seeding_seconds": round(seeded_in, 1),
        "inventory_records": records,
        "runs": [_figures(empty), _figures(populated)],
        "peak_memory": {
            "ru_maxrss_mib": round(rss_mib, 1),
            "tracemalloc_peak_mib": traced.tracemalloc_peak_mib,
            "target_mib": MEMORY_TARGET_MIB,
        },
        "custodian_reference": CUSTODIAN_REFERENCE,
    }


def _figures(run: RunFigures) -> dict[str, Any]:
    return {
        "name": run.name,
        "wall_seconds": run.wall_seconds,
        "calls": dict(sorted(run.calls.items())),
        "minimum": dict(sorted(run.minimum.items())),
        "bulk_calls": run.bulk_calls,
        "bulk_minimum": run.bulk_minimum,
        "bulk_within_tolerance": run.bulk_calls <= math.floor(run.bulk_minimum * (1 + TOLERANCE)),
        "candidates": run.candidates,
        "image_references_minimum": run.image_references_minimum,
        "images_without_fresh_record": run.images_without_fresh_record,
        "total_calls": run.total_calls,
        "http_requests": run.http_requests,
        "findings": run.findings,
        "complete": run.complete,
        "wall_time_under_tracemalloc": run.tracemalloc_peak_mib is not None,
        "region_errors": run.region_errors,
    }


def print_table(figures: Mapping[str, Any], out: Callable[[str], None] = print) -> None:
    regions = len(figures["regions"])
    estate = figures["estate_per_region"]
    out(
        f"Estate: {regions} region(s) x {estate['images']} AMIs x {estate['snapshots_listed']} snapshots, "
        f"{estate['instances']} instances, {estate['templates']} launch templates, {estate['auto_scaling_groups']} "
        f"Auto Scaling groups, {estate['image_parameters']} image parameters (seeded in {figures['seeding_seconds']} s)"
    )
    empty, populated = figures["runs"]
    out("")
    out(f"| listing | minimum | calls, {empty['name']} | calls, {populated['name']} |")
    out("| --- | ---: | ---: | ---: |")
    listings = sorted(set(empty["calls"]) | set(populated["calls"]) | set(empty["minimum"]))
    for listing in listings:
        if listing in empty["minimum"]:
            minimum = str(empty["minimum"][listing])
        elif listing == PER_CANDIDATE:
            minimum = f"{empty['image_references_minimum']} ({empty['candidates']} candidates, 10 a call per region)"
        elif listing == PER_IMAGE:
            without = f"{empty['images_without_fresh_record']} / {populated['images_without_fresh_record']}"
            minimum = f"{without} (AMIs without a fresh record)"
        else:
            minimum = "-"
        out(f"| {listing} | {minimum} | {empty['calls'].get(listing, 0)} | {populated['calls'].get(listing, 0)} |")
    for run in (empty, populated):
        verdict = "within" if run["bulk_within_tolerance"] else "NOT within"
        out(
            f"| **{run['name']}: total** | bulk minimum {run['bulk_minimum']} | {run['total_calls']} calls "
            f"({run['http_requests']} HTTP requests), bulk {run['bulk_calls']}: {verdict} 10% | "
            f"wall {run['wall_seconds']} s{' (under tracemalloc)' if run['wall_time_under_tracemalloc'] else ''}, "
            f"{run['findings']} findings, complete: {run['complete']} |"
        )
    memory = figures["peak_memory"]
    custodian = figures["custodian_reference"]
    out("")
    out(
        f"Peak memory: ru_maxrss {memory['ru_maxrss_mib']} MiB, tracemalloc peak {memory['tracemalloc_peak_mib']} MiB "
        f"(target < {memory['target_mib']} MB)"
    )
    out(
        f"Cloud Custodian, the issue's reference on such an estate (not run here): about {custodian['calls']} calls, "
        f"{custodian['describe_image_attribute']} of them DescribeImageAttribute; ours: {empty['total_calls']} with an "
        f"empty inventory, {populated['total_calls']} with the event path's records"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small",
        action="store_true",
        help="1 region x 200 AMIs x 600 snapshots, and the populated run traced (a quick check of the script)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON figures (default {DEFAULT_OUTPUT})")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--regions", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    sizes = SMALL if options.small else FULL
    regions = tuple(options.regions.split(",")) if options.regions else (REGIONS[:1] if options.small else REGIONS)
    if options.serve:
        serve(sizes, regions)
        return 0
    figures = measure(sizes, regions, quick=options.small)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print_table(figures)
    print(f"\nFigures: {options.output}")
    incomplete = [run["name"] for run in figures["runs"] if not run["complete"]]
    if incomplete:
        # The figures of a run with failed listings are not the estate's: say so and fail.
        print(f"INCOMPLETE runs (see region_errors in {options.output}): {', '.join(incomplete)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
