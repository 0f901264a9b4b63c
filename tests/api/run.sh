#!/usr/bin/env bash
# schemathesis (PyPI) fuzzes the live app from its own OpenAPI document:
# the runner, built here and started in-process mode on a free 127.0.0.1
# port with a fresh data directory, takes generated requests for every
# operation; a 5xx, or an answer whose status, content type, headers or
# body the document does not describe, fails the run. `make test-api` runs
# it. schemathesis is installed on first use into a virtualenv under
# ${XDG_CACHE_HOME:-~/.cache}/cupcake-factory (never globally).
#
# Knobs: MAX_EXAMPLES (test cases per operation and phase, default 100),
# MAX_TIME (a hard stop for schemathesis, seconds, default 600), SEED, GO
# (e.g. "nice -n 10 go"), SCHEMATHESIS_VERSION.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
GO="${GO:-go}"
MAX_EXAMPLES="${MAX_EXAMPLES:-100}"
MAX_TIME="${MAX_TIME:-600}"
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/cupcake-factory/venv-schemathesis"

if [[ ! -x "$venv/bin/schemathesis" ]] || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "run.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

. "$here/../lib/runner.sh"
# Tokens on, as deployed: schemathesis calls as admin, and its ignored_auth
# check proves that each protected operation refuses a missing or bad token.
token="schemathesis-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
runner_start "$work/server.log" LOG_LEVEL=WARN AUTH_TOKENS="admin:$token"

# Every check, every operation. The live notification stream never ends by
# design: schemathesis.toml bounds each read of it (20 events or a second
# without one) and its events are checked against the document's itemSchema.
# (schemathesis's own --max-time would repeat fuzzing until it is spent: the
# run is bounded by --max-examples instead, and timeout is only a backstop.)
# It runs in the scratch directory: its cache (.schemathesis/) stays out of the tree.
status=0
cd "$work"
timeout "$MAX_TIME" "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --checks all --header "Authorization: Bearer $token" \
  --max-examples "$MAX_EXAMPLES" --request-timeout 10 \
  --seed "${SEED:-20261123}" --no-color --warnings off \
  --report junit --report-dir "$work/report" || status=$?

if [[ $status -ne 0 ]]; then
  echo "run.sh: schemathesis found problems; the server log's last lines:" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit $status
