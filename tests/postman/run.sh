#!/usr/bin/env bash
# newman (Postman's command-line runner, from npm) runs the committed
# collections as a user would run them from Postman against `make run`: the
# runner, built here, started on a free 127.0.0.1 port with a fresh data
# directory, in the default (auto) kitchen for cupcake-factory.postman_collection.json
# and with KITCHEN_MODE=manual for cupcake-factory-manual.postman_collection.json.
# Every request must answer as its Postman tests expect. Installs newman
# (npm ci) when it is missing. `make test-postman` runs it.
#
# GO overrides the go command (e.g. GO="nice -n 10 go").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
GO="${GO:-go}"
collections="$root/infra/httpapi"

if [[ ! -x "$here/node_modules/.bin/newman" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi

. "$here/../lib/runner.sh"

# run_collection FILE VAR=value...: a fresh runner with the environment
# given, and newman on FILE against it.
run_collection() {
  local file="$1" name status=0
  shift
  name="$(basename "$file" .postman_collection.json)"
  runner_start "$work/server-$name.log" LOG_LEVEL=WARN "$@" || return 1
  "$here/node_modules/.bin/newman" run "$file" --env-var "baseUrl=$base" \
    --bail failure --color off --reporters cli || status=$?
  if [[ $status -ne 0 ]]; then
    echo "run.sh: newman failed on $name; the server log's last lines:" >&2
    tail -n 40 "$work/server-$name.log" >&2
  fi
  runner_stop
  return $status
}

status=0
run_collection "$collections/cupcake-factory.postman_collection.json" || status=1
run_collection "$collections/cupcake-factory-manual.postman_collection.json" KITCHEN_MODE=manual || status=1
exit $status
