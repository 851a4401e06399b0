"""Multi-turn sessions (siliconbench.core.sessions): what each turn sends and what the client expects the
server's prefix cache to give it.

    ledger.py    the client's model of the server's prefix cache: expected reuse per turn, in whole blocks
    messages.py  system prompts and user messages of exact lengths; token ids of prompts and answers
    timeline.py  a turn's stream, timed, keeping the answer (and reasoning) to send back
    conversation.py  a conversation's turns: the history sent, the record made, the answer kept
    agents.py    a session's agent graph: tool turns, forked and spawned sub-agents joined back
    sender.py    `SessionSender`: sessions on the plan's closed- and open-loop steps, for `LoadGenerator`
"""
