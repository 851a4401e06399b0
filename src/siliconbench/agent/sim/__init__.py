"""A vLLM-compatible simulator: an OpenAI-style streaming server with an exact, configurable timing schedule.

Used to test the agent without a GPU and to measure the client's own overhead. It labels itself as
simulated (`X-Siliconbench-Simulator: 1` on every response; `"simulated": true` from `/version`).

The server itself (`create_app`, `serve`) is in siliconbench.agent.sim.server, imported where it runs: the
agent's command line reads `SimProfile` for the `sim` flags without loading aiohttp's server.
"""

from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.sim.sendlog import SendLog, SendRecord

__all__ = ["SendLog", "SendRecord", "SimProfile"]
