"""The emulator's optional IAM enforcement (`python -m emulator --enforce-iam`): see docs/emulator-iam.md."""
