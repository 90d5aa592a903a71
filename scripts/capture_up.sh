#!/usr/bin/env bash
# Reproduce docs/shoal-up.txt: run `shoal up` (not detached) in a demo checkout inside a real terminal
# (tmux, 120x40), capture the screen while the progress tree renders and once the app is live, check
# the screen is not garbled, and write both captures as a plain-text screenshot.
#
#   scripts/capture_up.sh [OUT]        (default OUT: docs/shoal-up.txt)
#
# Uses its own temp dir (HOME, data dir, demo repo) and free ports; stops its server at the end.
# Exits non-zero when the screen is garbled: a duplicated tree frame, misaligned step names, no URL.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here/docs/shoal-up.txt}"
python="${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}"
work="$(mktemp -d)"
session="shoal-up-$$"
port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port="$(port)"
ingress_port="$(port)"
data="$work/data"

cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  HOME="$work" "$python" -m shoal down --all --data-dir "$data" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The demo checkout: a stdlib web server, no dependencies, an uncommitted edit on top.
demo="$work/demo"
mkdir -p "$demo/.do"
cat >"$demo/app.py" <<'EOF'
import http.server, os

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the demo, v1\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("served", self.path, flush=True)

print("listening on", os.environ["PORT"], flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Hello).serve_forever()
EOF
cat >"$demo/.do/app.yaml" <<'EOF'
name: demo
services:
  - name: web
    run_command: python3 app.py
    health_check:
      http_path: /
      period_seconds: 1
EOF
git -C "$demo" init -q -b main
git -C "$demo" add -A
git -C "$demo" -c user.name=demo -c user.email=demo@localhost commit -qm "demo app"
sed -i 's/v1/v2 (uncommitted)/' "$demo/app.py"

tmux new-session -d -s "$session" -x 120 -y 40 -c "$demo" \
  "env -i PATH='$PATH' HOME='$work' TERM=xterm-256color LANG=C.UTF-8 SHOAL_DATA_DIR='$data' PS1='demo\$ ' bash --norc --noprofile"
sleep 0.5
tmux send-keys -t "$session" "alias shoal='$python -m shoal'; clear" Enter
sleep 0.3
tmux send-keys -t "$session" "shoal up --api-listen 127.0.0.1:$api_port --ingress-listen 127.0.0.1:$ingress_port" Enter

screen() { tmux capture-pane -p -t "$session" | sed -e 's/[[:space:]]*$//'; }
during=""
for _ in $(seq 1 600); do
  now="$(screen)"
  if grep -q "is live at" <<<"$now"; then break; fi
  # Keep the last frame that shows a running step (not ✓/✗/· in the status column).
  if grep -qE '^(⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏) ' <<<"$now"; then
    during="$now"
  fi
  sleep 0.05
done
grep -q "is live at" <<<"$(screen)" || { screen; echo "capture_up: the app did not go live" >&2; exit 1; }
url="$(screen | grep -o 'http://[^ ]*' | head -1)"
for path in / /hello /again; do
  curl -s -H "Host: ${url#http://}" "http://127.0.0.1:$ingress_port$path" >/dev/null || true
  curl -s "${url}${path}" >/dev/null 2>&1 || true
done
# The followed lines arrive through the log pipeline and a websocket: wait for them (generously, a loaded
# CI machine can take seconds), then give the other requests' lines a moment to follow.
for _ in $(seq 1 300); do
  grep -q "served /" <<<"$(screen)" && break
  sleep 0.1
done
sleep 0.5
live="$(screen)"
tmux send-keys -t "$session" C-c
sleep 1
final="$(screen)"

# Not garbled: one header and one tree, step names in one column, the edit is what is served.
problems=()
[[ "$(grep -c '^deploying demo' <<<"$final")" == 1 ]] || problems+=("the tree header appears more than once")
[[ "$(grep -cE '^. build' <<<"$final" || true)" == 1 ]] || problems+=("the build step appears more than once (duplicated frames)")
columns="$(grep -E '(Building|Deploying|Waiting for) service' <<<"$final" \
  | awk '{ print index($0, $0 ~ /Building/ ? "Building" : ($0 ~ /Deploying/ ? "Deploying" : "Waiting")) }' | sort -u)"
[[ "$(wc -l <<<"$columns")" == 1 ]] || problems+=("the step details are not aligned: columns $columns")
grep -q "served /" <<<"$live" || problems+=("no run log lines were followed")
curl -s -H "Host: ${url#http://}" "http://127.0.0.1:$ingress_port/" | grep -q "v2 (uncommitted)" \
  || problems+=("the uncommitted edit is not what is served")

mkdir -p "$(dirname "$out")"
{
  echo "# \`shoal up\` in a 120x40 tmux pane (scripts/capture_up.sh). The demo checkout has an uncommitted edit."
  echo "# While the deployment runs (the spinner is frozen in a capture):"
  echo
  sed -e '/./,$!d' <<<"${during:-(the deployment finished between two captures)}" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
  echo
  echo "# Live, following the run logs (after a few requests), then Ctrl-C:"
  echo
  sed -e '/./,$!d' <<<"$final" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
} >"$out"
echo "capture_up: wrote $out" >&2
if ((${#problems[@]})); then
  printf 'capture_up: garbled: %s\n' "${problems[@]}" >&2
  exit 1
fi
