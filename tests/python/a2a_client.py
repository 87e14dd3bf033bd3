"""Drives Mayfly's A2A front door with the official A2A Python SDK (a2a-sdk).

The end-to-end tests (tests/tests/a2a.rs) run this with the venv that
contrib/test makes; it takes the agent's URL, the bearer token (or "-" for
none) and a scenario, performs it with the SDK's own client, and prints one
JSON object saying what it saw. The assertions live in the Rust test.

    python a2a_client.py URL TOKEN SCENARIO [ARGS...]
"""

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from google.protobuf.json_format import MessageToDict, ParseDict

# How long a scenario may wait for a task to reach a state.
DEADLINE = 60.0


def http_client(token):
    """An httpx client sending the bearer token (none for "-")."""
    headers = {} if token == "-" else {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(headers=headers, timeout=DEADLINE)


async def make_client(url, token, streaming=False, polling=False):
    """An SDK client for the agent at url, from its resolved card."""
    factory = ClientFactory(
        ClientConfig(
            httpx_client=http_client(token), streaming=streaming, polling=polling
        )
    )
    return await factory.create_from_url(url)


def request(part, return_immediately=False, context_id=None, push_url=None):
    """A SendMessageRequest holding one part (a dict in ProtoJSON form)."""
    message = {"messageId": "m-" + str(id(part)), "role": "ROLE_USER", "parts": [part]}
    if context_id:
        message["contextId"] = context_id
    body = {"message": message, "configuration": {}}
    if return_immediately:
        body["configuration"]["returnImmediately"] = True
    if push_url:
        body["configuration"]["taskPushNotificationConfig"] = {
            "url": push_url,
            "token": "hook-token",
        }
    return ParseDict(body, SendMessageRequest())


def state_name(state):
    """TASK_STATE_COMPLETED, ..."""
    return TaskState.Name(state)


def task_json(task):
    """A task as ProtoJSON."""
    return MessageToDict(task)


async def first_task(client, req):
    """Sends req and returns the task of the first response."""
    async for item in client.send_message(req):
        if item.HasField("task"):
            return item.task
        raise AssertionError(f"the first response is not a task: {item}")
    raise AssertionError("no response")


async def until_state(client, task_id, states):
    """Polls get_task until the task is in one of states."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if state_name(task.status.state) in states:
            return task
        if loop.time() > end:
            raise AssertionError(
                f"task {task_id} stayed {state_name(task.status.state)}, not {states}"
            )
        await asyncio.sleep(0.05)


async def card(url, token):
    async with http_client(token) as http:
        found = await A2ACardResolver(http, url).get_agent_card()
    return MessageToDict(found)


async def send_text(url, token, line):
    client = await make_client(url, token)
    task = await first_task(client, request({"text": line}))
    return task_json(task)


async def send_data(url, token, spec):
    client = await make_client(url, token)
    task = await first_task(client, request({"data": json.loads(spec)}))
    return task_json(task)


async def poll(url, token, line):
    """returnImmediately, then get_task until completed."""
    client = await make_client(url, token, polling=True)
    submitted = await first_task(client, request({"text": line}, return_immediately=True))
    done = await until_state(
        client,
        submitted.id,
        {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"},
    )
    return {"submitted": task_json(submitted), "done": task_json(done)}


async def cancel(url, token, line):
    """A running job, cancelled."""
    client = await make_client(url, token, polling=True)
    submitted = await first_task(client, request({"text": line}, return_immediately=True))
    await until_state(client, submitted.id, {"TASK_STATE_WORKING"})
    answered = await client.cancel_task(CancelTaskRequest(id=submitted.id))
    done = await until_state(
        client,
        submitted.id,
        {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"},
    )
    again = None
    try:
        await client.cancel_task(CancelTaskRequest(id=submitted.id))
    except Exception as e:  # the SDK's TaskNotCancelableError
        again = type(e).__name__
    return {
        "id": submitted.id,
        "answered": task_json(answered),
        "done": task_json(done),
        "cancel_again": again,
    }


async def list_tasks(url, token, *states):
    client = await make_client(url, token)
    listing = {}
    for state in states or ("",):
        req = ListTasksRequest(page_size=2, include_artifacts=False)
        if state:
            req.status = TaskState.Value(state)
        tasks, pages, token_ = [], 0, ""
        while True:
            req.page_token = token_
            page = await client.list_tasks(req)
            pages += 1
            tasks.extend(t.id for t in page.tasks)
            token_ = page.next_page_token
            if not token_:
                break
        listing[state or "all"] = {"ids": tasks, "pages": pages, "total": page.total_size}
    return listing


async def subscribe(url, token, line):
    """returnImmediately, then follow the task with subscribe."""
    client = await make_client(url, token, streaming=True, polling=True)
    submitted = await first_task(client, request({"text": line}, return_immediately=True))
    seen = []
    async for item in client.subscribe(SubscribeToTaskRequest(id=submitted.id)):
        seen.append(MessageToDict(item))
    return {"id": submitted.id, "events": seen}


async def stream(url, token, line):
    """send_message over SendStreamingMessage."""
    client = await make_client(url, token, streaming=True)
    seen = []
    async for item in client.send_message(request({"text": line})):
        seen.append(MessageToDict(item))
    return {"events": seen}


class Hook(BaseHTTPRequestHandler):
    """A webhook that keeps what is POSTed to it."""

    received = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Hook.lock:
            Hook.received.append(
                {
                    "body": json.loads(body),
                    "token": self.headers.get("X-A2A-Notification-Token"),
                }
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


async def push(url, token, line):
    """A webhook registered with the message, and one added later."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        client = await make_client(url, token, polling=True)
        submitted = await first_task(
            client, request({"text": line}, return_immediately=True, push_url=hook)
        )
        made = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=submitted.id, url=hook + "2", id="second")
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while True:
            with Hook.lock:
                finals = [
                    r
                    for r in Hook.received
                    if r["body"].get("statusUpdate", {}).get("status", {}).get("state")
                    == "TASK_STATE_COMPLETED"
                ]
            if len(finals) >= 2 or loop.time() > end:
                break
            await asyncio.sleep(0.05)
        with Hook.lock:
            received = list(Hook.received)
        return {"id": submitted.id, "made": MessageToDict(made), "received": received}
    finally:
        server.shutdown()


