"""Who may do what: one table from (method, path pattern) to the least role it needs.

The first matching rule wins. A pattern is matched segment by segment on the raw path:
`{name}` is any one non-empty segment, a final `**` is any rest (possibly empty). A method
of "*" is any method; HEAD is read as GET. `PUBLIC` needs no login at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Roles in order of power: each can do everything the ones below it can."""

    VIEWER = 1  # see everything, mark notifications read
    OPERATOR = 2  # also acknowledge and mute
    ADMIN = 3  # also change the inventory and push status

    @property
    def label(self) -> str:
        """The role's name as users and the CLI write it."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        """'viewer' | 'operator' | 'admin' (ValueError otherwise)."""
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}") from None


PUBLIC: Role | None = None
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the table."""

    method: str
    pattern: str
    need: Role | None


RULES: tuple[Rule, ...] = (
    # Public: the login page, static files, the health check.
    Rule("*", "/login", PUBLIC),
    Rule("POST", "/logout", PUBLIC),
    Rule("GET", "/static/**", PUBLIC),
    Rule("GET", "/healthz", PUBLIC),
    # Probe agents: the routes demand an agent's own token themselves (api/agents.py).
    Rule("*", "/api/agent/**", PUBLIC),
    # Marking notifications read is a viewer's write.
    Rule("POST", "/api/notifications/mark-read", Role.VIEWER),
    Rule("POST", "/api/notifications/mark-read/{id}", Role.VIEWER),
    # Acknowledging and muting are the operator's.
    Rule("POST", "/api/onts/{id}/ack", Role.OPERATOR),
    Rule("POST", "/api/onts/{id}/mute", Role.OPERATOR),
    Rule("POST", "/api/onts/{id}/unmute", Role.OPERATOR),
    Rule("POST", "/api/areas/{area}/ack", Role.OPERATOR),
    # Every read (pages, JSON, /api/events, /tiles/*, /api/map.png, /metrics) is a viewer's;
    # the read-only token is a viewer.
    Rule("GET", "**", Role.VIEWER),
    # Every other write: inventory, imports, status pushes, deletes.
    Rule("*", "**", Role.ADMIN),
)


def required_role(method: str, raw_path: str) -> Role | None:
    """The least role a request needs; None (PUBLIC) when it needs no login."""
    method = "GET" if method == "HEAD" else method.upper()
    segments = _segments(raw_path)
    for rule in RULES:
        if rule.method in ("*", method) and _matches(_segments(rule.pattern), segments):
            return rule.need
    return Role.ADMIN  # unreachable with the catch-all above; the safe answer anyway


def _segments(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else [path]


def _matches(pattern: list[str], segments: list[str]) -> bool:
    for i, part in enumerate(pattern):
        if part == "**" and i == len(pattern) - 1:
            return True
        if i >= len(segments):
            return False
        if part.startswith("{") and part.endswith("}"):
            if not segments[i]:
                return False
        elif part != segments[i]:
            return False
    return len(pattern) == len(segments)
