"""An independent MCP client for `warden mcp`: the official Python SDK (`mcp` on PyPI) over stdio.

    python client.py WARDEN ROOT SCENARIO [SPEC_JSON]

starts `WARDEN --root ROOT mcp` through the SDK's `stdio_client`, plays one scenario and prints
one JSON document on stdout with what came back; the Rust tests (tests/tests/mcp_sdk.rs) assert
on it. The server runs pytest with `WARDEN_PYTHON` (else this interpreter). Scenarios:

- `tools`: the `initialize` result and `tools/list`, each input schema checked as a JSON Schema
  (with `jsonschema`, a dependency of the SDK) and tried on sample arguments.
- `calls`: the calls of SPEC (`[{"tool", "arguments", "progress"?}]`) one after another; each
  answer is a result or the JSON-RPC error the SDK raised.
- `queued`: two calls of SPEC (`[first, second]`); the second is sent while the first runs
  (once the first has reported progress), then both answers.
- `cancel`: one call of SPEC (`{"call", "cancel_when"? | "read_timeout"?}`) cancelled by the
  client, either when a progress message contains `cancel_when` (an anyio cancel scope, which
  makes the SDK send `notifications/cancelled`) or by the SDK's own request timeout; then,
  with the server still running, waits (with a deadline) until no process of the run is left,
  and asks `ledger_stats`.
"""

import json
import os
import sys
import time

import anyio
import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

# How long a scenario may take in all; the Rust side has its own deadline on this process too.
SCENARIO_DEADLINE = 240.0
# How long the processes of a cancelled run may take to disappear.
LEFTOVER_DEADLINE = 15.0


def server(warden, root):
    env = {"WARDEN_PYTHON": os.environ.get("WARDEN_PYTHON") or sys.executable}
    return StdioServerParameters(command=warden, args=["--root", root, "mcp"], env=env)


def call_result(result, progress):
    return {
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "texts": [block.text for block in result.content if getattr(block, "type", None) == "text"],
        "progress": progress,
    }


def error_result(error, progress):
    return {"error": {"code": error.error.code, "message": error.error.message}, "progress": progress}


async def call(session, spec, on_progress=None, **kwargs):
    """One tool call; its result or its JSON-RPC error, with the progress it reported."""
    progress = []

    async def record(value, total, message):
        progress.append([value, total, message])
        if on_progress is not None:
            on_progress(message or "")

    callback = record if spec.get("progress", True) else None
    try:
        result = await session.call_tool(
            spec["tool"], spec.get("arguments", {}), progress_callback=callback, **kwargs
        )
    except MCPError as error:
        return error_result(error, progress)
    return call_result(result, progress)


def check_schema(schema):
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        return error.message
    return None


def accepts(schema, instance):
    validator = jsonschema.validators.validator_for(schema)(schema)
    return validator.is_valid(instance)


SAMPLES = {
    "verify": {
        "target only": {"target": "runtime/tests"},
        "everything": {
            "target": "runtime/tests",
            "pytest_args": ["-x", "-k", "login"],
            "timeout_secs": 2.5,
            "retries": 1,
            "mission": "m-1",
        },
        "no target": {},
        "an unknown key": {"target": "runtime/tests", "bogus": 1},
        "a zero timeout": {"target": "runtime/tests", "timeout_secs": 0},
        "negative retries": {"target": "runtime/tests", "retries": -1},
        "args not a list": {"target": "runtime/tests", "pytest_args": "-x"},
    },
    "check": {"empty": {}, "everything": {"target": "src", "args": ["-x"], "tool": "fs", "action": "write"}},
    "policy": {"empty": {}, "an unknown key": {"x": 1}},
    "classify": {"empty": {}, "seq 3": {"seq": 3}, "seq 0": {"seq": 0}},
    "ledger_stats": {"empty": {}, "an unknown key": {"x": 1}},
}


