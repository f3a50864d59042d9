# put-get.sh is the `helm test` check of a KVStore through its client
# Service, written for bash alone (HTTP over bash's /dev/tcp), so that any
# image with bash will do: /healthz answers, then a key is written, read
# back, deleted and gone. Environment: KVSTORE_HOST, KVSTORE_PORT and
# KVSTORE_TOKEN (the admin token, from the auth Secret).
set -euo pipefail
export LC_ALL=C # so that ${#data} counts bytes

: "${KVSTORE_HOST:?}" "${KVSTORE_PORT:?}" "${KVSTORE_TOKEN:?}"
KVSTORE_TOKEN="${KVSTORE_TOKEN%$'\n'}" # a Secret made with echo ends in a newline

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# http METHOD PATH [BODY] sends one HTTP/1.1 request and sets status,
# headers and body from the answer.
http() {
	local method="$1" path="$2" data="${3-}" resp="" extra=""
	if [[ "$method" == PUT ]]; then
		extra="Content-Type: text/plain"$'\r\n'"Content-Length: ${#data}"$'\r\n'
	fi
	exec 3<>"/dev/tcp/$KVSTORE_HOST/$KVSTORE_PORT" || fail "cannot connect to $KVSTORE_HOST:$KVSTORE_PORT"
	printf '%s %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n%sConnection: close\r\n\r\n%s' \
		"$method" "$path" "$KVSTORE_HOST" "$KVSTORE_PORT" "$KVSTORE_TOKEN" "$extra" "$data" >&3
	IFS= read -r -d '' -t 30 resp <&3 || true # ends at EOF: the server closes
	exec 3<&-
	[[ "$resp" == HTTP/1.1\ * ]] || fail "$method $path: no HTTP answer (got ${#resp} bytes)"
	status="${resp#HTTP/1.1 }"
	status="${status%% *}"
	headers="${resp%%$'\r\n\r\n'*}"
	body="${resp#*$'\r\n\r\n'}"
	echo "$method $path: $status"
}

# expect STATUS fails unless the last answer had that status.
expect() {
	[[ "$status" == "$1" ]] || fail "want $1, got $status: $body"
}

key="helm-test/${HOSTNAME:-pod}-$$-$RANDOM"
value="written by helm test at $(printf '%(%Y-%m-%dT%H:%M:%SZ)T' -1)"

http GET /healthz
expect 200
http PUT "/api/v1/kv/$key" "$value"
expect 201
http GET "/api/v1/kv/$key"
expect 200
# A short value comes with a Content-Length; if it ever came chunked the
# value would be inside the chunk framing.
shopt -s nocasematch
if [[ "$headers" == *$'\r\nTransfer-Encoding: chunked'* ]]; then
	[[ "$body" == *"$value"* ]] || fail "read back something else than was written: $body"
else
	[[ "$body" == "$value" ]] || fail "read back \"$body\", wrote \"$value\""
fi
shopt -u nocasematch
http DELETE "/api/v1/kv/$key"
expect 204
http GET "/api/v1/kv/$key"
expect 404
echo "OK: /healthz, put, get and delete of $key"
