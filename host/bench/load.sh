#!/usr/bin/env bash
# Load benchmark on loopback: requests per second for examples/hello and
# examples/proxy beside a plain Go net/http server, and proxying through a
# dynamic backend (examples/dynamic-backend) beside nginx as a keepalive
# reverse proxy to the same origin, with origin TCP connections accepted
# per 100,000 proxied requests. Everything runs in one go, on 127.0.0.1.
#
#   host/bench/load.sh [DURATION] [CONNECTIONS]     (defaults: 10s 64)
#
# Installs wrk and nginx from Debian's packages when missing (needs root).
# Every process it starts is stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
CONNS=${2:-64}
THREADS=2

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

ORIGIN=127.0.0.1:18080
"$work/benchorigin" -origin $ORIGIN -plain 127.0.0.1:18081 & pids+=($!)
cat > "$work/proxy.toml" <<TOML
[local_server.backends.origin]
url = "http://$ORIGIN"
TOML
cat > "$work/dyn.toml" <<TOML
[local_server.config_stores.settings]
format = "inline-toml"
[local_server.config_stores.settings.contents]
origin_target = "$ORIGIN"
TOML
"$work/edgehost" serve --log-level warn --addr 127.0.0.1:18090 -C /dev/null "$work/hello.wasm" >/dev/null 2>"$work/hello.log" & pids+=($!)
"$work/edgehost" serve --log-level warn --addr 127.0.0.1:18091 -C "$work/proxy.toml" "$work/proxy.wasm" >/dev/null 2>"$work/proxy.log" & pids+=($!)
"$work/edgehost" serve --log-level warn --addr 127.0.0.1:18092 -C "$work/dyn.toml" "$work/dynamic-backend.wasm" >/dev/null 2>"$work/dyn.log" & pids+=($!)
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	upstream origin { server $ORIGIN; keepalive 64; }
	server {
		listen 127.0.0.1:18093;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
NGINX
"$NGINX" -c "$work/nginx.conf" -g 'daemon on;'

for port in 18080 18081 18090 18091 18092 18093; do
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
done

conns() { curl -fsS "http://$ORIGIN/__conns"; }
rps() { # name url -> prints "name rps requests"
	local out
	out=$(wrk -t$THREADS -c"$CONNS" -d"$DURATION" "$2")
	local r n
	r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	n=$(echo "$out" | awk '/requests in/ {print $1}')
	local errs
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
	printf '%-34s %10s req/s  %9s requests  %s\n' "$1" "$r" "$n" "$errs"
	echo "$r $n" > "$work/last"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, all on loopback; $(nproc) cores shared by wrk, servers and origin"
echo
rps "plain Go net/http (hello body)" http://127.0.0.1:18081/hello
rps "edgehost hello" http://127.0.0.1:18090/hello
rps "edgehost proxy (static backend)" http://127.0.0.1:18091/hello
c0=$(conns); rps "edgehost dynamic-backend proxy" http://127.0.0.1:18092/hello; c1=$(conns)
read -r dyn_rps dyn_n < "$work/last"
rps "nginx keepalive reverse proxy" http://127.0.0.1:18093/hello; c2=$(conns)
read -r ngx_rps ngx_n < "$work/last"
echo
awk -v a="$dyn_rps" -v b="$ngx_rps" 'BEGIN { printf "dynamic-backend proxy / nginx throughput: %.3f\n", a / b }'
awk -v c="$((c1 - c0))" -v n="$dyn_n" 'BEGIN { printf "origin connections per 100,000 proxied requests: edgehost %.1f", c * 100000 / n }'
awk -v c="$((c2 - c1))" -v n="$ngx_n" 'BEGIN { printf ", nginx %.1f\n", c * 100000 / n }'
