#!/usr/bin/env bash
# The browser test of the kitchen UI: Debian's Chromium driven by
# playwright-core (never a browser playwright downloads itself) against the
# runner, built here and started on a free 127.0.0.1 port in manual mode with
# a fresh data directory, twice: with authentication off, then on (a token
# made for the run, which the test pastes into the sign-in). Installs chromium (apt, needs root) and the node
# packages (npm ci) when they are missing. `make test-browser` runs it.
#
# GO overrides the go command (e.g. GO="flock /tmp/cupcake-factory-go.lock go").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
GO="${GO:-go}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
  echo "run.sh: installing Debian's chromium" >&2
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "run.sh: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -d "$here/node_modules/playwright-core" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && $GO build -o "$work/cupcake-factory" ./cmd/cupcake-factory)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# run_once LABEL TOKEN: a fresh server (authentication on when TOKEN is set:
# one token with the shop and staff roles, as a kitchen tablet would have)
# and the test file against it.
run_once() {
  local label="$1" token="$2" port base status=0
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  rm -rf "$work/data" && mkdir -p "$work/data"
  local auth=""
  if [[ -n "$token" ]]; then auth="shop:$token,staff:$token"; fi
  LISTEN_ADDRESS="127.0.0.1:$port" DATA_DIR="$work/data" KITCHEN_MODE=manual AUTH_TOKENS="$auth" \
    "$work/cupcake-factory" >"$work/server-$label.log" 2>&1 &
  pid=$!

  local ready=""
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if curl -fsS "$base/health/readiness" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.1
  done
  if [[ -z "$ready" ]]; then
    echo "run.sh: the server did not become ready on $base; its log:" >&2
    cat "$work/server-$label.log" >&2
    return 1
  fi

  echo "run.sh: the kitchen UI with authentication $label"
  (cd "$here" && BASE_URL="$base" CHROMIUM="$CHROMIUM" AUTH_TOKEN="$token" node --test --test-reporter=spec kitchen.test.mjs) || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
  if [[ $status -ne 0 ]]; then
    echo "run.sh: browser test with authentication $label failed; the server log:" >&2
    tail -n 50 "$work/server-$label.log" >&2
  elif [[ -n "$token" ]] && grep -qF "$token" "$work/server-$label.log"; then
    echo "run.sh: the server logged the token" >&2
    status=1
  fi
  return $status
}

# A token made here, for this run only.
token="kitchen-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
status=0
run_once off "" || status=$?
run_once on "$token" || status=$?
if [[ $status -eq 0 ]]; then
  echo "run.sh: screenshots in $here/screenshots/{auth-off,auth-on}/"
fi
exit $status