async def tools(session, _spec):
    init = await session.initialize()
    listed = await session.list_tools()
    out = {
        "protocol_version": init.protocol_version,
        "server_name": init.server_info.name,
        "instructions": init.instructions,
        "tools_capability": init.capabilities.tools is not None,
        "tools": [],
    }
    for tool in listed.tools:
        schema = tool.input_schema
        out["tools"].append(
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": schema,
                "schema_error": check_schema(schema),
                "accepts": {name: accepts(schema, args) for name, args in SAMPLES.get(tool.name, {}).items()},
                "read_only": tool.annotations.read_only_hint if tool.annotations else None,
            }
        )
    # The session still serves after listing.
    await session.send_ping()
    return out


async def calls(session, spec):
    await session.initialize()
    return {"results": [await call(session, one) for one in spec]}


async def queued(session, spec):
    first_spec, second_spec = spec
    await session.initialize()
    results = [None, None]
    order = []
    first_running = anyio.Event()

    async def run(index, one, on_progress=None):
        results[index] = await call(session, one, on_progress)
        order.append(index)

    async with anyio.create_task_group() as group:
        group.start_soon(run, 0, first_spec, lambda _message: first_running.set())
        await first_running.wait()
        group.start_soon(run, 1, second_spec)
    return {"results": results, "answered_in_order": order}


def processes_mentioning(marker, server_argv):
    """Live processes whose command line mentions `marker`, but for this client and the server."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, IndexError):
            continue
        if state in (b"Z", b"X") or argv == server_argv:
            continue
        if any(marker in a for a in argv):
            found.append([int(name), " ".join(argv)])
    return found


async def cancel(session, spec, warden, root):
    await session.initialize()
    progress = []
    outcome = {"cancelled": False, "answer": None, "running_at_cancel": None}
    server_argv = [warden, "--root", root, "mcp"]
    if "read_timeout" in spec:
        answer = await call(session, spec["call"], read_timeout_seconds=spec["read_timeout"])
        progress = answer.pop("progress")
        outcome["answer"] = answer
        outcome["cancelled"] = "error" in answer
    else:
        with anyio.CancelScope() as scope:

            def on_progress(message):
                progress.append(message)
                if spec["cancel_when"] in message and not scope.cancel_called:
                    # What runs now, so the test knows the search below can see the run.
                    outcome["running_at_cancel"] = processes_mentioning(root, server_argv)
                    scope.cancel()

            outcome["answer"] = await call(session, spec["call"], on_progress)
        outcome["cancelled"] = scope.cancelled_caught
    outcome["progress"] = progress
    # The server is still running: whatever of the run is left now, it left.
    waited_from = time.monotonic()
    left = processes_mentioning(root, server_argv)
    while left and time.monotonic() - waited_from < LEFTOVER_DEADLINE:
        await anyio.sleep(0.05)
        left = processes_mentioning(root, server_argv)
    outcome["left_behind"] = left
    outcome["server_alive"] = bool(
        [p for p in os.listdir("/proc") if p.isdigit() and _argv(p) == server_argv]
    )
    stats = await call(session, {"tool": "ledger_stats", "progress": False})
    outcome["ledger_stats"] = stats
    return outcome


def _argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


async def main(warden, root, scenario, spec):
    with anyio.fail_after(SCENARIO_DEADLINE):
        async with stdio_client(server(warden, root)) as (read, write):
            async with ClientSession(read, write) as session:
                if scenario == "tools":
                    return await tools(session, spec)
                if scenario == "calls":
                    return await calls(session, spec)
                if scenario == "queued":
                    return await queued(session, spec)
                if scenario == "cancel":
                    return await cancel(session, spec, warden, root)
                raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    warden_bin, project_root, name = sys.argv[1:4]
    spec_json = json.loads(sys.argv[4]) if len(sys.argv) == 5 else None
    out = anyio.run(main, warden_bin, project_root, name, spec_json)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
