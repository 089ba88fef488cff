#!/usr/bin/env bash
# Go benchmarks of every request path, engine and guest flavour (issue 14,
# "The benchmark"), one run each, no network but loopback origins:
#
#   internal/server  BenchmarkSandbox (fresh Go hello, the same handler
#                    pre-initialized, reused Go hello, reused vcpu guest,
#                    fresh TinyGo hello), BenchmarkSandboxEscapedURI (a
#                    request URI with and without percent escapes),
#                    BenchmarkReuseParallel,
#                    BenchmarkProxy / ProxyCache / ProxyCacheHit (Go and
#                    TinyGo builds of examples/dynamic-backend), on each
#                    engine in ENGINES (EDGEHOST_TEST_ENGINE);
#                    BenchmarkSandboxMemory and BenchmarkSandboxMemoryParked
#                    (RSS per sandbox at 1,000 at once) with -benchtime 1x;
#   internal/jssdk   BenchmarkJSSandbox, BenchmarkJSSandboxReused and
#                    BenchmarkJSProxy (Fastly's JS SDK hello and a fetch)
#                    and BenchmarkJSCompile (the 11.5 MB module cold and
#                    from the compiled-code cache), every engine;
#   internal/admin   BenchmarkActivateJS (re-activation of a JS version,
#                    kept and not), on each engine in ENGINES.
#
#   host/bench/gobench.sh                  (N=2000x ENGINES="wazero wasmtime")
#   N=500x ENGINES=wazero NOJS=1 host/bench/gobench.sh
#
# Each line is go test's own: cpu-ns/op is the process's CPU time per
# request (README.md, Benchmarks). The TinyGo rows skip without TinyGo,
# the JS ones build their guests with node and npm (skipped with NOJS=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
. host/bench/lib.sh
N=${N:-2000x}
ENGINES=${ENGINES:-wazero wasmtime}
TINYGO=$(find_tinygo)
if [ -n "$TINYGO" ]; then
	export EDGEHOST_TINYGO=$TINYGO
fi

bench() { # bench ENGINE ARGS...: go test's benchmark lines, the engine in front
	local e=$1
	shift
	EDGEHOST_TEST_ENGINE=$e go test -run '^$' "$@" 2>&1 | grep -E '^Benchmark|^--- (FAIL|SKIP)|^FAIL|^panic' | sed "s/^/$e  /"
}
for e in $ENGINES; do
	bench "$e" -bench 'BenchmarkSandbox$|BenchmarkSandboxEscapedURI|BenchmarkReuseParallel|BenchmarkProxy' -benchmem -benchtime "$N" ./internal/server/
	bench "$e" -bench 'BenchmarkSandboxMemory' -benchtime 1x ./internal/server/
	if [ -z "${NOJS:-}" ]; then
		bench "$e" -bench 'BenchmarkActivateJS' -benchtime 20x ./internal/admin/
	fi
done
if [ -z "${NOJS:-}" ]; then
	# Every engine is a sub-benchmark of its own here.
	bench all -bench 'BenchmarkJSSandbox|BenchmarkJSProxy' -benchmem -benchtime 200x ./internal/jssdk/
	bench all -bench 'BenchmarkJSCompile' -benchtime 1x ./internal/jssdk/
fi
