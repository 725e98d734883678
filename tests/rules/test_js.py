"""JavaScript transformation functions in the V8 sandbox: compile errors with positions, the
dry run on save, results, and hostile functions contained (time, memory, stack, no network,
file system or process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventrelay.rules.errors import RulesInvalid, TransformError
from eventrelay.rules.js import JsFunction, compile_function


@pytest.fixture
def made() -> Iterator[list[JsFunction]]:
    functions: list[JsFunction] = []
    yield functions
    for function in functions:
        function.close()


def js(made: list[JsFunction], body: str, dry_run: bool = False) -> JsFunction:
    function = compile_function("javascript", body, dry_run=dry_run)
    made.append(function)
    return function


def invalid(source: str) -> tuple[str, int | None]:
    with pytest.raises(RulesInvalid) as caught:
        compile_function("javascript", source).close()
    error = caught.value.errors[0]
    assert error.field == "source"
    return error.message, error.position


def test_syntax_errors_name_their_position() -> None:
    message, position = invalid("function transform(e) {\n  let a = ;\n}")
    assert "SyntaxError" in message
    assert position == len("function transform(e) {\n") + len("  let a = ") + 1
    message, _ = invalid("function transform(e) { return e")
    assert "SyntaxError" in message


def test_the_function_must_be_defined() -> None:
    assert "transform(event)" in invalid("var x = 1;")[0]
    assert "transform(event)" in invalid("var transform = 3;")[0]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("function transform(e) { throw new Error('nope'); }", "threw Error: nope"),
        ("function transform(e) { return 5; }", "must return an event object"),
        ("function transform(e) { return [e, 1]; }", "must return an event object"),
        ("function transform(e) { return e.missing.deeper; }", "TypeError"),
        ("function transform(e) { while (true) {} }", "time limit"),
    ],
)
def test_save_time_dry_run_refuses_broken_functions(source: str, words: str) -> None:
    message, _ = invalid(source)
    assert "on a sample event" in message
    assert words in message


def test_results(made: list[JsFunction]) -> None:
    f = js(
        made,
        """
        function transform(event) {
          if (event.event === "Drop me") return null;
          if (event.event === "Nothing") return;
          if (event.event === "Split") {
            return event.properties.items.map((item, i) => ({...event, event: "Item", properties: item}));
          }
          event.properties.email = (event.traits.email || "").toLowerCase();
          event.properties.name = "東京 " + event.properties.name;
          return event;
        }
        """,
    )
    out = f({"event": "A", "traits": {"email": "ADA@X.COM"}, "properties": {"name": "é"}})
    assert out == [
        {
            "event": "A",
            "traits": {"email": "ADA@X.COM"},
            "properties": {"name": "東京 é", "email": "ada@x.com"},
        }
    ]
    assert f({"event": "Drop me"}) is None
    assert f({"event": "Nothing"}) is None
    split = f({"event": "Split", "properties": {"items": [{"id": 1}, {"id": 2}]}})
    assert split == [
        {"event": "Item", "properties": {"id": 1}},
        {"event": "Item", "properties": {"id": 2}},
    ]


def test_a_failing_event_in_a_batch_fails_alone(made: list[JsFunction]) -> None:
    f = js(
        made,
        """
        function transform(e) {
          if (e.mode === "loop") { while (true) {} }
          if (e.mode === "throw") { throw new Error("bad"); }
          e.seen = true;
          return e;
        }
        """,
    )
    events = [{"n": 1}, {"n": 2, "mode": "loop"}, {"n": 3, "mode": "throw"}, {"n": 4}]
    results = f.batch(events)
    assert results[0] == [{"n": 1, "seen": True}]
    assert isinstance(results[1], TransformError) and "time limit" in str(results[1])
    assert isinstance(results[2], TransformError) and "bad" in str(results[2])
    assert results[3] == [{"n": 4, "seen": True}]


HOSTILE = [
    ("infinite loop", "while (true) {}", "time limit"),
    (
        "huge allocation",
        "const a = []; while (true) { a.push(new Array(1 << 20).fill(Math.random())); }",
        "limit",  # memory, or time on a slow machine: test_memory_limit checks memory alone
    ),
    ("deep recursion", "const f = (n) => f(n + 1) + 1; f(0);", "RangeError"),
    ("network: fetch", "fetch('http://127.0.0.1:9/');", "ReferenceError"),
    ("network: XMLHttpRequest", "new XMLHttpRequest();", "ReferenceError"),
    ("node modules", "require('child_process').execSync('id');", "ReferenceError"),
    ("host process", "process.exit(1);", "ReferenceError"),
    ("file system", "Deno.readTextFileSync('/etc/passwd');", "ReferenceError"),
    ("timers", "setTimeout(() => { while (true) {} }, 0);", "TypeError"),
    (
        "timers underneath",
        "Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1)"
        ".value.then(() => { while (true) {} });",
        "Error",
    ),
    ("console", "console.log('x');", "Error"),
    ("WebAssembly", "new WebAssembly.Memory({initial: 1});", "Error"),
]


@pytest.mark.parametrize(("name", "body", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_functions_are_contained(
    made: list[JsFunction], name: str, body: str, words: str
) -> None:
    f = js(made, f"function transform(e) {{ if (e.attack) {{ {body} }} return e; }}")
    with pytest.raises(TransformError) as caught:
        f({"attack": True})
    assert words in str(caught.value)
    # The isolate keeps working (or was rebuilt) for the next event.
    assert f({"ok": 1}) == [{"ok": 1}]


def test_memory_limit(made: list[JsFunction]) -> None:
    # A generous time limit, so that the heap limit is what stops it.
    f = JsFunction(
        "function transform(e) { const a = [];"
        " while (true) { a.push(new Array(1 << 20).fill(Math.random())); } }",
        timeout=10.0,
        memory=32 * 1024 * 1024,
    )
    made.append(f)
    with pytest.raises(TransformError, match="memory limit of 32 MB"):
        f({})


def test_dynamic_import_finds_nothing(made: list[JsFunction]) -> None:
    f = js(
        made,
        """
        var loaded = "no";
        function transform(e) {
          import("fs").then(() => { loaded = "yes"; }, () => { loaded = "refused"; });
          e.loaded = loaded;
          return e;
        }
        """,
    )
    f({})
    (out,) = f({})  # type: ignore[misc]
    assert out["loaded"] in ("no", "refused")


def test_microtasks_do_not_escape_the_time_limit(made: list[JsFunction]) -> None:
    f = js(
        made,
        """
        function transform(e) {
          if (e.attack) Promise.resolve().then(() => { while (true) {} });
          return e;
        }
        """,
    )
    try:
        f({"attack": True})
    except TransformError as exc:
        assert "time limit" in str(exc)
    assert f({"ok": 1}) == [{"ok": 1}]


def test_the_time_limit_comes_from_the_settings(made: list[JsFunction]) -> None:
    """EVENTRELAY_RULES_JS_TIMEOUT_MS reaches every function compiled after start."""
    from eventrelay.rules import limits
    from eventrelay.rules.limits import set_limits
    from eventrelay.settings import Settings

    busy = "function transform(e) { const end = Date.now() + 300; while (Date.now() < end) {} return e; }"
    before = dict(limits.current)
    try:
        settings = Settings(rules_js_timeout_ms=3000, rules_js_memory_mb=32)
        set_limits(settings.rules_js_timeout_ms / 1000, settings.rules_js_memory_mb * 1024 * 1024)
        assert js(made, busy)({"n": 1}) == [{"n": 1}]
        set_limits(0.05, 64 * 1024 * 1024)
        with pytest.raises(TransformError):
            js(made, busy)({"n": 1})
    finally:
        limits.current.update(before)
