#!/usr/bin/env bash
# Cold start and restart of Fastly's JS SDK hello (testdata/jsguests/hello.js,
# an 11 MB module) on each engine (issue 14 goal 4): the time from
# `edgehost serve` starting to its first 200, and the server's CPU time
# (utime + stime from /proc/PID/stat) by then. Cold is an empty
# compiled-code cache (--cache-dir): the module is compiled (on wazero,
# tiered by default: the interpreter serves while the optimized code
# compiles in the background). Before the restarts the first server keeps
# running until the optimized code is in the cache (wazero logs "switched
# to optimized code"); each restart is a new process on that cache.
#
#   host/bench/deploy.sh [RESTARTS]      (default 3)
#   ENGINES=wazero host/bench/deploy.sh  (default: "wazero wasmtime")
#
# Needs node and npm (the SDK is installed from testdata/jsguests'
# lockfile). Everything runs on 127.0.0.1; every process it starts is
# stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
. host/bench/lib.sh
RESTARTS=${1:-3}
ENGINES=${ENGINES:-wazero wasmtime}
PORT=19481

work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/edgehost" ./cmd/edgehost
build_js "$work" hello

# start ENGINE CACHE LOG: serve the JS hello; pid is the server's.
start() {
	"$work/edgehost" serve "$work/hello-js.wasm" --engine "$1" --cache-dir "$2" \
		--addr "127.0.0.1:$PORT" --admin-addr "" --log-level info >"$3" 2>&1 &
	pid=$!
}
# first200 T0 LABEL: wait for the first 200 (at most 120 s), print the time
# since T0 (date +%s%N) and the server's CPU.
first200() {
	local t0=$1 label=$2 i=0 t1 cpu
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null)" = 200 ]; do
		i=$((i + 1))
		if [ "$i" -gt 12000 ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "$label: no 200 from edgehost" >&2
			exit 1
		fi
		sleep 0.01
	done
	t1=$(date +%s%N)
	cpu=$(awk '{print ($14 + $15) * 10}' "/proc/$pid/stat") # clock ticks of 10 ms
	printf '%-40s %6d ms to the first 200, %6d ms of CPU\n' "$label" $(((t1 - t0) / 1000000)) "$cpu"
}
stop() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
}

echo "Fastly JS SDK hello, $(wc -c <"$work/hello-js.wasm") bytes; one sitting, load average $(cut -d' ' -f1 /proc/loadavg)"
for e in $ENGINES; do
	cache="$work/cache-$e"
	t0=$(date +%s%N)
	start "$e" "$cache" "$work/$e-cold.log"
	first200 "$t0" "$e, cold (empty cache)"
	if [ "$e" = wazero ]; then
		# Restarts must find the optimized code in the cache.
		for _ in $(seq 1200); do
			grep -q "switched to optimized code" "$work/$e-cold.log" && break
			sleep 0.1
		done
	fi
	stop
	for r in $(seq "$RESTARTS"); do
		t0=$(date +%s%N)
		start "$e" "$cache" "$work/$e-restart.log"
		first200 "$t0" "$e, restart $r (warm cache)"
		stop
	done
done
