"""Reading a Functions project: the files decide which actions exist, project.yml configures them,
and every problem is reported with its file and path."""

from __future__ import annotations

import pytest

from shoal.domain.functions.model import Action, Limits, ProjectInvalid, WebMode, action_from_record, action_record
from shoal.domain.functions.project import read_project

HELLO = ["packages/sample/hello/hello.py"]  # DigitalOcean's Python sample: a directory with one file


def problems(text: str | None, files: list[str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ProjectInvalid) as caught:
        read_project(text, files, env)
    return [str(p) for p in caught.value.problems]


def test_the_samples_read_without_a_project_yml_and_take_every_default() -> None:
    project = read_project(None, [*HELLO, "packages/sample/hellojs/hello.js", "packages/sample/hellojs/package.json",
                                  "packages/default/solo.js", "README.md", "packages/.hidden/x.py"])
    hello, hellojs = project.action("sample", "hello"), project.action("sample", "hellojs")
    assert hello == Action(package="sample", name="hello", runtime="python:3.11", path="packages/sample/hello",
                           is_directory=True, entry="packages/sample/hello/hello.py")
    assert hello.web == WebMode.ON and hello.limits == Limits(3000, 256, 16) and hello.main == "main"
    assert hellojs is not None and hellojs.runtime == "nodejs:18" and hellojs.entry == "packages/sample/hellojs"
    solo = project.action("default", "solo")
    assert solo is not None and solo.qualified_name == "default/solo" and not solo.is_directory
    assert [a.qualified_name for a in project.actions] == ["default/solo", "sample/hello", "sample/hellojs"]


def test_project_yml_settings_layer_project_package_action() -> None:
    text = """
parameters: {a: top, b: top}
environment: {E1: top}
packages:
  - name: sample
    web: raw
    parameters: {b: package, c: package}
    environment: {E1: package, E2: package}
    actions:
      - name: hello
        runtime: 'python:3.9'
        main: handler
        web: true
        webSecure: s3cret
        parameters: {c: action}
        environment: {E2: action}
        annotations: {web-custom-options: true}
        limits: {timeout: 60000, memory: 512, logs: 8}
"""
    project = read_project(text, [*HELLO, "packages/sample/other.py"])
    hello = project.action("sample", "hello")
    assert hello is not None
    assert dict(hello.parameters) == {"a": "top", "b": "package", "c": "action"}
    assert dict(hello.environment) == {"E1": "package", "E2": "action"}
    assert (hello.runtime, hello.main, hello.web, hello.web_secure) == ("python:3.9", "handler", WebMode.ON, "s3cret")
    assert hello.limits == Limits(60000, 512, 8) and hello.custom_options
    other = project.action("sample", "other")  # not listed: the package's settings still apply
    assert other is not None and other.web == WebMode.RAW and dict(other.parameters)["b"] == "package"


def test_variables_are_substituted_per_value_from_the_components_envs() -> None:
    text = "packages:\n  - name: sample\n    actions:\n      - name: hello\n        environment:\n" \
           "          TOKEN: '${API_TOKEN}'\n          URL: 'https://${HOST}/x'\n        parameters: {p: '${HOST}'}\n"
    project = read_project(text, HELLO, {"API_TOKEN": "a: b\nc", "HOST": "example.com"})
    hello = project.action("sample", "hello")
    assert hello is not None and dict(hello.environment) == {"TOKEN": "a: b\nc", "URL": "https://example.com/x"}
    assert dict(hello.parameters) == {"p": "example.com"}
    assert problems(text, HELLO, {"HOST": "h"}) == [
        "project.yml: packages[0].actions[0].environment.TOKEN: ${API_TOKEN} is not set: add API_TOKEN to the "
        "functions component's envs"]
    assert read_project(text, HELLO, None).action("sample", "hello") is not None  # not checked without env


def test_every_problem_is_reported_with_its_file_and_path() -> None:
    text = """
bogus: 1
packages:
  - name: sample
    binding: {namespace: x, name: y}
    actions:
      - name: hello
        runtime: ruby:3
        web: sometimes
        webSecure: 7
        limits: {timeout: 50, memory: 4096, logs: -1, cpu: 2}
        environment: {PORT: 8080}
      - name: ghost
      - name: seq
        sequence: [a, b]
      - name: bad name
"""
    found = problems(text, [*HELLO, "packages/sample/seq.js"])
    assert found == sorted(found)
    expected = [
        "project.yml: bogus: unknown key; expected one of bucket, cleanNamespace, environment, packages, parameters, "
        "targetNamespace",
        "project.yml: packages[0].binding: package bindings are not supported by shoal",
        "project.yml: packages[0].actions[0].runtime: unknown runtime 'ruby:3'; expected <language>:<version> with a "
        "language of python, nodejs, go, php",
        'project.yml: packages[0].actions[0].web: must be true, false or "raw"',
        "project.yml: packages[0].actions[0].webSecure: must be false or a secret string",
        "project.yml: packages[0].actions[0].limits.timeout: must be between 100 and 900000 milliseconds",
        "project.yml: packages[0].actions[0].limits.memory: must be between 128 and 1024 MB",
        "project.yml: packages[0].actions[0].limits.logs: must be between 0 and 2147483648 KB",
        "project.yml: packages[0].actions[0].limits.cpu: unknown key; expected one of logs, memory, timeout",
        "project.yml: packages[0].actions[0].environment.PORT: environment values must be strings (quote the value)",
        "project.yml: packages[0].actions[1]: no file or directory packages/sample/ghost (a single source file or a "
        "directory) holds this action",
        "project.yml: packages[0].actions[2].sequence: sequences are not supported by shoal",
        "project.yml: packages[0].actions[3].name: must be a name of letters, digits, _ . @ -",
    ]
    assert sorted(expected) == found


def test_layout_problems_name_the_files() -> None:
    assert problems(None, ["packages/sample/hello.py", "packages/sample/hello.js"]) == [
        "packages/sample: action 'hello' is defined more than once: packages/sample/hello.js, packages/sample/hello.py"]
    assert problems(None, ["packages/sample/two/a.py", "packages/sample/two/b.py"]) == [
        "packages/sample/two: a Python function directory needs a __main__.py holding its main function "
        "(or a single .py file)"]
    assert problems(None, ["packages/sample/web/a.js", "packages/sample/web/b.js"]) == [
        'packages/sample/web: a Node.js function directory needs a package.json (its "main" file), an index.js or '
        "a single .js file"]
    assert problems(None, ["packages/sample/what/data.txt"]) == [
        "packages/sample/what: cannot tell which runtime this action needs: set runtime (e.g. python:3.11, "
        "nodejs:18) in project.yml"]
    assert problems("packages: [", HELLO)[0].startswith("project.yml: is not valid YAML (line 1, column 12)")
    assert problems("- a\n- b\n", HELLO) == ["project.yml: must be a mapping with a packages list"]


def test_directory_actions_find_their_entry() -> None:
    project = read_project(None, [
        "packages/p/deps/__main__.py", "packages/p/deps/helper.py", "packages/p/deps/requirements.txt",
        "packages/p/deps/virtualenv/lib/python3.11/site-packages/x.py",
        "packages/p/js/index.js", "packages/p/js/lib.js", "packages/p/one/.ignore", "packages/p/one/main.mjs"])
    assert [(a.name, a.entry, a.runtime) for a in project.actions] == [
        ("deps", "packages/p/deps/__main__.py", "python:3.11"), ("js", "packages/p/js", "nodejs:18"),
        ("one", "packages/p/one/main.mjs", "nodejs:18")]


def test_triggers_are_noted_not_run_and_functions_is_an_alias_of_actions() -> None:
    text = "packages:\n  - name: sample\n    functions:\n      - name: hello\n        triggers:\n" \
           "          - name: nightly\n            sourceType: scheduler\n"
    project = read_project(text, HELLO)
    assert project.notes == ("sample/hello: triggers are not run (App Platform does not run them either)",)
    assert problems("packages:\n  - name: sample\n    actions:\n      - name: hello\n      - name: hello\n", HELLO) \
        == ["project.yml: packages[0].actions[1].name: action sample/hello is listed twice"]


def test_an_action_survives_its_record() -> None:
    project = read_project("packages:\n  - name: s\n    actions:\n      - name: a\n        parameters: {x: [1]}\n"
                           "        limits: {timeout: 200}\n        web: raw\n", ["packages/s/a.py"])
    action = project.actions[0]
    again = action_from_record(action_record(action))
    assert again == action and dict(again.parameters) == {"x": [1]} and again.web == WebMode.RAW


def test_yaml_dates_stay_strings_so_parameters_travel_as_json() -> None:
    project = read_project("parameters: {since: 2024-01-01, n: 1.5}\n", ["packages/s/a.py"])
    assert dict(project.actions[0].parameters) == {"since": "2024-01-01", "n": 1.5}
