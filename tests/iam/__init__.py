"""Offline IAM checks on the synthesized templates: what AWS's service authorization reference says each
statement may do, and what the functions' roles are used for."""
