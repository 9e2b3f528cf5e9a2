"""`sfu serve --workers N`: real worker processes on one port, restarted when they die, stopped
together; the parent's restart policy with real crashing processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from sfu.config import load
from sfu.headless.client import HeadlessClient
from sfu.supervisor import RestartPolicy, Slot, Supervisor, WorkerPlan, describe_exit, split_port_range, worker_plans

from .conftest import free_port
from .ops_helpers import RawSocket
from .redis_server import RedisServer, redis_server  # noqa: F401  (fixture)
from .test_process import ROOT, Process, processes  # noqa: F401  (fixture)


async def _one_on_each_worker(url: str, admin: int) -> dict[int, HeadlessClient]:
    """Headless clients connected through the shared port until one is on each of workers 0 and 1
    (the others closed): by worker."""
    found: dict[int, HeadlessClient] = {}
    extra: list[HeadlessClient] = []
    async with aiohttp.ClientSession() as http:
        for sender in range(1, 41):
            before = [(await _health(http, f"http://127.0.0.1:{admin + i}"))["participants"]["connected"] for i in range(2)]
            client = HeadlessClient(url, sender)
            await client.connect()
            after = [(await _health(http, f"http://127.0.0.1:{admin + i}"))["participants"]["connected"] for i in range(2)]
            worker = next(i for i in range(2) if after[i] > before[i])
            if worker in found:
                extra.append(client)
            else:
                found[worker] = client
            if len(found) == 2:
                break
    for client in extra:
        await client.close()
    assert len(found) == 2, "forty connections all reached one worker"
    return found


# -- the plan and the restart policy ---------------------------------------------------------------
def test_port_range_is_split_without_overlap() -> None:
    assert split_port_range(40000, 40999, 4) == [(40000, 40249), (40250, 40499), (40500, 40749), (40750, 40999)]
    parts = split_port_range(40000, 40010, 3)
    assert parts == [(40000, 40003), (40004, 40007), (40008, 40010)]
    assert split_port_range(40000, 40001, 2) == [(40000, 40000), (40001, 40001)]
    with pytest.raises(ValueError):
        split_port_range(40000, 40000, 2)


def test_each_worker_gets_its_id_port_slice_and_admin_port() -> None:
    config, _ = load(
        {"workers": "3", "redis_url": "redis://127.0.0.1:6379/0", "port": 8080, "port_range": "40000-40008",
         "admin_port": 9100},
        env={},
    )
    plans = worker_plans(config, ["serve", "--workers", "3", "--port-range", "40000-40008"])
    assert [p.index for p in plans] == [0, 1, 2]
    for plan, (low, high) in zip(plans, [(40000, 40002), (40003, 40005), (40006, 40008)]):
        argv = list(plan.argv)
        assert argv[:5] == ["serve", "--workers", "3", "--port-range", "40000-40008"]
        tail = argv[5:]
        # Later flags win: each worker is a single process with its own id, slice and admin port.
        assert tail[tail.index("--workers") + 1] == "1"
        assert tail[tail.index("--worker-id") + 1] == str(plan.index)
        assert "--reuse-port" in tail
        assert tail[tail.index("--port-range") + 1] == f"{low}-{high}"
        assert tail[tail.index("--admin-port") + 1] == str(9100 + plan.index)


def test_worker_flags_override_the_parents_in_the_workers_own_configuration() -> None:
    from sfu.cli import build_parser
    from sfu.config import all_settings

    config, _ = load({"workers": "2", "redis_url": "redis://127.0.0.1:6379/0", "port": 8080}, env={})
    plan = worker_plans(config, ["serve", "--workers", "2", "--redis-url", "redis://127.0.0.1:6379/0"])[1]
    args = build_parser(with_loadtest=False).parse_args(list(plan.argv))
    given = vars(args)
    worker, _ = load({s.name: given[s.name] for s in all_settings() if s.name in given}, env={})
    assert worker.worker_count() == 1 and worker.worker_id == "1" and worker.reuse_port
    assert worker.redis_url == "redis://127.0.0.1:6379/0"


def test_restart_delay_grows_and_gives_up_after_repeated_immediate_crashes() -> None:
    policy = RestartPolicy(stable_after=10, first_delay=0.5, max_delay=4, give_up_after=5)
    slot = Slot(WorkerPlan(0, ("serve",)))
    delays = []
    now = 100.0
    for _ in range(5):
        slot.started_at = now
        now += 1.0  # crashed a second after starting
        delays.append(slot.exited(1, now, policy))
    assert delays == [0.5, 1.0, 2.0, 4.0, None]
    # A worker that had run a while starts its count afresh.
    slot = Slot(WorkerPlan(0, ("serve",)), quick_crashes=4, started_at=0.0)
    assert slot.exited(-9, 60.0, policy) == 0.5 and slot.quick_crashes == 0
    assert describe_exit(-9) == "signal SIGKILL" and describe_exit(3) == "status 3"


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_supervisor_restarts_then_gives_up_on_a_worker_that_keeps_crashing() -> None:
    started: list[int] = []

    def spawn(plan: WorkerPlan) -> subprocess.Popen[bytes]:
        process = _python("import sys; sys.exit(3)" if plan.index == 1 else "import time; time.sleep(60)")
        started.append(plan.index)
        return process

    supervisor = Supervisor(
        [WorkerPlan(0, ()), WorkerPlan(1, ())], stop_timeout=10, spawn=spawn,
        policy=RestartPolicy(stable_after=10, first_delay=0.01, max_delay=0.05, give_up_after=3),
    )
    assert supervisor.run() == 1
    assert started.count(1) == 3 and started.count(0) == 1  # the healthy worker was stopped, not restarted
    assert supervisor.slots[1].exit_codes == [3, 3, 3]
    assert supervisor.slots[0].exit_codes == [-signal.SIGTERM]


def test_supervisor_stops_at_once_on_a_configuration_error() -> None:
    supervisor = Supervisor([WorkerPlan(0, ())], stop_timeout=10, spawn=lambda plan: _python("import sys; sys.exit(2)"))
    assert supervisor.run() == 2
    assert supervisor.slots[0].exit_codes == [2]


# -- real workers ---------------------------------------------------------------------------------
async def _health(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url + "/healthz") as response:
        assert response.status == 200
        return await response.json()


async def _until_healthy(http: aiohttp.ClientSession, url: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await _health(http, url)
        except aiohttp.ClientError:
            assert time.monotonic() < deadline, f"{url} never answered"
            await asyncio.sleep(0.2)


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(line) for line in out.split()}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def test_two_workers_share_a_port_restart_and_stop_together(
    processes: list[Process], tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    admin = free_port()
    while True:  # two consecutive free ports for the admin listeners
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", admin + 1))
            break
        except OSError:
            admin = free_port()
    drain = 3.0
    p = Process(
        ["--workers", "2", "--redis-url", redis_server.url, "--admin-port", str(admin), "--port-range", "41000-41019",
         "--drain-timeout", str(drain)],
        tmp_path / "serve.log",
    )
    processes.append(p)
    await p.wait_ready()
    async with aiohttp.ClientSession() as http:
        first = [await _until_healthy(http, f"http://127.0.0.1:{admin + i}") for i in range(2)]
        assert [h["worker"] for h in first] == ["0", "1"]
        pids = {int(h["pid"]) for h in first}
        assert pids == _children(p.proc.pid) and len(pids) == 2
        async with http.get(f"http://127.0.0.1:{admin + 1}/metrics") as response:
            assert f'sfu_worker_info{{node="{first[1]["node"]}",pid="{first[1]["pid"]}",worker="1"}} 1.0' in \
                await response.text()

    # The shared port reaches both workers: new connections land on either.
    seen: set[str] = set()
    for _ in range(40):
        async with aiohttp.ClientSession() as http:  # a new connection each time
            seen.add((await _health(http, p.url))["worker"])
        if seen == {"0", "1"}:
            break
    assert seen == {"0", "1"}, seen

    # People reaching different workers through the one port meet, and see and hear each other.
    people = await _one_on_each_worker(p.url, admin)
    x, y = people[0], people[1]
    await x.start()
    await y.start()
    assert (await x.expect("paired"))["partner"] == y.id
    assert (await y.expect("paired"))["partner"] == x.id
    await x.wait_frame_from(y.sender_id, timeout=20)
    await y.wait_frame_from(x.sender_id, timeout=20)
    await x.chat("across the workers")
    assert (await y.expect("chat"))["text"] == "across the workers"

    # kill -9 one worker: the parent starts it again, healthy, with a new pid; the partner of
    # someone it served, on the other worker, is told and looks again.
    victim = int(first[1]["pid"])
    os.kill(victim, signal.SIGKILL)
    await people[0].expect("partner_left", timeout=20)
    for person in people.values():
        await person.close()
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                health = await _health(http, f"http://127.0.0.1:{admin + 1}")
                if int(health["pid"]) != victim:
                    break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, p.output()
            await asyncio.sleep(0.2)
        assert health["worker"] == "1" and health["status"] == "ok"
        assert (await _health(http, f"http://127.0.0.1:{admin}"))["pid"] == first[0]["pid"]  # the other untouched
    assert "worker 1 (pid %d) exited with signal SIGKILL; restarting it" % victim in p.output()
    workers = _children(p.proc.pid)
    assert len(workers) == 2 and victim not in workers

    # SIGTERM to the parent: every worker drains its clients and everything exits cleanly in time.
    client = await RawSocket.open(p.url.replace("http", "ws") + "/ws")
    try:
        await client.until(lambda m: m.get("type") == "welcome")
        sent = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        assert (await client.error("shutting_down", timeout=20))["code"] == "shutting_down"
        rc = await asyncio.get_running_loop().run_in_executor(None, p.proc.wait, 30)
        took = time.monotonic() - sent
    finally:
        await client.close()
    log = p.output()
    assert rc == 0, log
    assert took < drain + 5.0, took
    assert not any(_alive(pid) for pid in workers), log
    assert log.count("stopped with status 0") == 2 and "Traceback" not in log
    print(f"\nSIGTERM to the parent of 2 workers to exit: {took:.2f} s")


def test_workers_without_redis_is_a_one_line_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sfu", "serve", "--workers", "2"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("SFU_")},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "workers: 2 workers share one pool of people through Redis: give --redis-url" in lines[0]


def test_workers_refuse_a_port_another_server_holds(redis_server: RedisServer) -> None:  # noqa: F811
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sfu", "serve", "--workers", "2", "--redis-url", redis_server.url, "--port",
             str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("SFU_")},
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in result.stderr


def test_log_lines_name_their_worker() -> None:
    import json
    import logging

    from sfu.logs import JsonFormatter, TextFormatter, WorkerTag

    record = logging.LogRecord("sfu.server", logging.INFO, __file__, 1, "paired %s", ("a",), None)
    record.event = "paired"
    assert WorkerTag("3").filter(record)
    assert " INFO [worker 3] sfu.server: paired a" in TextFormatter("3").format(record)
    assert "worker=" not in TextFormatter("3").format(record)  # named once, in front
    assert json.loads(JsonFormatter().format(record))["worker"] == "3"
