"""CDK stacks and constructs of AMI governance. Composition only: no business logic lives here."""
