"""The comparison pipeline: plain Celery + Redis, one task per event posting it to the sink.

Run by bench/run.py: `celery -A bench.celery_pipeline worker`. The broker is the machine's
Redis (EVENTRELAY_BENCH_REDIS, default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import os

import requests
from celery import Celery

BROKER = os.environ.get("EVENTRELAY_BENCH_REDIS", "redis://127.0.0.1:6379/15")
SINK = os.environ.get("EVENTRELAY_BENCH_SINK", "http://127.0.0.1:9911/hook")

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,  # at-least-once, like eventrelay
    worker_prefetch_multiplier=16,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)
_session = requests.Session()


@app.task(name="post_event", autoretry_for=(requests.RequestException,), retry_backoff=True)
def post_event(event_json: str) -> None:
    response = _session.post(
        SINK, data=event_json, headers={"Content-Type": "application/json"}, timeout=15
    )
    response.raise_for_status()
