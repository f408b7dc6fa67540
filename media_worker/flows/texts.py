"""`TextRenderer`: template text rendered once with a lead's values, for where it is delivered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.templates import escape_placeholders, render_text


@dataclass(frozen=True)
class TextRenderer:
    """Renders template text with `values` (from `render_variables`: secrets are never there).

    Which method to use depends on the slot the text is delivered through, not on the text:
    pipecat's FlowManager renders `{{ key }}` from its own state again, on every node entry, in
    `role_message`, task-message content and `tts_say` text. Text bound for those slots must
    come out inert, or a payload value holding `{{ other }}` would be expanded (or fail the node
    entry). Everything else is delivered as rendered.
    """

    values: Mapping[str, str]

    def plain(self, text: str) -> str:
        """For text nothing renders again: an `end_conversation` goodbye, the voicemail
        message, a summary prompt."""
        return render_text(text, self.values)

    def for_flow_manager(self, text: str) -> str:
        """For `role_message`, task-message content and `tts_say` text (the greeting too)."""
        return escape_placeholders(render_text(text, self.values))
