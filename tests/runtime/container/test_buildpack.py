"""The buildpack steps written as a Dockerfile for the stack image, and the isolation rules (pure)."""

from __future__ import annotations

import json

from shoal.runtime.container import buildpack, isolation


def _runs(text: str) -> list[str]:
    return [json.loads(line.removeprefix("RUN "))[2] for line in text.splitlines()
            if line.startswith("RUN ") and json.loads(line.removeprefix("RUN "))[0] == "/bin/sh"]


def test_python_gets_a_venv_and_its_requirements_as_the_local_builder_does() -> None:
    steps = buildpack.steps("python", "/api", ["app.py", "requirements.txt"], {}, "python manage.py collectstatic",
                            installable_pyproject=False)
    text = buildpack.dockerfile("localhost/shoal/stack:bookworm", "/api", steps, ["SECRET_KEY", "DEBUG"])
    lines = text.splitlines()
    assert lines[0] == "FROM localhost/shoal/stack:bookworm"
    assert lines[1:3] == ["ARG DEBUG", "ARG SECRET_KEY"]  # build-time variables reach every RUN
    assert "COPY --chown=10001:10001 . /workspace" in lines and "USER 10001" in lines
    assert "WORKDIR /workspace/api" in lines
    assert 'RUN ["chown", "10001:10001", "/workspace"]' in lines  # the venv goes there, as the app user
    runs = _runs(text)
    assert [r.splitlines()[-1] for r in runs] == ["python3 -m venv /workspace/.venv",
                                                  "/workspace/.venv/bin/pip install -r requirements.txt",
                                                  "python manage.py collectstatic"]
    assert all(r.startswith("set -e\n") for r in runs)
    assert steps.run_env["PATH"].startswith("/workspace/.venv/bin:")


def test_node_installs_from_its_lockfile_and_builds_once() -> None:
    steps = buildpack.steps("node", ".", ["package.json", "package-lock.json"], {"build": "vite build"},
                            "npm run build", installable_pyproject=False)
    assert steps.commands == ("npm ci", "npm run build")
    assert steps.run_env["PATH"].startswith("/workspace/node_modules/.bin:")
    assert buildpack.steps("node", ".", ["package.json"], {"build": "x"}, None, False).commands == \
        ("npm install", "npm run build")


def test_a_multi_line_build_command_stays_one_step() -> None:
    steps = buildpack.steps("custom", ".", [], {}, "mkdir -p dist\necho hi > dist/index.html", False)
    (run,) = _runs(buildpack.dockerfile("stack", ".", steps, []))
    assert run.endswith("mkdir -p dist\necho hi > dist/index.html")
    assert buildpack.app_dir("/") == buildpack.app_dir(".") == "/workspace"


def test_isolation_rules_allow_the_app_and_drop_every_other_podman_network() -> None:
    rules = isolation.rules("podman7", isolation.tag("0123456789abcdef", "shoal-0123-app"))
    assert [(r[1], r[3], r[-1]) for r in rules] == [("podman7", "podman7", "RETURN"), ("podman7", "podman+", "DROP"),
                                                     ("podman+", "podman7", "DROP")]
    assert all("shoal:0123456789ab:shoal-0123-app" in r for r in rules)


def test_the_hosts_certificate_authorities_reach_the_build_when_given() -> None:
    steps = buildpack.steps("python", ".", ["requirements.txt"], {}, None, False)
    text = buildpack.dockerfile("stack", ".", steps, [], ca_bundle=".shoal-host-ca.crt")
    assert f"COPY .shoal-host-ca.crt {buildpack.CA_PATH}" in text
    assert f"PIP_CERT={buildpack.CA_PATH}" in text and f"NODE_EXTRA_CA_CERTS={buildpack.CA_PATH}" in text
    assert "host-ca" not in buildpack.dockerfile("stack", ".", steps, [])
