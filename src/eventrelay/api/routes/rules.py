"""/v1/admin/rules/evaluate: try rules on sample events, nothing saved."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from eventrelay.api.deps import Editor, Principal
from eventrelay.api.schemas import ERROR_RESPONSES
from eventrelay.control.rules import EvaluateBody, evaluate

router = APIRouter(prefix="/v1/admin/rules", tags=["rules"], responses=ERROR_RESPONSES)


@router.post(
    "/evaluate",
    summary="Apply rules to sample events and return, per event, the rule that decided and "
    "the event after rules (nothing is saved)",
)
async def evaluate_rules(body: EvaluateBody, who: Principal = Editor) -> dict[str, Any]:
    # A transformation function runs in the sandbox with its own limits; off the event loop.
    return await asyncio.to_thread(evaluate, body)
