#!/usr/bin/env bash
# Load benchmark on loopback: requests per second for examples/hello
# (one sandbox per request; the same handler pre-initialized,
# testdata/guests/hellopreinit; with sandbox reuse,
# testdata/guests/hellomany; and the same handler on the raw hostcalls
# with no SDK, testdata/guests/rawhello) and examples/proxy beside a plain Go net/http
# server, and proxying through a dynamic backend (examples/dynamic-backend)
# beside nginx as a keepalive reverse proxy to the same origin, with origin
# TCP connections accepted per 100,000 proxied requests, and cache hits
# through examples/proxy (the readthrough cache on the send path) beside
# nginx with proxy_cache on the same origin, with the cost of a miss
# (a new URL per request) against a pass (an answer the origin marks
# private). Beside nginx keepalive 64 runs the ceiling a Go host on
# net/http can reach on that path: a native Go reverse proxy
# (benchorigin -proxy: net/http's server and httputil.ReverseProxy, its
# Transport pooling up to 64 connections to the same origin), with its
# ratio to nginx and its origin connection count. Every edgehost row
# runs on each engine in ENGINES. Everything runs on 127.0.0.1, in one go.
# With TinyGo (../shared/tools/tinygo/tinygo beside the repository, or
# $EDGEHOST_TINYGO, or tinygo on PATH) it adds hello and hellomany built
# with TinyGo (and rawhello), and the proxy rows (dynamic-backend's pass and cache hit,
# proxy's cache hit) with both guests built with TinyGo, each checked to
# answer the origin's body before it is measured; with node and npm, Fastly's JS SDK hello
# (testdata/jsguests/hello.js, a sandbox per request) and the same with
# the SDK's sandbox reuse (hellomany.js, setReusableSandboxOptions).
# It ends with every ratio to its anchor (plain net/http, nginx)
# and the issue-14 goal each row is held to (met or not).
#
#   host/bench/load.sh [DURATION] [CONNECTIONS]     (defaults: 10s 64)
#   ENGINES="wazero" host/bench/load.sh 5s          (default: "wazero wasmtime")
#   NOJS=1 / NOTINYGO=1 host/bench/load.sh           skip those rows
#
# Installs wrk and nginx from Debian's packages when missing (needs root).
# Every process it starts is stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
. host/bench/lib.sh
DURATION=${1:-10s}
CONNS=${2:-64}
THREADS=2
ENGINES=${ENGINES:-wazero wasmtime}

if ! need wrk || ! need nginx && [ ! -x /usr/sbin/nginx ]; then
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers write their proxy_cache under it
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/edgehost" ./cmd/edgehost
go build -o "$work/benchorigin" ./host/bench/benchorigin
# examples/ and testdata/guests are modules of their own: build in them.
for g in hello proxy dynamic-backend; do
	(cd examples && GOOS=wasip1 GOARCH=wasm go build -o "$work/$g.wasm" "./$g")
done
# rawhello is the hello's handler on the raw hostcalls, no SDK: what the
# hello costs without guestsdk (README.md, Benchmarks).
for g in hellomany rawhello; do
	(cd testdata/guests && GOOS=wasip1 GOARCH=wasm go build -o "$work/$g.wasm" "./$g")
done
# The hello handler as a pre-initialized guest (README.md, "Pre-initialized
# Go guests"): every fresh sandbox starts from the deploy-time snapshot.
(cd testdata/guests && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$work/hellopreinit.wasm" ./hellopreinit)
guests="hello hellopreinit hellomany rawhello proxy dynamic-backend"
TINYGO=$(find_tinygo)
if [ -z "${NOTINYGO:-}" ] && [ -n "$TINYGO" ]; then
	# edgehost build passes the flags edgehost chooses (README.md, TinyGo).
	EDGEHOST_TINYGO=$TINYGO "$work/edgehost" build --toolchain tinygo -o "$work/hello-tinygo.wasm" examples/hello >/dev/null
	for g in hellomany rawhello; do
		EDGEHOST_TINYGO=$TINYGO "$work/edgehost" build --toolchain tinygo -o "$work/$g-tinygo.wasm" "testdata/guests/$g" >/dev/null
	done
	for g in proxy dynamic-backend; do
		EDGEHOST_TINYGO=$TINYGO "$work/edgehost" build --toolchain tinygo -o "$work/$g-tinygo.wasm" "examples/$g" >/dev/null
	done
	guests="$guests hello-tinygo hellomany-tinygo rawhello-tinygo proxy-tinygo dynamic-backend-tinygo"
fi
if [ -z "${NOJS:-}" ] && need node && need npm; then
	build_js "$work" hello hellomany
	guests="$guests hello-js hellomany-js"
fi

ORIGIN=127.0.0.1:18080
"$work/benchorigin" -origin $ORIGIN -plain 127.0.0.1:18081 & pids+=($!)
"$work/benchorigin" -proxy 127.0.0.1:18087 -proxy-to $ORIGIN -proxy-conns 64 & pids+=($!)
cat > "$work/proxy.toml" <<TOML
[local_server.backends.origin]
url = "http://$ORIGIN"
TOML
cat > "$work/dyn.toml" <<TOML
[edgehost]
allow_private_backends = true
[local_server.config_stores.settings]
format = "inline-toml"
[local_server.config_stores.settings.contents]
origin_target = "$ORIGIN"
TOML
# The JS guests compile untiered, so their rows never measure the
# interpreter (README.md, Tiered compilation): serve answers once the
# optimized code is in.
printf '[edgehost]\ntiered_compile = false\n' > "$work/untiered.toml"
port=18090
declare -A url
for e in $ENGINES; do
	for g in $guests; do
		case $g in proxy | proxy-tinygo) conf="$work/proxy.toml" ;; dynamic-backend | dynamic-backend-tinygo) conf="$work/dyn.toml" ;; *-js) conf="$work/untiered.toml" ;; *) conf=/dev/null ;; esac
		"$work/edgehost" serve --engine "$e" --log-level warn --admin-addr "" --addr 127.0.0.1:$port -C "$conf" "$work/$g.wasm" >/dev/null 2>"$work/$e-$g.log" & pids+=($!)
		url[$e-$g]=http://127.0.0.1:$port
		port=$((port + 1))
	done
