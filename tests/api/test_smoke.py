"""A first end-to-end check: a reflection workflow completes against the stand-in."""

from __future__ import annotations

import httpx


async def test_reflection_completes(client: httpx.AsyncClient) -> None:
    response = await client.post("/workflows/reflection?wait=20", json={"topic": "Explain WAL mode in SQLite"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed", body
    assert body["result"]["final"]
    assert body["usage"]["llm_calls"] >= 2
