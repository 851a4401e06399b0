"""Trace replay: a production trace's arrivals, lengths and shared prefixes sent as they happened.

    formats.py   the trace files (Mooncake, Azure, BurstGPT, siliconbench's own) read into rows
    load.py      a trace read, its bad lines judged, cut to its window, split for a fleet's node, scaled
    prompts.py   each request's prompt: hash ids as shared blocks of exact token ids; the reuse it should get
    replay.py    all of it made ready against the server (max_model_len, block size, /tokenize), the plan's
                 trace step, and what its events say of the trace

The send itself is the open-loop sender's (siliconbench.agent.load.send, `Sender._replay`): each request at
its scheduled time, its lateness stored as its dispatch delay.
"""
