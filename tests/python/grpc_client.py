"""A gRPC client of mayflyd written the way a user would write one: Python
stubs generated from the repository's .proto with grpcio-tools, then calls
through grpcio. tests/tests/grpc.rs runs one scenario per test against a
real daemon; each scenario asserts what it checks and prints one
"ok: ..." line per check. Any failure raises, so the exit status is
non-zero and the traceback names the check.

    python grpc_client.py --proto-root DIR --target unix:PATH|HOST:PORT
        [--token-file FILE] --work DIR --stubs DIR SCENARIO
"""

import argparse
import importlib
import json
import os
import sys
import time

import grpc

DEADLINE = 20.0  # seconds any one call or wait may take


def generate_stubs(proto_root, out):
    """Runs protoc (from grpcio-tools) on mayfly/v1/mayfly.proto into out."""
    from grpc_tools import protoc
    import grpc_tools

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main([
        "grpc_tools.protoc",
        "-I" + proto_root,
        "-I" + well_known,
        "--python_out=" + out,
        "--grpc_python_out=" + out,
        "mayfly/v1/mayfly.proto",
    ])
    assert code == 0, f"protoc failed with {code}"
    sys.path.insert(0, out)
    pb = importlib.import_module("mayfly.v1.mayfly_pb2")
    rpc = importlib.import_module("mayfly.v1.mayfly_pb2_grpc")
    return pb, rpc


class Client:
    """The stubs, a channel to the daemon, and the metadata every call sends."""

    def __init__(self, args):
        self.pb, rpc = generate_stubs(args.proto_root, args.stubs)
        self.work = args.work
        # On a Unix socket grpcio sends the socket's path as the HTTP/2
        # authority, which tonic's HTTP/2 layer refuses as malformed;
        # "localhost" is what most gRPC libraries send there
        # (docs/grpc.md).
        options = [("grpc.default_authority", "localhost")] if args.target.startswith("unix:") else []
        self.channel = grpc.insecure_channel(args.target, options=options)
        self.stub = rpc.MayflyStub(self.channel)
        self.metadata = ()
        if args.token_file:
            with open(args.token_file) as f:
                self.metadata = (("authorization", "Bearer " + f.read().strip()),)

    def call(self, method, request, **kw):
        """A unary call with the metadata and a deadline."""
        return getattr(self.stub, method)(
            request, metadata=self.metadata, timeout=DEADLINE, **kw)

    def stream(self, method, request):
        """A server-streaming call (its iterator), with the metadata."""
        return getattr(self.stub, method)(
            request, metadata=self.metadata, timeout=DEADLINE)

    def spec(self, shell=None, argv=None, **kw):
        """A job spec running in the work folder with our PATH."""
        spec = self.pb.JobSpec(cwd=self.work, env={"PATH": os.environ["PATH"]}, **kw)
        if shell is not None:
            spec.shell = shell
        if argv is not None:
            spec.argv.extend(argv)
        return spec

    def submit(self, **kw):
        """Submits a job; returns its id."""
        return self.call("Submit", self.pb.SubmitRequest(spec=self.spec(**kw))).id

    def wait(self, *ids):
        """The jobs as they end (the Wait stream), by id."""
        ended = {job.id: job for job in self.stream("Wait", self.pb.WaitRequest(ids=ids))}
        assert set(ended) == set(ids), f"Wait reported {sorted(ended)}, not {sorted(ids)}"
        return ended

    def state_name(self, value):
        return self.pb.JobState.Name(value)

    def get(self, job_id):
        return self.call("GetJob", self.pb.GetJobRequest(id=job_id))

    def until_state(self, job_id, state):
        """Polls GetJob until the job is in `state` (a JobState name)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if self.state_name(job.state) == state:
                return job
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} never reached {state}")

    def list_ids(self, **filters):
        return [job.id for job in self.stream("ListJobs", self.pb.ListJobsRequest(**filters))]


def expect_error(code, what, fn, *args, **kw):
    """Asserts fn(*args) fails with `code`; returns the error's text."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        assert e.code() == code, f"{what}: {e.code()} {e.details()!r}, expected {code}"
        print(f"ok: {what}: {code.name}: {e.details()}")
        return e.details()
    raise AssertionError(f"{what}: succeeded, expected {code}")


