"""The emulator's CloudTrail records: EC2 query requests in, CloudTrail's shapes out."""

from __future__ import annotations

from emulator.cloudtrail import ApiCall, PrincipalBook, cloudtrail_event, image_of_call, nest, parse_query
from tests.support import load_event

CREATE_IMAGE_QUERY = (
    "Action=CreateImage&Version=2016-11-15&InstanceId=i-0abc&Name=payments-api-al2023-1.4.0&NoReboot=true"
    "&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda&BlockDeviceMapping.1.Ebs.VolumeSize=8"
    "&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true"
    "&TagSpecification.1.ResourceType=image&TagSpecification.1.Tag.1.Key=Owner&TagSpecification.1.Tag.1.Value=team"
    "&TagSpecification.1.Tag.2.Key=Environment&TagSpecification.1.Tag.2.Value=prod"
)
CREATE_IMAGE_RESPONSE = (
    '<CreateImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    "<requestId>r-1</requestId><imageId>ami-0123</imageId></CreateImageResponse>"
)
BOOK = PrincipalBook("123456789012", {"approver": "arn:aws:sts::123456789012:assumed-role/ImageApprover/lead"})


def call(query, access_key="jdoe"):
    params = parse_query(query)
    action = params.pop("Action")
    params.pop("Version", None)
    return ApiCall(action, "us-east-1", nest(params), BOOK.caller(access_key), "aws-cli/1.46", "127.0.0.1")


def test_nest_builds_one_based_lists():
    assert nest({"Tag.2.Key": "b", "Tag.1.Key": "a", "ResourceId.1": "ami-1"}) == {
        "Tag": [{"Key": "a"}, {"Key": "b"}],
        "ResourceId": ["ami-1"],
    }


def test_create_image_has_cloudtrails_request_shape():
    event = cloudtrail_event(call(CREATE_IMAGE_QUERY), "123456789012", 200, CREATE_IMAGE_RESPONSE)
    sample = load_event("create_image")

    params = event["detail"]["requestParameters"]
    assert params == {
        "instanceId": "i-0abc",
        "name": "payments-api-al2023-1.4.0",
        "noReboot": True,
        "blockDeviceMapping": {
            "items": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 8, "deleteOnTermination": True}}]
        },
        "tagSpecificationSet": {
            "items": [
                {
                    "resourceType": "image",
                    "tags": [{"key": "Owner", "value": "team"}, {"key": "Environment", "value": "prod"}],
                }
            ]
        },
    }
    assert set(params) <= set(sample["detail"]["requestParameters"]) | {"description"}
    assert event["detail"]["responseElements"] == {"requestId": "r-1", "imageId": "ami-0123"}
    assert event["detail-type"] == "AWS API Call via CloudTrail"
    assert image_of_call(event) == "ami-0123"


def test_create_tags_lists_resources_and_tags_as_items():
    query = "Action=CreateTags&ResourceId.1=vol-1&ResourceId.2=ami-1&Tag.1.Key=Owner&Tag.1.Value=x"
    event = cloudtrail_event(
        call(query), "123456789012", 200, "<CreateTagsResponse><return>true</return></CreateTagsResponse>"
    )

    assert event["detail"]["requestParameters"] == {
        "resourcesSet": {"items": [{"resourceId": "vol-1"}, {"resourceId": "ami-1"}]},
        "tagSet": {"items": [{"key": "Owner", "value": "x"}]},
    }
    assert event["detail"]["responseElements"]["_return"] is True


def test_failed_call_carries_the_error_and_no_response():
    error = (
        "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>"
        "<Message>The instance ID 'i-0abc' does not exist</Message></Error></Errors>"
        "<RequestID>r-2</RequestID></Response>"
    )
    event = cloudtrail_event(call(CREATE_IMAGE_QUERY), "123456789012", 400, error)

    assert event["detail"]["errorCode"] == "InvalidInstanceID.NotFound"
    assert event["detail"]["errorMessage"] == "The instance ID 'i-0abc' does not exist"
    assert event["detail"]["responseElements"] is None


