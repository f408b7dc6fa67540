"""`voicemail_plan`: what to do when a call reaches voicemail."""

from __future__ import annotations

from collections.abc import Mapping

from shared.templates import TemplateDefinition, render_text


def voicemail_plan(definition: TemplateDefinition, values: Mapping[str, str]) -> str | None:
    """The message to leave, rendered with `values` (from `render_variables`), or None to hang up.

    The message is spoken as is (no FlowManager renders it), so it is rendered plainly.
    """
    policy = definition.voicemail
    if policy.action == "hang_up" or policy.message is None:
        return None
    return render_text(policy.message, values)
