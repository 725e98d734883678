"""Transformation functions in JavaScript, in an embedded V8 isolate (mini-racer, from PyPI;
no `node` subprocess).

    function transform(event) {
      event.properties.email = (event.traits.email || "").toLowerCase();
      return event;          // or [event, other] for several, or null to drop it
    }

Isolation: an isolate has only what ECMAScript defines (no require, fetch, XMLHttpRequest,
file or process objects; a dynamic import() finds no module). The prelude also removes
mini-racer's timers and what they are built on (Atomics.waitAsync: a timer would run code after
our call, outside its time limit), console and WebAssembly. Each call runs under a wall-clock limit per event (V8 terminates the script) and the
isolate under a hard heap limit; a stack overflow is a RangeError like any exception. After a
timeout or the memory limit, the isolate is thrown away and built again.

Events go in batches (one call per batch, each event in its own try/catch), since a call
into the isolate costs far more than a short function; a batch that times out or runs out of
memory is run again one event at a time, so only the event that caused it fails. Promise
callbacks (microtasks) a function queues run after its call returns: an empty call after each
batch runs them under the time limit, charged to that batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
from typing import Any

import orjson
from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    JSParseException,
    JSTimeoutException,
    MiniRacer,
)

from eventrelay.rules import limits
from eventrelay.rules.engine import Event, Result, Transformation
from eventrelay.rules.errors import RuleError, RulesInvalid, TransformError

MAX_SOURCE = 50_000
MAX_EVENTS_OUT = 100  # events one call may return
BATCH = 20  # events per call into the isolate
MAX_ERROR = 300

SAMPLE_EVENT: Event = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-1",
    "anonymousId": "anon-1",
    "messageId": "msg-sample",
    "timestamp": "2026-01-01T00:00:00.000Z",
    "properties": {"total": 42.5, "currency": "EUR", "products": [{"id": "p1", "price": 42.5}]},
    "traits": {"email": "Ada@Example.com"},
    "context": {
        "page": {"url": "https://shop.example/checkout"},
        "ip": "203.0.113.9",
        "traits": {"email": "Ada@Example.com"},
    },
}

PRELUDE = """
(function () {
  // mini-racer's timers are Atomics.waitAsync callbacks: either would run code after the call
  // returns, outside its time limit. Globals declared with var cannot be deleted: overwritten.
  for (const name of ["setTimeout", "setInterval", "clearTimeout", "clearInterval",
                      "console", "WebAssembly", "Atomics", "SharedArrayBuffer"]) {
    try { delete globalThis[name]; } catch (e) {}
    try { if (name in globalThis) globalThis[name] = undefined; } catch (e) {}
  }
})();
var __eventrelay_batch = function (text) {
  const events = JSON.parse(text);
  const out = [];
  for (const event of events) {
    let piece;
    try {
      const result = transform(event);
      piece = '{"ok":' + (result === undefined ? "null" : JSON.stringify(result)) + "}";
    } catch (err) {
      const message = err && err.message !== undefined ? err.name + ": " + err.message : err;
      piece = JSON.stringify({ error: String(message).slice(0, 300) });
    }
    out.push(piece);
  }
  return "[" + out.join(",") + "]";
};
"""

_WHERE = re.compile(r"<anonymous>:(\d+): (.*)")


def _describe(exc: Exception) -> tuple[str, int | None, int | None]:
    """(message, line, column) of a V8 error text: `<anonymous>:3: SyntaxError: ...` then the
    source line and a caret line."""
    text = str(exc)
    lines = text.splitlines()
    found = _WHERE.search(lines[0]) if lines else None
    if not found:
        return text[:MAX_ERROR], None, None
    column = None
    if len(lines) >= 3 and "^" in lines[2]:
        column = lines[2].index("^") + 1
    return found.group(2)[:MAX_ERROR], int(found.group(1)), column


def _offset(source: str, line: int | None, column: int | None) -> int | None:
    if line is None:
        return None
    rows = source.split("\n")
    if not 1 <= line <= len(rows):
        return None
    return sum(len(r) + 1 for r in rows[: line - 1]) + (column or 1)


def _retire(ctx: MiniRacer) -> None:
    """Close an isolate whose call was terminated. V8 still answers that call on the isolate's
    loop: a short call first lets that answer arrive while the loop is alive."""
    with contextlib.suppress(Exception):
        ctx.eval("0", timeout_sec=1.0)
    ctx.close()


def _events_of(value: Any) -> list[Event] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        if len(value) > MAX_EVENTS_OUT:
            raise TransformError(f"the function returned more than {MAX_EVENTS_OUT} events")
        return list(value)
    raise TransformError("the function must return an event object, an array of events or null")


def _new_isolate() -> MiniRacer:
    """A MiniRacer made in a thread with a running asyncio loop would run on that loop (and
    refuse time limits there): make it where no loop runs, with a loop thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return MiniRacer()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(MiniRacer).result()


