"""Real git repositories for runtime tests, made in a temp dir: small apps of each kind."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

PY_SERVER = textwrap.dedent('''
    import os, sys, http.server
    VERSION = os.environ.get("VERSION", "v1")
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health" and os.path.exists(os.environ.get("SICK_FLAG", "/nonexistent")):
                self.send_response(503); self.end_headers(); return
            body = f"{VERSION} {os.environ.get('GREETING', 'hello')} {self.path}\\n".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            print("served", self.path, flush=True)
    print(f"listening on {os.environ['PORT']}", flush=True)
    # In a container the published port reaches the container's own address, not its loopback.
    http.server.ThreadingHTTPServer((os.environ.get("BIND_HOST", "127.0.0.1"), int(os.environ["PORT"])),
                                    Handler).serve_forever()
''')

NODE_SERVER = textwrap.dedent('''
    const http = require("http");
    http.createServer((req, res) => res.end(`node says hi ${req.url}\\n`)).listen(process.env.PORT, "127.0.0.1",
      () => console.log(`node listening on ${process.env.PORT}`));
''')


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def write(repo: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    repo = root
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    write(repo, files)
    commit(repo, "initial")
    return repo


def commit(repo: Path, message: str, files: dict[str, str] | None = None) -> str:
    if files:
        write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def monorepo(root: Path) -> Path:
    """One repo with a Python web service, a Node service, a static site, a worker and job scripts."""
    return make_repo(root, {
        "web/app.py": PY_SERVER,
        "web/requirements.txt": "",
        "web/Procfile": "web: python app.py\n",
        "node/server.js": NODE_SERVER,
        "node/package.json": json.dumps({"name": "n", "version": "1.0.0", "scripts": {"start": "node server.js"}}),
        "site/index.html": "<h1>static home</h1>\n",
        "site/about/index.html": "<h1>about</h1>\n",
        "site/404.html": "<h1>custom not found</h1>\n",
        "tasks/mark.sh": "#!/bin/sh\necho \"$1 ran\"\ndate +%s%N >> \"$MARKS/$1\"\n",
        "tasks/worker.sh": "#!/bin/sh\nwhile true; do date +%s >> \"$MARKS/worker\"; echo tick; sleep 0.5; done\n",
    })
