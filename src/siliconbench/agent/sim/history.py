"""What a multi-turn client owes the server, checked: each turn of a conversation (a chat request's `user`,
the OpenAI end-user id siliconbench sends per session) begins with exactly the conversation so far, every
earlier message as sent and each answer as the simulator gave it, then one new message. A conversation
`PARENT>CHILD` is a sub-agent forked from PARENT: its first turn begins with PARENT's conversation so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class HistoryCheck:
    """Counts the turns checked and describes each violation; tests read both."""

    turns: int = 0
    violations: list[str] = field(default_factory=list)
    _history: dict[str, list[Any]] = field(default_factory=dict)

    def turn(self, user: str, messages: list[Any]) -> None:
        """A chat request of conversation `user` arrived with `messages`."""
        expected = self._history.get(user)
        if expected is None and ">" in user:
            expected = self._history.get(user.rsplit(">", 1)[0])
        if expected is None:
            return
        self.turns += 1
        sent = _said(messages)
        if sent[:len(expected)] != expected or len(sent) != len(expected) + 1:
            self.violations.append(f"{user}: turn {self.turns} sent {len(messages)} messages that do not begin "
                                   f"with the {len(expected)} of the conversation so far, then one new one")

    def answered(self, user: str, messages: list[Any], answer: str) -> None:
        """The request's answer was sent in full: the conversation's next turn must repeat both."""
        self._history[user] = [*_said(messages), ("assistant", answer)]


def _said(messages: list[Any]) -> list[Any]:
    """Each message's role and content (what the conversation says; a reasoning echoed beside it is not)."""
    return [(m.get("role"), m.get("content")) if isinstance(m, dict) else m for m in messages]
