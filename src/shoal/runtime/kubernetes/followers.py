"""Threads that follow the cluster for a running deployment: its pods' logs into the RUN logs, and a
Service's ready endpoints into the ingress's upstream. Each has a stop event and is joined on stop;
neither changes anything in the cluster (stopping shoal leaves the workloads running)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from shoal.domain.ports import LogSink
from shoal.domain.routing import Upstream
from shoal.runtime.kubernetes.connection import Kube, LineStream
from shoal.runtime.kubernetes.endpoints import watch_endpoints
from shoal.runtime.kubernetes.errors import KubeError
from shoal.runtime.kubernetes.logs import pod_log, pods

log = logging.getLogger("shoal.runtime.kubernetes")


class Follower:
    """One background thread with a stop event."""

    def __init__(self, name: str, body: Callable[[threading.Event], None]) -> None:
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(body,), name=name, daemon=True)
        self._thread.start()

    def _run(self, body: Callable[[threading.Event], None]) -> None:
        while not self.stop_event.is_set():
            try:
                body(self.stop_event)
            except KubeError as exc:
                log.info("%s: %s; retrying", self._thread.name, exc.reason)
            except Exception:  # a follower must outlive a surprise; it is re-run after a pause
                log.exception("%s failed; retrying", self._thread.name)
            self.stop_event.wait(2.0)

    def stop(self, wait: float = 10.0) -> None:
        self.stop_event.set()
        self._thread.join(wait)


class PodLogs(Follower):
    """Every container (and restart) of the pods matching ``selector``: its lines as RUN logs."""

    def __init__(self, kube: Kube, namespace: str, selector: str, component: str, sink: LogSink,
                 only_new: bool = False) -> None:
        self._kube, self._namespace, self._selector = kube, namespace, selector
        self._component, self._sink = component, sink
        self._only_new = only_new  # adopted pods: their earlier lines were stored before shoal restarted
        self._seen: set[tuple[str, int]] = set()
        self._streams: list[LineStream] = []
        self._lock = threading.Lock()
        super().__init__(f"logs {namespace}/{selector}", self._poll)

    def _poll(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for pod in pods(self._kube, self._namespace, self._selector):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    key = (pod["metadata"]["name"], int(status.get("restartCount", 0)))
                    started = "running" in (status.get("state") or {}) or "terminated" in (status.get("state") or {})
                    if started and key not in self._seen:
                        self._seen.add(key)
                        threading.Thread(target=self._follow, args=(key[0], key[1] > 0, self._only_new),
                                         daemon=True).start()
            self._only_new = False  # containers (re)started from now on are followed from their first line
            stop.wait(2.0)
        with self._lock:
            for stream in self._streams:
                stream.close()

    def _follow(self, pod: str, restarted: bool, only_new: bool) -> None:
        stage = "RUN_RESTARTED" if restarted else "RUN"
        try:
            stream = pod_log(self._kube, self._namespace, pod, follow=True, tail_lines=0 if only_new else None)
        except KubeError:
            return
        with self._lock:
            if self.stop_event.is_set():
                stream.close()
                return
            self._streams.append(stream)
        try:
            for line in stream:
                self._sink(stage, self._component, line)
        except KubeError:
            pass
        finally:
            with self._lock:
                if stream in self._streams:
                    self._streams.remove(stream)


class Endpoints(Follower):
    """A Service's ready addresses, set on ``upstream`` (on the event loop) each time they change."""

    def __init__(self, kube: Kube, namespace: str, service: str, upstream: Upstream,
                 loop: asyncio.AbstractEventLoop) -> None:
        self._kube, self._namespace, self._service, self._loop = kube, namespace, service, loop
        self.upstream = upstream
        super().__init__(f"endpoints {namespace}/{service}", self._watch)

    def _watch(self, stop: threading.Event) -> None:
        for snapshot in watch_endpoints(self._kube, self._namespace, self._service, stop, port_name="http"):
            addresses = [(a.ip, a.port) for a in snapshot]
            if addresses:  # a moment with none (pods being replaced) keeps the last ones: they still drain
                self._loop.call_soon_threadsafe(self._set, addresses)

    def _set(self, addresses: list[tuple[str, int]]) -> None:
        self.upstream.addresses = addresses
        self.upstream.down.intersection_update(addresses)
