"""Functions projects shaped like DigitalOcean's samples (sample-functions-python-helloworld,
sample-functions-nodejs-helloworld, sample-functions-python-jokes), for tests and benchmarks."""

from __future__ import annotations

import json
import textwrap
from typing import Any

# packages/sample/hello/hello.py: a directory holding one file, as in DigitalOcean's Python sample.
PY_HELLO = textwrap.dedent('''
    import os

    def main(args):
        name = args.get("name", "stranger")
        greeting = "Hello " + name + "!"
        print(greeting)
        return {"body": greeting, "headers": {"x-worker-pid": str(os.getpid())}}
''')

# packages/sample/hellojs: hello.js named by package.json "main", as in DigitalOcean's Node.js sample.
NODE_HELLO = textwrap.dedent('''
    function main(args) {
        let name = args.name || 'stranger'
        let greeting = 'Hello ' + name + '!'
        console.log(greeting)
        return {"body": greeting, "headers": {"x-runtime": "node " + process.version}}
    }

    exports.main = main
''')

# A directory action with a PyPI dependency: __main__.py plus requirements.txt.
PY_JOKES = textwrap.dedent('''
    from importlib.metadata import version

    import pyjokes

    def main(args):
        return {"body": {"joke": pyjokes.get_joke(), "version": version("pyjokes")}}
''')

PY_SLOW = textwrap.dedent('''
    import time

    def main(args):
        print("slow started")
        time.sleep(float(args.get("seconds", 30)))
        return {"body": "finished"}
''')

PY_GREET = textwrap.dedent('''
    import os

    def main(args, context):
        return {"statusCode": 201, "headers": {"content-type": "application/json"},
                "body": {"greeting": os.environ["GREETING"] + " " + args.get("name", "you") + args["punctuation"],
                         "method": args["__ow_method"], "path": args["__ow_path"],
                         "activation": context.activation_id, "remaining_ms": context.get_remaining_time_in_millis()}}
''')

PROJECT_YML = textwrap.dedent('''
    parameters: {}
    packages:
      - name: sample
        environment:
          GREETING: "${GREETING}"
        actions:
          - name: hello
            runtime: 'python:default'
          - name: hellojs
            runtime: 'nodejs:default'
          - name: jokes
            runtime: 'python:3.11'
          - name: slow
            runtime: 'python:default'
            limits:
              timeout: 1000
          - name: greet
            parameters:
              punctuation: "!"
          - name: private
            web: false
''')


def functions_project(root: str = "") -> dict[str, str]:
    """The files of the project (under ``root``)."""
    files = {
        "project.yml": PROJECT_YML,
        "packages/sample/hello/hello.py": PY_HELLO,
        "packages/sample/hellojs/hello.js": NODE_HELLO,
        "packages/sample/hellojs/package.json": json.dumps({"name": "hello", "version": "1.0.0",
                                                            "main": "hello.js"}),
        "packages/sample/jokes/__main__.py": PY_JOKES,
        "packages/sample/jokes/requirements.txt": "pyjokes==0.8.3\n",
        "packages/sample/slow.py": PY_SLOW,
        "packages/sample/greet.py": PY_GREET,
        "packages/sample/private.py": "def main(args):\n    return {'body': 'secret'}\n",
    }
    prefix = f"{root.strip('/')}/" if root else ""
    return {prefix + name: content for name, content in files.items()}


def functions_component(repo: str, name: str = "fns", route: str = "/fn", **extra: Any) -> dict[str, Any]:
    return {"name": name, "git": {"repo_clone_url": repo, "branch": "main"}, "source_dir": "fns",
            "routes": [{"path": route}], "envs": [{"key": "GREETING", "value": "Howdy"}], **extra}
