# Shared by tests/api/run.sh and tests/browser/run.sh: build the runner into
# a scratch directory and start it on a free 127.0.0.1 port. Source it with
# root (the repository) and GO set; it sets work (removed on exit, with the
# server stopped) and builds $work/cupcake-factory.
#
#   runner_start LOG VAR=value...   start the runner with a fresh data directory
#                                   and the given environment, logging to LOG;
#                                   sets pid and base, and waits until ready
#                                   (returns 1, the log shown, if it is not)
#   runner_stop                     stop it

work="$(mktemp -d)"
pid=""
runner_stop() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'runner_stop; rm -rf "$work"' EXIT

(cd "$root" && $GO build -o "$work/cupcake-factory" ./cmd/cupcake-factory)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

runner_start() {
  local log="$1" port
  shift
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  rm -rf "$work/data" && mkdir -p "$work/data"
  env LISTEN_ADDRESS="127.0.0.1:$port" DATA_DIR="$work/data" "$@" "$work/cupcake-factory" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if curl -fsS "$base/health/readiness" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: the server did not become ready on $base; its log:" >&2
  cat "$log" >&2
  return 1
}
