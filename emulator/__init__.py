"""A local AWS (moto's server) with the AMI governance stack deployed into it from the synthesized templates.

assembly   synthesize the CDK app (or read a cdk.out) into stack templates and assets
deployer   create each template's resources in the emulator, resolving CloudFormation intrinsics
functions  run each Lambda of the templates in a worker process of its own, like a Lambda container
router     EventBridge buses and rules: match with EventBridge semantics, deliver with retries and DLQs
cloudtrail turn successful and failed EC2 calls into CloudTrail events and AMI state changes
server     the HTTP endpoint: moto plus the /_governance control API
inbox      an SQS queue subscribed to the notification topic, to read the notices back (demo, tests)
"""
