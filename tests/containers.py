"""What container tests share: a private podman service, the stack image, a tiny static image for the
loopback registry, and cleanup of everything a test session labelled.

Every object tests create carries the session's ``shoal.owner`` label (``EngineSession.engine``), so
the cleanup removes exactly those, and nothing another test run or shoal server owns.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shoal.runtime.container import containers, images, isolation
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.registries import ImageRef
from shoal.runtime.container.session import EngineSession, open_engine
from shoal.runtime.container.stack import STACK_IMAGE, ensure_stack
from tests.registry import PASSWORD, USER, LoopbackRegistry

# A static Go web server in a FROM-scratch image, built multi-stage in the stack image: a 2 MB image
# that a loopback registry takes in a second. It answers "hello <GREETING>" and /env/NAME.
HELLO_GO = """\
package main

import (
\t"fmt"
\t"net/http"
\t"os"
)

func main() {
\tport := os.Getenv("PORT")
\tif port == "" {
\t\tport = "8080"
\t}
\thttp.HandleFunc("/env/", func(w http.ResponseWriter, r *http.Request) {
\t\tfmt.Fprint(w, os.Getenv(r.URL.Path[len("/env/"):]))
\t})
\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
\t\tfmt.Fprintf(w, "hello %s", os.Getenv("GREETING"))
\t})
\thttp.ListenAndServe(":"+port, nil)
}
"""
HELLO_DOCKERFILE = f"""\
FROM {STACK_IMAGE} AS build
ARG GREETING=world
WORKDIR /src
COPY hello.go .
RUN CGO_ENABLED=0 GOCACHE=/tmp/go-cache go build -o /hello hello.go
FROM scratch
ARG GREETING=world
ENV GREETING=$GREETING
COPY --from=build /hello /hello
CMD ["/hello"]
"""


def podman_missing() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install -y podman runc, as root; .ci/run does this)"
    return None


def engine_session(directory: Path, mirrors: dict[str, str] | None = None) -> EngineSession:
    reason = podman_missing()
    if reason:
        pytest.skip(reason)
    return open_engine(directory, mirrors=mirrors)


def stack(engine: Engine) -> str:
    """The stack image (built once per machine; ``shoal stack build`` in CI makes it before the tests)."""
    return ensure_stack(engine, lambda line: None)


def write_hello(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "hello.go").write_text(HELLO_GO)
    (repo / "Dockerfile").write_text(HELLO_DOCKERFILE)
    return repo


def build_hello(engine: Engine, workdir: Path, tag: str) -> images.Built:
    repo = write_hello(workdir / "hello")
    return images.build(engine, repo_root=repo, source_dir="/", dockerfile="Dockerfile", tag=tag,
                        build_args={}, labels=engine.labels(role="test"), log=lambda line: None)


def push_hello(engine: Engine, registry: LoopbackRegistry, workdir: Path, path: str = "team/hello",
               tag: str = "1") -> ImageRef:
    """Build the hello image and push it to the loopback registry (with its credentials)."""
    ref = ImageRef(registry=registry.host, path=path, tag=tag)
    build_hello(engine, workdir, ref.reference)
    for event in engine.api.push(ref.repository, tag=tag, stream=True, decode=True,
                                 auth_config={"username": USER, "password": PASSWORD}):
        if event.get("error"):
            raise RuntimeError(f"push failed: {event['error']}")
    engine.client.images.remove(ref.reference, force=True)  # so a test's pull really pulls
    return ref


def image_ids(engine: Engine) -> set[str]:
    return {str(i.id) for i in engine.client.images.list(all=True)}


def clean(session: EngineSession, before: set[str]) -> None:
    """Remove every container, network and image the session's owner label marks, then the untagged
    build steps that appeared since ``before`` (podman puts build labels on the last step only, so
    the steps before it carry none); stop the service."""
    engine = session.engine
    try:
        containers.remove_labelled(engine, grace_seconds=1)
        isolation.release(isolation.tag(engine.owner, ""))  # the firewall rules of its networks
        images.remove(engine, images.labelled(engine))
        for _ in range(3):  # a step's removal can free its parent step
            steps = [i for i in engine.client.images.list(all=True, filters={"dangling": True})
                     if str(i.id) not in before and not i.tags]
            if not steps or not images.remove(engine, [str(i.id) for i in steps]):
                break
    finally:
        session.close()