done
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	upstream origin { server $ORIGIN; keepalive 64; }
	server {
		listen 127.0.0.1:18089;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
	proxy_cache_path $work/nginx-cache keys_zone=bench:16m max_size=256m;
	server {
		listen 127.0.0.1:18088;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_cache bench;
			proxy_cache_lock on;
			add_header X-Cache \$upstream_cache_status;
		}
	}
}
NGINX
"$NGINX" -c "$work/nginx.conf" -g 'daemon on;'

for u in http://127.0.0.1:18080 http://127.0.0.1:18081 http://127.0.0.1:18087 http://127.0.0.1:18089 "${url[@]}"; do
	# The JS guest's 11 MB compile cold (no --data-dir here) takes a while.
	for _ in $(seq 3000); do curl -fsS -o /dev/null "$u/" 2>/dev/null && break; sleep 0.1; done
done

conns() { curl -fsS "http://$ORIGIN/__conns"; }
# answers URL: stops the run unless URL answers the origin's own body.
answers() {
	local want got
	want=$(curl -fsS "http://$ORIGIN/hello")
	got=$(curl -fsS "$1") || { echo "load.sh: $1 failed" >&2; exit 1; }
	[ "$got" = "$want" ] || { echo "load.sh: $1 answered '$got', not the origin's '$want'" >&2; exit 1; }
}
xcache() { curl -fsS -o /dev/null -D - "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" {print $2}'; }
# A new URL per request, for cache misses (per wrk thread: its own prefix).
cat > "$work/miss.lua" <<'LUA'
local n, id = 0, 0
function setup(thread) id = id + 1; thread:set("id", id) end
function request() n = n + 1; return wrk.format(nil, "/miss/" .. id .. "-" .. n) end
LUA
rps() { # name url -> prints "name rps requests"; leaves "rps requests" in $work/last
	local out r n errs
	# shellcheck disable=SC2086 # $2 may carry wrk options (-s script) before the URL
	out=$(wrk -t$THREADS -c"$CONNS" -d"$DURATION" $2)
	r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	n=$(echo "$out" | awk '/requests in/ {print $1}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
	printf '%-58s %10s req/s  %9s requests  %s\n' "$1" "$r" "$n" "$errs"
	echo "$r $n" > "$work/last"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, all on loopback; $(nproc) cores shared by wrk, servers and origin"
echo
has() { [[ " $guests " == *" $1 "* ]]; }
rps "plain Go net/http (hello body)" http://127.0.0.1:18081/hello
read -r plain_rps _ < "$work/last"
# ratio lines: name rps anchor-name anchor-rps goal(min ratio or -)
ratio() { echo "$1|$2|$3|$4|$5" >> "$work/ratios"; }
row() { # label engine guest anchor goal
	rps "edgehost $2 $1" "${url[$2-$3]}/hello"
	read -r r _ < "$work/last"
	ratio "$2 $1" "$r" "plain net/http" "$plain_rps" "$4"
}
# proxyrows engine flavour proxy-guest dynamic-backend-guest: the pass,
# cache hit and cache miss rows of examples/proxy and the pass and
# cache hit rows of examples/dynamic-backend, each guest checked first.
proxyrows() {
	local e=$1 f=$2 p=$3 d=$4 r n c0 c1 pass_r miss_r dn="dynamic-backend proxy (ServeMany)"
	if [ -n "$f" ]; then dn="dynamic-backend proxy (ServeMany, ${f# (}"; fi
	answers "${url[$e-$p]}/hello"
	rps "edgehost $e proxy$f (static backend, a pass)" "${url[$e-$p]}/hello"
	read -r pass_r _ < "$work/last"
	curl -fsS -o /dev/null "${url[$e-$p]}/cached/x"
	echo "  (X-Cache of /cached/x now: $(xcache "${url[$e-$p]}/cached/x"))"
	answers "${url[$e-$p]}/cached/x"
	rps "edgehost $e proxy$f, cache hit" "${url[$e-$p]}/cached/x"
	read -r r _ < "$work/last"
	echo "$e|proxy$f, cache hit (fresh sandbox)|$r|-" >> "$work/hit"
	rps "edgehost $e proxy$f, cache miss (new URL each)" "-s $work/miss.lua ${url[$e-$p]}"
	read -r miss_r _ < "$work/last"
	ratio "$e proxy$f cache miss, against a pass" "$miss_r" "$e pass" "$pass_r" -
	answers "${url[$e-$d]}/hello"
	c0=$(conns)
	rps "edgehost $e $dn" "${url[$e-$d]}/hello"
	c1=$(conns)
	read -r r n < "$work/last"
	echo "$e|$dn|$r|$n|$((c1 - c0 - 1))" >> "$work/dyn"
	curl -fsS -o /dev/null "${url[$e-$d]}/cached/x"
	answers "${url[$e-$d]}/cached/x"
	rps "edgehost $e $dn, cache hit" "${url[$e-$d]}/cached/x"
	read -r r _ < "$work/last"
	echo "$e|$dn, cache hit|$r|1.0" >> "$work/hit"
}
for e in $ENGINES; do
	row "hello (Go), fresh sandbox" "$e" hello -
	row "hello (Go, pre-initialized), fresh sandbox" "$e" hellopreinit -
	row "hello (Go), reused sandbox (ServeMany)" "$e" hellomany "0.8 (goal 2)"
	row "hello (Go, raw hostcalls, no SDK), fresh sandbox" "$e" rawhello -
	has hello-tinygo && row "hello (TinyGo), fresh sandbox" "$e" hello-tinygo "0.5 (goal 2)"
	has rawhello-tinygo && row "hello (TinyGo, raw hostcalls, no SDK), fresh sandbox" "$e" rawhello-tinygo -
	has hellomany-tinygo && row "hello (TinyGo), reused sandbox (ServeMany)" "$e" hellomany-tinygo -
	has hello-js && row "hello (JS SDK), fresh sandbox" "$e" hello-js -
	has hellomany-js && row "hello (JS SDK), reused sandbox (setReusableSandboxOptions)" "$e" hellomany-js -
	proxyrows "$e" "" proxy dynamic-backend
	has proxy-tinygo && proxyrows "$e" " (TinyGo)" proxy-tinygo dynamic-backend-tinygo
done
curl -fsS -o /dev/null http://127.0.0.1:18088/cached/x
echo "  (nginx X-Cache of /cached/x now: $(curl -fsS -o /dev/null -D - http://127.0.0.1:18088/cached/x | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" {print $2}'))"
rps "nginx proxy_cache hit" http://127.0.0.1:18088/cached/x
read -r ngx_hit _ < "$work/last"
while IFS='|' read -r e name r goal; do
	ratio "$e $name" "$r" "nginx proxy_cache" "$ngx_hit" "$goal"
done < "$work/hit"
c0=$(conns)
rps "nginx keepalive reverse proxy" http://127.0.0.1:18089/hello
c1=$(conns)
read -r ngx_rps ngx_n < "$work/last"
ngx_c=$((c1 - c0 - 1))
answers http://127.0.0.1:18087/hello
c0=$(conns)
rps "Go net/http reverse proxy (ceiling)" http://127.0.0.1:18087/hello
c1=$(conns)
read -r go_rps _ < "$work/last"
ratio "Go net/http reverse proxy (ceiling), $((c1 - c0 - 1)) origin connections" "$go_rps" "nginx keepalive 64" "$ngx_rps" -
while IFS='|' read -r e dn r n c; do
	ratio "$e $dn, $c origin connections" "$r" "nginx keepalive 64" "$ngx_rps" "1.0 (goal 3; and at most $CONNS origin connections)"
	ratio "$e $dn" "$r" "Go reverse proxy" "$go_rps" -
done < "$work/dyn"
echo
echo "ratios, this run (goal: issue 14's minimum ratio to the anchor)"
while IFS='|' read -r name r aname ar goal; do
	awk -v name="$name" -v r="$r" -v an="$aname" -v ar="$ar" -v goal="$goal" -v conns="$CONNS" 'BEGIN {
		x = r / ar; verdict = ""
		if (goal != "-") {
			split(goal, g, " "); ok = x >= g[1]
			if (match(name, /, [0-9]+ origin connections/)) {
				split(substr(name, RSTART + 2), c, " "); ok = ok && c[1] <= conns
			}
			verdict = (ok ? "meets " : "misses ") goal
		}
		printf "  %-76s %7.3f of %-18s %s\n", name, x, an, verdict }'
done < "$work/ratios"
awk -v c="$ngx_c" -v n="$ngx_n" 'BEGIN { printf "nginx origin connections during its run: %d (%.1f per 100,000 requests)\n", c, c * 100000 / n }'
echo "goal 1 (time per fresh sandbox) and goals 4-5 are host/bench/gobench.sh and host/bench/deploy.sh: see README.md, Benchmarks"
