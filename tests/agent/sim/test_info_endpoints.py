"""/v1/models, /version, /health."""

from __future__ import annotations

from .conftest import MODEL


async def test_models_lists_served_model_with_max_model_len(sim):
    data = await (await sim.get("/v1/models")).json()
    assert data["object"] == "list"
    (card,) = data["data"]
    assert card["id"] == MODEL
    assert card["object"] == "model"
    assert card["max_model_len"] == 8192
    assert card["root"] == MODEL


async def test_version_is_vllm_like_and_flags_simulation(sim):
    data = await (await sim.get("/version")).json()
    assert data["simulated"] is True
    assert data["version"].endswith("-siliconbench-sim")
    assert data["version"][0].isdigit()


async def test_health_is_200_with_empty_body(sim):
    resp = await sim.get("/health")
    assert resp.status == 200
    assert await resp.read() == b""
