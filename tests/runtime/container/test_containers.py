"""Containers against a real podman: published on 127.0.0.1, limits, isolation between app networks,
names between components, OOM reported, stop with grace then kill, jobs' exit codes, logs, labels."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from shoal.runtime.container import containers
from shoal.runtime.container.containers import RunSpec
from shoal.runtime.container.engine import Engine

PROBE = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())
except Exception as exc:
    print("unreachable", type(exc).__name__)
"""


def _answer(port: int, path: str = "/", seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def app_id() -> str:
    return "test-" + uuid.uuid4().hex[:8]


def _web(engine: Engine, stack: str, app: str, network: str | None, name: str = "web", **extra: object) -> containers.Running:
    spec = RunSpec(name=f"shoal-{app}-{name}", image=stack, labels=engine.labels(app=app, component=name),
                   command=["python3", "-m", "http.server", "8080"], network=network, aliases=(name,), port=8080,
                   env={"PORT": "8080"}, **extra)  # type: ignore[arg-type]
    return containers.run(engine, spec)


def _probe(engine: Engine, stack: str, app: str, network: str, url: str) -> str:
    job = containers.run(engine, RunSpec(name=f"shoal-{app}-probe-{uuid.uuid4().hex[:6]}", image=stack,
                                         labels=engine.labels(app=app, component="probe"),
                                         command=["python3", "-c", PROBE, url], network=network))
    exit_ = containers.wait(engine, job.id, timeout=60)
    lines: list[str] = []
    containers.follow(engine, job.id, lines.append)
    assert exit_.code == 0, lines
    return "\n".join(lines)


def test_published_on_loopback_and_reachable_by_component_name(engine: Engine, stack_image: str, app_id: str) -> None:
    network = containers.ensure_network(engine, f"shoal-{app_id}", engine.labels(app=app_id))
    try:
        web = _web(engine, stack_image, app_id, network, memory_bytes=256 << 20, nano_cpus=500_000_000)
        assert web.host_port and _answer(web.host_port).status_code == 200
        ports = engine.api.inspect_container(web.id)["NetworkSettings"]["Ports"]["8080/tcp"]
        assert {p["HostIp"] for p in ports} == {"127.0.0.1"}
        assert "Directory listing" in _probe(engine, stack_image, app_id, network, "http://web:8080/")
        host = engine.api.inspect_container(web.id)["HostConfig"]
        assert host["Memory"] == 256 << 20 and host["CapDrop"] and "no-new-privileges" in str(host["SecurityOpt"])
        assert [f.name for f in containers.listed(engine, app=app_id, component="web")] == [web.name]
    finally:
        assert containers.remove_labelled(engine, grace_seconds=1, app=app_id) >= 1
    assert not containers.listed(engine, app=app_id)
    assert not engine.client.networks.list(names=[f"shoal-{app_id}"])


def test_another_apps_network_cannot_reach_its_containers(engine: Engine, stack_image: str, app_id: str) -> None:
    other = app_id + "-b"
    net_a = containers.ensure_network(engine, f"shoal-{app_id}", engine.labels(app=app_id))
    net_b = containers.ensure_network(engine, f"shoal-{other}", engine.labels(app=other))
    try:
        web = _web(engine, stack_image, app_id, net_a)
        _answer(web.host_port or 0)
        address = engine.api.inspect_container(web.id)["NetworkSettings"]["Networks"][net_a]["IPAddress"]
        assert "Directory listing" in _probe(engine, stack_image, app_id, net_a, f"http://{address}:8080/")
        assert "unreachable" in _probe(engine, stack_image, other, net_b, f"http://{address}:8080/")
        assert "unreachable" in _probe(engine, stack_image, other, net_b, "http://web:8080/")
    finally:
        containers.remove_labelled(engine, grace_seconds=1, app=app_id)
        containers.remove_labelled(engine, grace_seconds=1, app=other)


def test_out_of_memory_is_reported(engine: Engine, stack_image: str, app_id: str) -> None:
    try:
        hog = containers.run(engine, RunSpec(name=f"shoal-{app_id}-hog", image=stack_image,
                                             labels=engine.labels(app=app_id, component="hog"),
                                             command=["python3", "-c", "x = bytearray(400 << 20)"],
                                             memory_bytes=64 << 20))
        exit_ = containers.wait(engine, hog.id, timeout=60)
        assert exit_.code == 137 and exit_.oom_killed
        assert "more memory than its instance size" in exit_.describe()
    finally:
        containers.remove_labelled(engine, app=app_id)


def test_job_exit_code_and_output(engine: Engine, stack_image: str, app_id: str) -> None:
    try:
        job = containers.run(engine, RunSpec(name=f"shoal-{app_id}-job", image=stack_image,
                                             labels=engine.labels(app=app_id, component="job"),
                                             command=["sh", "-c", "echo one; echo two >&2; exit 3"],
                                             env={"GREETING": "hi"}))
        exit_ = containers.wait(engine, job.id, timeout=60)
        lines: list[str] = []
        containers.follow(engine, job.id, lines.append)
        assert (exit_.code, exit_.oom_killed) == (3, False)
        assert lines == ["one", "two"]
    finally:
        containers.remove_labelled(engine, app=app_id)


def test_stop_sends_sigterm_then_kills_after_the_grace_period(engine: Engine, stack_image: str, app_id: str) -> None:
    try:
        polite = containers.run(engine, RunSpec(name=f"shoal-{app_id}-polite", image=stack_image,
                                                labels=engine.labels(app=app_id, component="polite"),
                                                command=["python3", "-m", "http.server", "8080"]))
        stubborn = containers.run(engine, RunSpec(
            name=f"shoal-{app_id}-stubborn", image=stack_image, labels=engine.labels(app=app_id, component="stubborn"),
            command=["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      "print('ready', flush=True); time.sleep(600)"]))
        time.sleep(1)
        started = time.monotonic()
        containers.stop(engine, polite.id, grace_seconds=20)
        assert time.monotonic() - started < 10  # SIGTERM ended it (the init forwards it)
        started = time.monotonic()
        containers.stop(engine, stubborn.id, grace_seconds=2)
        assert time.monotonic() - started >= 1.5
        assert containers.exit_of(engine, stubborn.id) is not None
    finally:
        containers.remove_labelled(engine, app=app_id)