async def noauth(url, token, line):
    """A call without (or with the given wrong) token."""
    client = await make_client(url, token)
    try:
        await first_task(client, request({"text": line}))
    except Exception as e:
        return {"refused": type(e).__name__, "message": str(e)}
    return {"refused": None}


async def submit(url, token, part):
    """returnImmediately with one part (JSON, ProtoJSON form); the task."""
    client = await make_client(url, token, polling=True)
    return task_json(await first_task(client, request(json.loads(part), return_immediately=True)))


async def get(url, token, task_id):
    """get_task."""
    client = await make_client(url, token)
    return task_json(await client.get_task(GetTaskRequest(id=task_id)))


async def raw(url, token, body):
    """POSTs body (a JSON-RPC request) as it is; the HTTP status and answer."""
    async with http_client(token) as http:
        answer = await http.post(
            url + "/",
            content=body.encode(),
            headers={"Content-Type": "application/json", "A2A-Version": "1.0"},
        )
    try:
        parsed = answer.json()
    except ValueError:
        parsed = answer.text
    return {
        "status": answer.status_code,
        "www_authenticate": answer.headers.get("www-authenticate"),
        "body": parsed,
    }


SCENARIOS = {
    "submit": submit,
    "get": get,
    "raw": raw,
    "card": card,
    "text": send_text,
    "data": send_data,
    "poll": poll,
    "cancel": cancel,
    "list": list_tasks,
    "subscribe": subscribe,
    "stream": stream,
    "push": push,
    "noauth": noauth,
}


def main():
    url, token, scenario, *args = sys.argv[1:]
    result = asyncio.run(SCENARIOS[scenario](url, token, *args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