def scenario_submit(c):
    """Submit, Wait, GetJob, Logs: a job's whole life, and its output."""
    pb = c.pb
    job_id = c.submit(shell="echo hello; echo oops >&2", labels={"team": "py"})
    assert job_id >= 1
    print(f"ok: Submit answered id {job_id}")
    ended = c.wait(job_id)[job_id]
    assert c.state_name(ended.state) == "JOB_STATE_SUCCEEDED", ended
    assert ended.HasField("exit_code") and ended.exit_code == 0, ended
    print("ok: Wait streamed the job as it ended, succeeded")
    job = c.get(job_id)
    assert job.id == job_id and job.shell == "echo hello; echo oops >&2", job
    assert dict(job.labels) == {"team": "py"} and job.queue == "default", job
    assert job.priority == 50 and job.cwd == c.work and job.attempts == 1, job
    assert job.submitted_at.seconds > 0 and job.finished_at.seconds > 0, job
    assert job.HasField("usage") and job.usage.max_rss_kib > 0, job
    assert not job.preempted, job
    print("ok: GetJob has the job's fields, its resource usage too")
    out = b"".join(ch.data for ch in c.stream("Logs", pb.LogsRequest(id=job_id)))
    err = b"".join(ch.data for ch in c.stream(
        "Logs", pb.LogsRequest(id=job_id, stream=pb.LOG_STREAM_STDERR)))
    assert (out, err) == (b"hello\n", b"oops\n"), (out, err)
    print("ok: Logs has stdout and stderr")
    argv_id = c.submit(argv=["sh", "-c", "exit 3"], priority=7)
    failed = c.wait(argv_id)[argv_id]
    assert c.state_name(failed.state) == "JOB_STATE_FAILED" and failed.exit_code == 3, failed
    assert list(failed.argv) == ["sh", "-c", "exit 3"] and failed.priority == 7, failed
    print("ok: an argv job ran directly and failed with its exit code")
    batch = c.call("SubmitBatch", pb.SubmitBatchRequest(specs=[
        c.spec(shell="true"),
        c.spec(shell="true", after=[pb.Dependency(batch_line=1)]),
    ]))
    assert len(batch.ids) == 2 and batch.ids[1] == batch.ids[0] + 1, batch
    second = c.wait(*batch.ids)[batch.ids[1]]
    assert [d.id for d in second.after] == [batch.ids[0]], second
    print("ok: SubmitBatch queued both, the second after the first")


def scenario_errors(c):
    """Errors carry the code of their kind and the text mayflyctl prints."""
    pb = c.pb
    text = expect_error(grpc.StatusCode.NOT_FOUND, "GetJob of an unknown job",
                        c.get, 999999)
    assert text == "no job 999999; `mayflyctl status` lists the jobs", text
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, "a priority out of range",
                 c.submit, shell="true", priority=300)
    text = expect_error(grpc.StatusCode.INVALID_ARGUMENT, "a relative cwd",
                        c.call, "Submit", pb.SubmitRequest(spec=pb.JobSpec(
                            shell="true", cwd="relative/dir")))
    assert "relative/dir" in text, text
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, "no command",
                 c.call, "Submit", pb.SubmitRequest(spec=pb.JobSpec(cwd=c.work)))
    c.call("AddQueue", pb.AddQueueRequest(name="twice"))
    text = expect_error(grpc.StatusCode.FAILED_PRECONDITION, "a queue added twice",
                        c.call, "AddQueue", pb.AddQueueRequest(name="twice"))
    assert "already exists" in text, text
    job_id = c.submit(shell="true")
    c.wait(job_id)
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, "editing a finished job",
                 c.call, "Edit", pb.EditRequest(id=job_id, priority=3))


