#!/usr/bin/env bash
# Load benchmark on loopback: requests per second for examples/hello
# (one sandbox per request, and the same handler with sandbox reuse,
# testdata/guests/hellomany) and examples/proxy beside a plain Go net/http
# server, and proxying through a dynamic backend (examples/dynamic-backend)
# beside nginx as a keepalive reverse proxy to the same origin, with origin
# TCP connections accepted per 100,000 proxied requests. Every edgehost row
# runs on each engine in ENGINES. Everything runs on 127.0.0.1, in one go.
#
#   host/bench/load.sh [DURATION] [CONNECTIONS]     (defaults: 10s 64)
#   ENGINES="wazero" host/bench/load.sh 5s          (default: "wazero wasmtime")
#
# Installs wrk and nginx from Debian's packages when missing (needs root).
# Every process it starts is stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
CONNS=${2:-64}
THREADS=2
ENGINES=${ENGINES:-wazero wasmtime}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx && [ ! -x /usr/sbin/nginx ]; then
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
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
for g in hello proxy dynamic-backend; do
	GOOS=wasip1 GOARCH=wasm go build -o "$work/$g.wasm" "./examples/$g"
done
GOOS=wasip1 GOARCH=wasm go build -o "$work/hellomany.wasm" ./testdata/guests/hellomany

ORIGIN=127.0.0.1:18080
"$work/benchorigin" -origin $ORIGIN -plain 127.0.0.1:18081 & pids+=($!)
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
port=18090
declare -A url
for e in $ENGINES; do
	for g in hello hellomany proxy dynamic-backend; do
		case $g in proxy) conf="$work/proxy.toml" ;; dynamic-backend) conf="$work/dyn.toml" ;; *) conf=/dev/null ;; esac
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
}
NGINX
"$NGINX" -c "$work/nginx.conf" -g 'daemon on;'

for u in http://127.0.0.1:18080 http://127.0.0.1:18081 http://127.0.0.1:18089 "${url[@]}"; do
	for _ in $(seq 200); do curl -fsS -o /dev/null "$u/" 2>/dev/null && break; sleep 0.1; done
done

conns() { curl -fsS "http://$ORIGIN/__conns"; }
rps() { # name url -> prints "name rps requests"; leaves "rps requests" in $work/last
	local out r n errs
	out=$(wrk -t$THREADS -c"$CONNS" -d"$DURATION" "$2")
	r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	n=$(echo "$out" | awk '/requests in/ {print $1}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
	printf '%-44s %10s req/s  %9s requests  %s\n' "$1" "$r" "$n" "$errs"
	echo "$r $n" > "$work/last"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, all on loopback; $(nproc) cores shared by wrk, servers and origin"
echo
rps "plain Go net/http (hello body)" http://127.0.0.1:18081/hello
for e in $ENGINES; do
	rps "edgehost $e hello" "${url[$e-hello]}/hello"
	rps "edgehost $e hello, sandbox reuse (ServeMany)" "${url[$e-hellomany]}/hello"
	rps "edgehost $e proxy (static backend)" "${url[$e-proxy]}/hello"
	c0=$(conns)
	rps "edgehost $e dynamic-backend proxy (ServeMany)" "${url[$e-dynamic-backend]}/hello"
	c1=$(conns)
	read -r r n < "$work/last"
	echo "$e $r $n $((c1 - c0))" >> "$work/dyn"
done
c0=$(conns)
rps "nginx keepalive reverse proxy" http://127.0.0.1:18089/hello
c1=$(conns)
read -r ngx_rps ngx_n < "$work/last"
echo
while read -r e r n c; do
	awk -v e="$e" -v a="$r" -v b="$ngx_rps" -v c="$c" -v n="$n" 'BEGIN {
		printf "%s dynamic-backend proxy / nginx throughput: %.3f; origin connections per 100,000 proxied requests: %.1f\n", e, a / b, c * 100000 / n }'
done < "$work/dyn"
awk -v c="$((c1 - c0))" -v n="$ngx_n" 'BEGIN { printf "nginx origin connections per 100,000 proxied requests: %.1f\n", c * 100000 / n }'
