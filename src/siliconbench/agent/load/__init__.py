"""Load generation: closed-loop concurrency steps and open-loop rate steps of streamed requests, each
timed per chunk and handed to a sink as it completes.

    sink.py      what the load is handed to (`RecordSink`: the shipper in the agent, a list in tests)
    send.py      the send path of one process: request bodies, `send_request`, `Sender` (closed and open
                 loop), a step's `Share`, the warm-up
    tally.py     each finished request counted once, into its step's `StepTally`; the run's steps
                 (`RunTally`), read by the step's event, the progress line, the run's end event and the
                 fleet's progress
    progress.py  the step's live line on a terminal and the line it leaves
    step.py      `LoadGenerator`: a plan's steps in order, each scraped, sent, tallied, self-monitored and
                 emitted as its `StepEvent`

Who sends: a `Sender` runs a `Share` of a step. With `workers: 1` the agent's own process sends the whole
step; with more, `siliconbench.agent.workers` splits each step into shares, one per worker process (the
workers import `send.py` alone), and `LoadGenerator` merges what comes back. With `workers: auto`,
`siliconbench.agent.sizing` picks the number at the start and after each step (from one process to a pool,
or a larger pool), or stops the run.
"""
