"""B4's baseline: a bare FastAPI app whose POST validates a body like ReflectionRequest and answers 202.

Served exactly like the server (uvicorn, uvloop, httptools, one worker), so the ratio in B4
measures what agentflow adds per submit (middleware, idempotency hash, the SQLite insert,
scheduling) and not the framework or the HTTP stack.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["app"]

Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class BareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: Topic
    max_iterations: int = Field(default=3, ge=1, le=5)
    score_threshold: float = Field(default=8, ge=0, le=10)
    max_tokens_budget: int | None = Field(default=None, ge=1)
    cache: Literal["use", "bypass", "refresh"] = "use"


class BareAccepted(BaseModel):
    workflow_id: str
    workflow_type: str
    status: str
    created_at: datetime
    input: dict[str, Any]


app = FastAPI(title="bench-bare", openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/workflows/reflection", status_code=status.HTTP_202_ACCEPTED, response_model=BareAccepted)
async def submit(body: BareRequest) -> BareAccepted:
    return BareAccepted(
        workflow_id=str(uuid.uuid4()),
        workflow_type="reflection",
        status="queued",
        created_at=datetime.now(UTC),
        input=body.model_dump(mode="json"),
    )
