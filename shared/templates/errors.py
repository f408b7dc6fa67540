"""`TemplateInvalid`, the one error a template that cannot be saved raises."""

from __future__ import annotations


class TemplateInvalid(ValueError):
    """A template document does not fit the schema.

    `problems` holds every problem found, one readable line each, `"<json.path>: <message>"`,
    e.g. `"nodes.greet.functions[0].effect.to: unknown node 'confirmm'"`. `str(exc)` lists them
    all, one per line.

    It is a `ValueError` so that pydantic validators may raise it: the model validators raise
    it with paths relative to their model, and `parse_template` re-roots them.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.problems)
        head = f"template invalid: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {line}" for line in self.problems)])

    def __str__(self) -> str:
        return self._summary()


def join_path(prefix: str, problem: str) -> str:
    """Re-root a `"<path>: <message>"` line under `prefix` (`"[0].to: x"` stays index-shaped)."""
    if not prefix:
        return problem
    if problem.startswith("["):
        return prefix + problem
    return f"{prefix}.{problem}"
