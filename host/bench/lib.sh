# Shared by the scripts in host/bench (sourced, from the repository root).

# need CMD: whether CMD is on PATH.
need() { command -v "$1" >/dev/null 2>&1; }

# find_tinygo: prints the TinyGo to build guests with ($EDGEHOST_TINYGO,
# else the shared TinyGo beside the repository, else tinygo on PATH), or
# nothing when there is none.
find_tinygo() {
	if [ -n "${EDGEHOST_TINYGO:-}" ]; then
		echo "$EDGEHOST_TINYGO"
	elif [ -x ../shared/tools/tinygo/tinygo ]; then
		echo "$(cd ../shared/tools/tinygo && pwd)/tinygo"
	elif need tinygo; then
		echo tinygo
	fi
}

# build_js DIR NAME...: builds testdata/jsguests/NAME.js with Fastly's JS
# SDK into DIR/NAME-js.wasm for each NAME, installing the SDK from the
# folder's lockfile first when it is not installed.
build_js() {
	local dir=$1 name
	shift
	(
		cd testdata/jsguests
		[ -d node_modules ] || npm ci --silent >/dev/null
		for name in "$@"; do
			node_modules/.bin/js-compute-runtime "$name.js" "$dir/$name-js.wasm" >/dev/null
		done
	)
}
