"""`siliconbench-agent search` (and a plan's `search:` section): the largest concurrency (or offered rate)
whose probes meet every SLO on their one-sided 95 % upper bounds.

    judge.py   one probe's verdict from its requests: each SLO's point estimate and bound (core/slo_bounds.py)
    method.py  bracket by doubling, bisect to the tolerance, verify; the answer and its evidence
    probe.py   a probe as an ordinary step of the load generator, its steady part, its saturation signs, and
               the sink that tags each step's event with its probe
    run.py     a search as a run (agent/app.py run_plan), its stored answer and what it prints
"""
