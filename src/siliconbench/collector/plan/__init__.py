"""`siliconbench-collector plan`: the cheapest fleet for a target load, from stored searches and dated prices.

    demand.py     the target load (`--load`, `--load-from-run`) and the workload it is made of
    evidence.py   the stored searches (searches, search_probes, steps) and each one's boundary probe
    capacity.py   which search answers for a candidate, and its capacity per node with a lower bound
    rank.py       nodes, fleet $/hour and $/1M output tokens per candidate, cheapest first (`build_plan`)
    render.py     the answer as Markdown, CSV or JSON; charts.py as HTML with its two charts; output.py picks

Only the searches' own tables are read (and, for a concurrency search, its boundary probe's request rows by
primary key), so the answer costs the same however many request rows the store holds.
"""