def scenario_list(c):
    """ListJobs with the filters of `mayflyctl status`; queues; DumpState."""
    pb = c.pb
    queues = c.call("AddQueue", pb.AddQueueRequest(name="batch", concurrency=2))
    assert {q.name for q in queues.queues} == {"default", "batch"}, queues
    a = c.submit(shell="true", labels={"team": "py"})
    b = c.submit(shell="exit 1", queue="batch", labels={"team": "rs"})
    d = c.submit(shell="true", queue="batch", labels={"team": "py", "x": "1"})
    c.wait(a, b, d)
    assert c.list_ids() == [a, b, d]
    assert c.list_ids(ids=[d, a]) == [d, a]
    assert c.list_ids(queues=["batch"]) == [b, d]
    assert c.list_ids(queues=["batch", "default"]) == [a, b, d]
    assert c.list_ids(states=[pb.JOB_STATE_FAILED]) == [b]
    assert c.list_ids(states=[pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED]) == [a, b, d]
    assert c.list_ids(labels={"team": "py"}) == [a, d]
    assert c.list_ids(labels={"team": "py"}, queues=["batch"]) == [d]
    assert c.list_ids(states=[pb.JOB_STATE_RUNNING]) == []
    print("ok: ListJobs narrows by ids, queues, states and labels")
    listed = {q.name: q for q in c.call("ListQueues", pb.ListQueuesRequest()).queues}
    assert listed["batch"].concurrency == 2 and listed["batch"].counts.failed == 1, listed
    assert listed["batch"].executor.WhichOneof("kind") == "local", listed
    paused = c.call("Pause", pb.PauseRequest(queues=["batch"]))
    assert [q.paused for q in paused.queues if q.name == "batch"] == [True]
    held = c.submit(shell="true", queue="batch")
    time.sleep(0.3)
    assert c.state_name(c.get(held).state) == "JOB_STATE_QUEUED"
    c.call("Resume", pb.ResumeRequest(queues=["batch"]))
    c.wait(held)
    print("ok: Pause holds a queue's jobs, Resume lets them run")
    items = list(c.stream("DumpState", pb.DumpStateRequest()))
    assert items[0].WhichOneof("item") == "header", items[0]
    header = items[0].header
    assert header.scheduler.next_job_id == held + 1, header
    assert {t.name for t in header.system_tasks} >= {"looptask_wal_flush"}, header
    assert [i.job.id for i in items[1:]] == [a, b, d, held]
    print("ok: DumpState sends the header, then every job")


def scenario_cancel(c):
    """Cancel a running and a queued job; Wait sees them end cancelled."""
    pb = c.pb
    running = c.submit(shell="sleep 30")
    c.until_state(running, "JOB_STATE_RUNNING")
    later = c.submit(shell="true", delay={"seconds": 60})
    assert c.state_name(c.get(later).state) == "JOB_STATE_WAITING"
    reply = c.call("Cancel", pb.CancelRequest(ids=[running, later, 424242]))
    outcomes = [(r.id, pb.CancelOutcome.Name(r.outcome)) for r in reply.results]
    assert outcomes == [
        (running, "CANCEL_OUTCOME_SIGNALLED"),
        (later, "CANCEL_OUTCOME_CANCELLED"),
        (424242, "CANCEL_OUTCOME_NOT_FOUND"),
    ], outcomes
    ended = c.wait(running, later)
    assert all(c.state_name(j.state) == "JOB_STATE_CANCELLED" for j in ended.values()), ended
    again = c.call("Cancel", pb.CancelRequest(ids=[running])).results[0]
    assert pb.CancelOutcome.Name(again.outcome) == "CANCEL_OUTCOME_ALREADY_ENDED"
    assert c.state_name(again.state) == "JOB_STATE_CANCELLED"
    print("ok: Cancel signalled the running job and cancelled the waiting one")


def scenario_logs_follow(c):
    """Logs with follow streams output while the job runs, then ends."""
    pb = c.pb
    gate = os.path.join(c.work, "go")
    # Waits for the gate at most 30 s (600 naps), like the Rust tests' jobs.
    job_id = c.submit(shell=f"echo one; i=0; while [ ! -e {gate} ] && [ $i -lt 600 ]; "
                            f"do sleep 0.05; i=$((i+1)); done; echo two")
    chunks = c.stream("Logs", pb.LogsRequest(id=job_id, follow=True))
    first = next(chunks).data
    assert first == b"one\n", first
    assert c.state_name(c.get(job_id).state) == "JOB_STATE_RUNNING"
    print("ok: the first output arrived while the job still ran")
    open(gate, "w").close()
    rest = b"".join(ch.data for ch in chunks)
    assert rest == b"two\n", rest
    assert c.state_name(c.get(job_id).state) == "JOB_STATE_SUCCEEDED"
    print("ok: the stream ended once the job had")


