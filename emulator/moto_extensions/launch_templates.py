"""DescribeLaunchTemplates and DescribeLaunchTemplateVersions paging as EC2 does it. moto 5.2.5 answers at most 15
items when `MaxResults` is absent, at most `MaxResults` otherwise, and never a NextToken, so a paginator silently
stops after the first page.

When a template's `$Latest` and `$Default` are the same version, the bulk form (`Versions=['$Latest','$Default']`,
no template named) lists that version twice here, as moto does: the EC2 reference does not say whether it is
listed once or twice, so readers must tolerate both.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses.launch_templates import LaunchTemplates

from emulator.moto_extensions.paging import page, page_size

# Both models: "This value can be between 1 and 200." EC2 documents no default page, so without MaxResults
# everything comes in one answer, as its other describe calls do.
TEMPLATES_PAGE_MIN = 1
TEMPLATES_PAGE_MAX = 200
# moto's backend truncates versions to its max_results; the page is cut here instead.
_ALL = 2**31


def apply() -> None:
    _describe_launch_templates_pages()
    _describe_launch_template_versions_pages()


def _describe_launch_templates_pages() -> None:
    def describe_launch_templates(self: LaunchTemplates) -> ActionResult:
        token = self._get_param("NextToken")
        size = page_size(self._get_int_param("MaxResults"), TEMPLATES_PAGE_MIN, TEMPLATES_PAGE_MAX, paging=bool(token))
        filters = self._filters_from_querystring()
        self.error_on_dryrun()
        templates: list[Any] = self.ec2_backend.describe_launch_templates(
            template_names=self._get_param("LaunchTemplateNames", []),
            template_ids=self._get_param("LaunchTemplateIds", []),
            filters=filters,
        )
        next_token = None
        if size is not None:
            templates, next_token = page(templates, lambda template: (template.id,), size, token)
        # The same members as moto's own answer.
        return ActionResult(
            {
                "LaunchTemplates": [
                    {
                        "CreateTime": template.create_time,
                        "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                        "DefaultVersionNumber": template.default_version_number,
                        "LatestVersionNumber": template.latest_version_number,
                        "LaunchTemplateId": template.id,
                        "LaunchTemplateName": template.name,
                        "Tags": template.tags,
                    }
                    for template in templates
                ],
                "NextToken": next_token,
            }
        )

    LaunchTemplates.describe_launch_templates = describe_launch_templates  # type: ignore[method-assign]


def _describe_launch_template_versions_pages() -> None:
    def describe_launch_template_versions(self: LaunchTemplates) -> ActionResult:
        token = self._get_param("NextToken")
        size = page_size(self._get_int_param("MaxResults"), TEMPLATES_PAGE_MIN, TEMPLATES_PAGE_MAX, paging=bool(token))
        self.error_on_dryrun()
        versions: list[tuple[Any, Any]] = self.ec2_backend.describe_launch_template_versions(
            template_name=self._get_param("LaunchTemplateName"),
            template_id=self._get_param("LaunchTemplateId"),
            versions=self._get_param("Versions", []),
            min_version=self._get_int_param("MinVersion"),
            max_version=self._get_int_param("MaxVersion"),
            max_results=_ALL,  # validation and version selection stay moto's
        )
        next_token = None
        if size is not None:
            versions, next_token = page(versions, lambda pair: (pair[0].id, int(pair[1].number)), size, token)
        # The same members as moto's own answer.
        return ActionResult(
            {
                "LaunchTemplateVersions": [
                    {
                        "CreateTime": version.create_time,
                        "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                        "DefaultVersion": template.is_default(version),
                        "LaunchTemplateData": version.data,
                        "LaunchTemplateId": template.id,
                        "LaunchTemplateName": template.name,
                        "VersionDescription": version.description,
                        "VersionNumber": version.number,
                    }
                    for template, version in versions
                ],
                "NextToken": next_token,
            }
        )

    LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions  # type: ignore[method-assign]
