"""A small A2A agent built from the official SDK's own server components.

The end-to-end tests of Mayfly's a2a executor (tests/tests/a2a.rs) hand
their jobs to it. It runs the command of each message (a data part holding
{"command": [...] or "...", "cwd": ..., "env": {...}}, as Mayfly's
executor sends it, or a text part holding a shell line) as a process, and
answers as an A2A agent should: a task, WORKING, then its stdout and
stderr as artifacts and COMPLETED (exit 0) or FAILED. A
CancelTask kills the process. Every message it accepts is appended, one
JSON line, to the file named on the command line, so a test can count how
many tasks a job became.

    python a2a_agent.py PORT LOG_FILE TOKEN|- [--no-streaming] [--slow-answer SECS]

With a TOKEN, every request but the agent card must carry
"Authorization: Bearer TOKEN". With --slow-answer, it waits that long
between taking a message (noted) and answering with its task (noted as
"answered"), so a test can stop the sender in between.
"""

import asyncio
import json
import os
import signal
import sys

import uvicorn
from a2a.helpers.proto_helpers import (
    get_data_parts,
    get_text_parts,
    new_task_from_user_message,
    new_text_part,
)
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
)
from google.protobuf.struct_pb2 import Value
from google.protobuf.json_format import ParseDict
from starlette.applications import Starlette
from starlette.responses import JSONResponse


class CommandAgent(AgentExecutor):
    """Runs each message's command as a process."""

    def __init__(self, log_file, slow_answer):
        self.log_file = log_file
        self.slow_answer = slow_answer
        self.processes = {}

    def note(self, **fields):
        with open(self.log_file, "a", encoding="utf-8") as log:
            log.write(json.dumps(fields) + "\n")

    async def execute(self, context: RequestContext, event_queue: EventQueue):
        message = context.message
        task = context.current_task or new_task_from_user_message(message)
        self.note(task=task.id, message=message.message_id, context=task.context_id)
        # The answer to SendMessage waits for the task: a slow agent keeps
        # the sender waiting while it has the job.
        await asyncio.sleep(self.slow_answer)
        await event_queue.enqueue_event(task)
        self.note(answered=task.id)
        data = get_data_parts(message.parts)
        job = data[0] if data else {"command": "\n".join(get_text_parts(message.parts))}
        command = job.get("command")
        if isinstance(command, list):
            argv = [str(word) for word in command]
        else:
            argv = ["sh", "-c", str(command)]
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=job.get("cwd") or None,
            env={**os.environ, **job.get("env", {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.processes[task.id] = process
        try:
            out, err = await process.communicate()
        finally:
            self.processes.pop(task.id, None)
        await updater.add_artifact(
            [new_text_part(out.decode(errors="replace"))],
            artifact_id="stdout",
            name="stdout",
        )
        await updater.add_artifact(
            [new_text_part(err.decode(errors="replace"))],
            artifact_id="stderr",
            name="stderr",
        )
        code = process.returncode
        data_part = Part(data=ParseDict({"exitCode": code}, Value()))
        await updater.add_artifact([data_part], artifact_id="result", name="result")
        if code == 0:
            await updater.complete()
        else:
            await updater.failed(
                updater.new_agent_message([new_text_part(f"the command exited {code}")])
            )

    async def cancel(self, context: RequestContext, event_queue: EventQueue):
        process = self.processes.get(context.task_id)
        self.note(cancel=context.task_id)
        if process is not None and process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


def require_token(app, token):
    """app, answering 401 to any request but the card's without the token."""
    wanted = f"Bearer {token}".encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/.well-known/agent-card.json":
            if dict(scope["headers"]).get(b"authorization") != wanted:
                response = JSONResponse({"error": "unauthorized"}, status_code=401)
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def main():
    port, log_file, token, *flags = sys.argv[1:]
    streaming = "--no-streaming" not in flags
    slow_answer = float(flags[flags.index("--slow-answer") + 1]) if "--slow-answer" in flags else 0
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name="command agent",
        description="Runs a command (a test agent of Mayfly's).",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=streaming, push_notifications=False),
        skills=[
            AgentSkill(
                id="run",
                name="run a command",
                description="Runs the command of the message.",
                tags=["command"],
            )
        ],
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
    )
    handler = DefaultRequestHandler(
        agent_executor=CommandAgent(log_file, slow_answer),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    app = Starlette(
        routes=create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/")
    )
    served = app if token == "-" else require_token(app, token)
    config = uvicorn.Config(served, host="127.0.0.1", port=int(port), log_level="warning")
    server = uvicorn.Server(config)
    print("listening", flush=True)
    server.run()


if __name__ == "__main__":
    main()
