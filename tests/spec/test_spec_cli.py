"""``shoal spec validate`` through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tests.spec.spec_corpus import SPECS
from typer.testing import CliRunner

from shoal.cli.spec import spec_app

runner = CliRunner()
VALID = SPECS / "valid" / "minimal-service.yaml"


def test_valid_file_prints_normalised_yaml() -> None:
    result = runner.invoke(spec_app, ["validate", str(VALID)])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["services"][0]["http_port"] == 8080 and "instance_count" not in printed["services"][0]


def test_json_format_and_stdin_with_deploy_template() -> None:
    template = (SPECS / "valid" / "deploy-template.yaml").read_text()
    result = runner.invoke(spec_app, ["validate", "-", "--format", "json"], input=template)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "sample-nodejs"


def test_invalid_spec_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad\nservices:\n  - name: web\n    instance_count: x\n")
    result = runner.invoke(spec_app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "name: " in result.stderr and "services[0].instance_count: expected an integer" in result.stderr
    assert "services[0]: a source is required" in result.stderr


def test_invalid_spec_as_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "ok", "services": [{"name": "web"}]}')
    result = runner.invoke(spec_app, ["validate", str(bad), "-o", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"problems": [{"path": "services[0]", "message": "a source is required: one of git, github, gitlab, bitbucket or image"}]}


def test_malformed_yaml_and_missing_file_exit_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nservices: [\n")
    result = runner.invoke(spec_app, ["validate", str(broken)])
    assert result.exit_code == 1 and "line" in result.stderr
    missing = runner.invoke(spec_app, ["validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
