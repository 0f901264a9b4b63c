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

. "$here/../lib/runner.sh"

# run_once LABEL TOKEN: a fresh server (authentication on when TOKEN is set:
# one token with the shop and staff roles, as a kitchen tablet would have)
# and the test file against it.
run_once() {
  local label="$1" token="$2" status=0 auth=""
  if [[ -n "$token" ]]; then auth="shop:$token,staff:$token"; fi
  runner_start "$work/server-$label.log" KITCHEN_MODE=manual AUTH_TOKENS="$auth" || return 1

  echo "run.sh: the kitchen UI with authentication $label"
  (cd "$here" && BASE_URL="$base" CHROMIUM="$CHROMIUM" AUTH_TOKEN="$token" node --test --test-reporter=spec kitchen.test.mjs) || status=$?
  runner_stop
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