def scenario_events(c):
    """Events: the recent ones, and with follow the new ones."""
    pb = c.pb
    first = c.submit(shell="true")
    c.wait(first)
    names = [r.event.event for r in c.stream("Events", pb.EventsRequest())]
    assert names[0] == "SchedulerBoot" and "JobSubmitted" in names, names
    print("ok: Events without follow sends the recent events and ends")
    follow = c.stream("Events", pb.EventsRequest(follow=True))

    def fields(reply):
        return json.loads(reply.event.json)

    # The recent events come first; once the first job's end is read, the
    # stream is live, and what follows happens after the call began.
    for reply in follow:
        if reply.event.event == "JobFinished" and fields(reply)["id"] == first:
            break
    second = c.submit(shell="true")
    seen = []
    for reply in follow:
        seen.append(reply.event.event)
        if reply.event.event == "JobFinished" and fields(reply)["id"] == second:
            assert fields(reply)["state"] == "succeeded", reply
            break
    follow.cancel()
    assert seen[0] == "JobSubmitted", seen
    print(f"ok: Events with follow streamed the new job's events as they happened: {seen}")


def scenario_health(c):
    """grpc.health.v1.Health answers SERVING, for the server and the service."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(c.channel)
    for service in ["", "mayfly.v1.Mayfly"]:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service),
                             metadata=c.metadata, timeout=DEADLINE)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, (service, reply)
    print("ok: health says SERVING")


def scenario_reflection(c):
    """Server reflection lists the services and describes Mayfly, so a
    client needs no .proto."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    from google.protobuf import descriptor_pb2

    stub = reflection_pb2_grpc.ServerReflectionStub(c.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="mayfly.v1.Mayfly"),
    ]
    replies = list(stub.ServerReflectionInfo(iter(requests), metadata=c.metadata,
                                             timeout=DEADLINE))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"mayfly.v1.Mayfly", "grpc.health.v1.Health"} <= names, names
    print(f"ok: reflection lists {sorted(names)}")
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in replies[1].file_descriptor_response.file_descriptor_proto]
    ours = [f for f in files if f.package == "mayfly.v1"]
    assert ours and "Submit" in [m.name for m in ours[0].service[0].method], files
    print("ok: reflection describes mayfly.v1.Mayfly")


def scenario_token(c):
    """On TCP with the token, calls work."""
    job_id = c.submit(shell="echo over tcp")
    job = c.wait(job_id)[job_id]
    assert c.state_name(job.state) == "JOB_STATE_SUCCEEDED", job
    print("ok: Submit and Wait over TCP with the token")


def scenario_no_token(c):
    """On TCP without the token (or with a wrong one), every call is refused."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert not c.metadata
    text = expect_error(grpc.StatusCode.UNAUTHENTICATED, "GetJob without the token",
                        c.get, 1)
    assert "Bearer" in text, text
    expect_error(grpc.StatusCode.UNAUTHENTICATED, "Submit without the token",
                 c.submit, shell="touch should-not-exist")
    c.metadata = (("authorization", "Bearer " + "0" * 64),)
    expect_error(grpc.StatusCode.UNAUTHENTICATED, "GetJob with a wrong token", c.get, 1)
    health = health_pb2_grpc.HealthStub(c.channel)
    expect_error(grpc.StatusCode.UNAUTHENTICATED, "health without the token",
                 health.Check, health_pb2.HealthCheckRequest(), timeout=DEADLINE)


def scenario_refused_peer(c):
    """A user the daemon does not serve is refused on the Unix socket."""
    text = expect_error(grpc.StatusCode.PERMISSION_DENIED, "GetJob by another user",
                        c.get, 1)
    assert "may not use this daemon" in text and "--allow-uid" in text, text
    expect_error(grpc.StatusCode.PERMISSION_DENIED, "Submit by another user",
                 c.submit, shell="true")


SCENARIOS = {name[len("scenario_"):].replace("_", "-"): fn
             for name, fn in globals().items() if name.startswith("scenario_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--token-file")
    parser.add_argument("--work", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    SCENARIOS[args.scenario](Client(args))
    print(f"scenario {args.scenario}: passed")


if __name__ == "__main__":
    main()