def test_access_keys_select_the_principal():
    default = BOOK.caller("jdoe").user_identity("123456789012")
    mapped = BOOK.caller("approver").user_identity("123456789012")

    assert default["type"] == "AssumedRole"
    assert default["arn"] == "arn:aws:sts::123456789012:assumed-role/PlatformEngineer/jdoe"
    assert default["sessionContext"]["sessionIssuer"]["arn"] == "arn:aws:iam::123456789012:role/PlatformEngineer"
    assert mapped["sessionContext"]["sessionIssuer"]["arn"] == "arn:aws:iam::123456789012:role/ImageApprover"


def test_a_service_principal_is_marked_invoked_by():
    book = PrincipalBook(
        "123456789012",
        {"builder": "arn:aws:sts::123456789012:assumed-role/ImageBuilder/build invoked-by:imagebuilder.amazonaws.com"},
    )

    identity = book.caller("builder").user_identity("123456789012")

    assert identity["invokedBy"] == "imagebuilder.amazonaws.com"
    assert identity["arn"] == "arn:aws:sts::123456789012:assumed-role/ImageBuilder/build"


def test_iam_users_are_iam_users():
    book = PrincipalBook("123456789012", {"ci": "arn:aws:iam::123456789012:user/ci"})

    identity = book.caller("ci").user_identity("123456789012")

    assert identity["type"] == "IAMUser"
    assert identity["userName"] == "ci"


def test_deregister_image_records_the_flag_and_what_ec2_deleted():
    # Given a DeregisterImage that asked EC2 to delete the snapshots, and EC2's answer (one deleted, one used by
    # another AMI)
    query = "Action=DeregisterImage&Version=2016-11-15&ImageId=ami-0123&DeleteAssociatedSnapshots=true"
    response = (
        '<DeregisterImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-2</requestId>'
        "<return>true</return><deleteSnapshotResultSet>"
        "<item><snapshotId>snap-01</snapshotId><returnCode>success</returnCode></item>"
        "<item><snapshotId>snap-02</snapshotId><returnCode>skipped</returnCode></item>"
        "</deleteSnapshotResultSet></DeregisterImageResponse>"
    )

    event = cloudtrail_event(call(query), "123456789012", 200, response)

    # Then the record carries the request parameter and the per-snapshot results, in CloudTrail's list shape
    assert event["detail"]["requestParameters"] == {"imageId": "ami-0123", "deleteAssociatedSnapshots": True}
    assert event["detail"]["responseElements"] == {
        "requestId": "r-2",
        "_return": True,
        "deleteSnapshotResultSet": {
            "items": [
                {"snapshotId": "snap-01", "returnCode": "success"},
                {"snapshotId": "snap-02", "returnCode": "skipped"},
            ]
        },
    }


def test_a_plain_deregister_image_has_no_snapshot_results():
    response = (
        '<DeregisterImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-3</requestId>'
        "<return>true</return></DeregisterImageResponse>"
    )

    event = cloudtrail_event(call("Action=DeregisterImage&ImageId=ami-0123"), "123456789012", 200, response)

    assert event["detail"]["requestParameters"] == {"imageId": "ami-0123", "deleteAssociatedSnapshots": False}
    assert event["detail"]["responseElements"] == {"requestId": "r-3", "_return": True}


def test_modify_image_attribute_names_the_attribute_and_every_kind_of_grantee():
    # Given a ModifyImageAttribute that shares with an account and an OU and makes the AMI private
    ou = "arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cdefgh34"
    query = (
        "Action=ModifyImageAttribute&ImageId=ami-0a1b2c3d4e5f60718&LaunchPermission.Add.1.UserId=444455556666"
        f"&LaunchPermission.Add.2.OrganizationalUnitArn={ou}&LaunchPermission.Remove.1.Group=all"
    )

    event = cloudtrail_event(
        call(query),
        "123456789012",
        200,
        "<ModifyImageAttributeResponse><return>true</return></ModifyImageAttributeResponse>",
    )

    # Then its record has CloudTrail's shape, as the sample (shaped like the records AWS writes) has it
    params = event["detail"]["requestParameters"]
    assert params == load_event("modify_image_attribute_launch_permission")["detail"]["requestParameters"]
