"""AMI governance: the domain package shared by every Lambda handler.

models/   event, policy and image models      rules/     pure decisions (no boto3)
adapters/ the only code that calls AWS        services/  one orchestration per capability
"""
