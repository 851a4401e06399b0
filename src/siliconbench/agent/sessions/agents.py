"""A session's agent graph (siliconbench.core.sessions: `agent`), node by node after its plain turns. Each
node ends in one turn of the session's own agent: a user turn; a tool's result, sent once the tool's latency
has passed; or the joined last answers of the sub-agents a fork (sharing the history so far) or a spawn (a
fresh conversation under the same system prompt) ran at once, each through its own turns."""

from __future__ import annotations

import asyncio

from siliconbench.agent.sessions.conversation import Conversation, Turns
from siliconbench.core.sessions import AgentNode, SessionPlan

# Sub-agents' ids: PARENT>NODE.I for a fork (the simulator checks its first turn against PARENT's history),
# PARENT+NODE.I for a spawn.
FORK, SPAWN = ">", "+"


async def run_graph(turns: Turns, sessions: SessionPlan, conv: Conversation, system: list[dict]) -> None:
    """The graph's nodes in order, until one's turn fails; `system` is the session's system message (or none)."""
    for index, node in enumerate(sessions.agent):
        if not await _node(turns, sessions, conv, node, sessions.node_name(index), system):
            return


async def _node(turns: Turns, sessions: SessionPlan, conv: Conversation, node: AgentNode, name: str,
                system: list[dict]) -> bool:
    if node.kind == "turn":
        return await turns.user(conv, sessions.followup_tokens, name, node.kind)
    if node.kind == "tool":
        conv.scheduled_ns = conv.freed_ns + int(node.latency_s * 1e9)  # the tool runs; its result comes back
        result = {"role": "tool", "tool_call_id": f"call-{name}", "content": await turns.message(conv, node.result_tokens)}
        return await turns.send(conv, result, name, node.kind)
    fork = node.kind == "fork"
    children = [Conversation(f"{conv.session_id}{FORK if fork else SPAWN}{name}.{i}", conv.scheduled_ns,
                             list(conv.messages) if fork else list(system), conv.session_id,
                             conv.turn if fork else 0) for i in range(node.agents)]

    async def sub_agent(child: Conversation) -> bool:
        for number in range(node.turns):
            first = number == 0 and not fork
            if not await turns.user(child, sessions.first_turn_tokens if first else sessions.followup_tokens, name,
                                    node.kind):
                return False
        return True

    if not all(await asyncio.gather(*(sub_agent(child) for child in children))):
        return False
    conv.scheduled_ns = max(child.freed_ns for child in children) + int(turns.think_s * 1e9)
    joined = "\n\n".join(child.answer for child in children)
    return await turns.send(conv, {"role": "user", "content": joined}, name, node.kind)