class JsFunction(Transformation):
    slow = True

    def __init__(self, source: str, timeout: float | None = None, memory: int | None = None):
        timeout = limits.current["timeout"] if timeout is None else timeout
        memory = int(limits.current["memory"] if memory is None else memory)
        self._source = source
        self._timeout = timeout
        self._memory = memory
        self._lock = threading.Lock()  # one isolate, called from worker threads
        self._closed = False
        self._ctx: MiniRacer | None = self._build()

    def _build(self) -> MiniRacer:
        ctx = _new_isolate()
        ctx.set_hard_memory_limit(self._memory)
        try:
            ctx.eval(self._source, timeout_sec=max(self._timeout * 10, 0.5))
        except JSParseException as exc:
            ctx.close()
            message, line, column = _describe(exc)
            raise RulesInvalid(
                [RuleError("source", message, _offset(self._source, line, column))]
            ) from None
        except (JSTimeoutException, JSOOMException):
            ctx.close()
            raise RulesInvalid(
                [RuleError("source", "the script did not load within its limits")]
            ) from None
        except JSEvalException as exc:
            ctx.close()
            message, line, column = _describe(exc)
            raise RulesInvalid(
                [RuleError("source", message, _offset(self._source, line, column))]
            ) from None
        if ctx.eval("typeof transform") != "function":
            ctx.close()
            raise RulesInvalid([RuleError("source", "must define function transform(event)")])
        ctx.eval(PRELUDE)
        return ctx

    def _rebuild(self) -> None:
        """After a limit: a fresh isolate now, or at the next call if this one fails."""
        old, self._ctx = self._ctx, None
        if old is not None:
            _retire(old)
        with contextlib.suppress(RulesInvalid):
            self._ctx = self._build()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._ctx is not None:
                self._ctx.close()
                self._ctx = None

    def __call__(self, event: Event) -> Event | list[Event] | None:
        (result,) = self.batch([event])
        if isinstance(result, Exception):
            raise result
        return result

    def batch(self, events: list[Event]) -> list[Result | Exception]:
        out: list[Result | Exception] = []
        for start in range(0, len(events), BATCH):
            out.extend(self._chunk(events[start : start + BATCH]))
        return out

    def _chunk(self, events: list[Event]) -> list[Result | Exception]:
        try:
            text = orjson.dumps(events).decode()
        except TypeError:
            return [TransformError("the event cannot be passed to the function")] * len(events)
        with self._lock:
            if self._ctx is None and not self._closed:
                with contextlib.suppress(RulesInvalid):
                    self._ctx = self._build()
            if self._ctx is None:
                return [TransformError("the function's isolate is not available")] * len(events)
            try:
                answer = self._ctx.call(
                    "__eventrelay_batch", text, timeout_sec=self._timeout * len(events)
                )
                # Promise callbacks the function queued run after the call, before the next
                # one: a timed empty call runs them now, under the limit, for this batch.
                self._ctx.eval("0", timeout_sec=self._timeout)
            except (JSTimeoutException, JSOOMException) as exc:
                limit = self._limit_message(exc)
                self._rebuild()
                if len(events) == 1:
                    return [TransformError(limit)]
                answer = None
            except JSEvalException as exc:
                return [TransformError(_describe(exc)[0])] * len(events)
        if answer is None:  # find the event that broke the limit: one at a time
            return [r for event in events for r in self._chunk([event])]
        return [self._result(item) for item in orjson.loads(answer)]

    def _limit_message(self, exc: Exception) -> str:
        if isinstance(exc, JSOOMException):
            return f"the function exceeded the memory limit of {self._memory // 2**20} MB"
        return f"the function exceeded the time limit of {self._timeout * 1000:g} ms per event"

    @staticmethod
    def _result(item: dict[str, Any]) -> Result | Exception:
        if "error" in item:
            return TransformError(f"the function threw {item['error']}")
        try:
            return _events_of(item.get("ok"))
        except TransformError as exc:
            return exc


def compile_function(language: str, source: str, dry_run: bool = True) -> JsFunction:
    """Compile (a syntax error names its position) and, on save, run once on a sample event:
    errors there are a RulesInvalid under `source`."""
    if language != "javascript":
        raise RulesInvalid([RuleError("language", 'must be "javascript"')])
    if len(source) > MAX_SOURCE:
        raise RulesInvalid([RuleError("source", f"longer than {MAX_SOURCE} characters")])
    function = JsFunction(source)
    if dry_run:
        try:
            function(dict(SAMPLE_EVENT))
        except TransformError as exc:
            function.close()
            raise RulesInvalid([RuleError("source", f"on a sample event: {exc}")]) from None
    return function
