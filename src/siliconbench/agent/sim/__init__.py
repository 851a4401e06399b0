"""A vLLM-compatible simulator: an OpenAI-style streaming server with an exact, configurable timing schedule.

Used to test the agent without a GPU and to measure the client's own overhead. It labels itself as
simulated (`X-Siliconbench-Simulator: 1` on every response; `"simulated": true` from `/version`).
"""

from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.sim.sendlog import SendLog, SendRecord
from siliconbench.agent.sim.server import create_app, serve

__all__ = ["SendLog", "SendRecord", "SimProfile", "create_app", "serve"]
