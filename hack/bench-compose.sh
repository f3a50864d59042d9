#!/usr/bin/env bash
# bench-compose.sh measures the compose stack's API through nginx (HTTPS,
# HTTP/2 and HTTP/1.1) against the app's own port, in the same run, and
# rewrites the compose section of docs/benchmarks.md. It
#
#   1. builds the images offline (hack/images.sh),
#   2. starts the stack as compose project "kvstore-bench" with
#      deploy/compose/bench.override.yaml, which publishes the app's port:
#      nginx on https://localhost:18444 (and http://127.0.0.1:18081), the
#      app on http://127.0.0.1:18090, all on loopback only,
#   3. waits until app and nginx are healthy, copies the generated CA
#      certificate and admin token into a temporary directory,
#   4. builds bin/kvbench and runs `kvbench compose` against both paths,
#   5. always tears the stack down again, volumes included (down -v).
#
# Extra arguments go to kvbench compose, e.g.
#
#	hack/bench-compose.sh -duration 2s -clients 64
#
# With the defaults the measurement takes about 2 minutes, plus building
# the images and starting the stack.
#
# It cannot run while the compose end-to-end test (deploy/compose, project
# "kvstore") or any other copy of the stack runs on the same Docker engine:
# compose.yaml fixes the network name (kvstore_net) and the container names
# (kvstore-app, kvstore-nginx), so a second stack would clash whatever its
# project name. It refuses to start when they exist, rather than tearing
# down someone else's stack. Host ports can be changed with
# KVSTORE_BENCH_HTTP_PORT, KVSTORE_BENCH_HTTPS_PORT and KVSTORE_APP_BENCH_PORT.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROJECT=kvstore-bench
HTTP_PORT="${KVSTORE_BENCH_HTTP_PORT:-18081}"
HTTPS_PORT="${KVSTORE_BENCH_HTTPS_PORT:-18444}"
APP_PORT="${KVSTORE_APP_BENCH_PORT:-18090}"
HEALTH_TIMEOUT=120 # seconds

export KVSTORE_IMAGE="${KVSTORE_IMAGE:-kvstore/kvstore:local}"
export KVSTORE_NGINX_IMAGE="${KVSTORE_NGINX_IMAGE:-kvstore-local/nginx:bookworm}"
export KVSTORE_BIND_ADDRESS=127.0.0.1
export KVSTORE_HTTP_PORT="$HTTP_PORT"
export KVSTORE_HTTPS_PORT="$HTTPS_PORT"
export KVSTORE_APP_BENCH_PORT="$APP_PORT"
export KVSTORE_ADMIN_TOKEN= # use the token the app generates into its volume

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

if docker compose version >/dev/null 2>&1; then
	COMPOSE_CMD=(docker compose)
else
	COMPOSE_CMD=(docker-compose)
fi
COMPOSE=("${COMPOSE_CMD[@]}" -p "$PROJECT" -f deploy/compose/compose.yaml -f deploy/compose/bench.override.yaml)

compose() { "${COMPOSE[@]}" "$@"; }

# refuse_foreign_stack exits if a container or the network the stack needs
# belongs to another compose project (the e2e test, a deployment).
refuse_foreign_stack() {
	local kind name labels owner
	for kind in container:kvstore-app container:kvstore-nginx network:kvstore_net; do
		name="${kind#*:}" kind="${kind%%:*}"
		labels=.Labels
		if [[ $kind == container ]]; then labels=.Config.Labels; fi
		docker "$kind" inspect "$name" >/dev/null 2>&1 || continue
		owner="$(docker "$kind" inspect --format "{{ index $labels \"com.docker.compose.project\" }}" "$name")"
		if [[ -z $owner ]]; then
			die "$kind $name exists outside any compose project; remove it first, this script will not touch it"
		fi
		if [[ $owner != "$PROJECT" ]]; then
			die "$kind $name belongs to compose project \"$owner\" (the e2e test or a deployment?); stop it first, this script will not touch it"
		fi
	done
}

# wait_healthy waits until every container named is healthy, polling until
# HEALTH_TIMEOUT seconds have passed.
wait_healthy() {
	local deadline=$((SECONDS + HEALTH_TIMEOUT)) c status
	for c in "$@"; do
		while :; do
			status="$(docker inspect --format '{{.State.Health.Status}}' "$c" 2>/dev/null || true)"
			[[ $status == healthy ]] && break
			if ((SECONDS >= deadline)); then
				docker logs --tail 50 "$c" >&2 || true
				die "$c is \"$status\" after ${HEALTH_TIMEOUT}s"
			fi
			sleep 0.5 # poll interval
		done
		log "$c is healthy"
	done
}

# container_pid prints the host pid of container $1's main process if it is
# visible here with command name $2 (it is not with a remote or rootless
# engine); nothing otherwise.
container_pid() {
	local pid
	pid="$(docker inspect --format '{{.State.Pid}}' "$1" 2>/dev/null || true)"
	if [[ -n $pid && $pid != 0 && "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$2" ]]; then
		printf '%s\n' "$pid"
	fi
}

WORK=""
STARTED=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((STARTED)); then
		if ((rc != 0)); then
			log "failed; compose logs:"
			compose logs --no-color --tail 40 >&2 || true
		fi
		log "tearing the stack down (down -v)"
		compose down -v --remove-orphans >&2 || log "warning: compose down failed"
	fi
	if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

main() {
	log "building images (hack/images.sh)"
	hack/images.sh

	refuse_foreign_stack
	STARTED=1
	# What an earlier, interrupted run of this script left behind.
	compose down -v --remove-orphans >&2
	log "starting the stack: nginx on https://localhost:$HTTPS_PORT, the app on http://127.0.0.1:$APP_PORT"
	compose up -d >&2
	wait_healthy kvstore-app kvstore-nginx

	WORK="$(mktemp -d "${TMPDIR:-/tmp}/kvstore-bench.XXXXXX")"
	docker cp kvstore-nginx:/etc/nginx/certs/ca.crt "$WORK/ca.crt"
	docker cp kvstore-app:/data/admin.token "$WORK/admin.token"
	chmod 600 "$WORK/admin.token"

	log "building bin/kvbench"
	(cd bench && go build -o ../bin/kvbench ./cmd/kvbench)

	# Where the CPU goes, when the engine's processes are visible here: the
	# app, nginx (master and workers), the docker-proxy processes that
	# forward the published ports, and the engine (dockerd, containerd and
	# the containers' shims, which carry the containers' logs).
	local measure=() app nginx proxies engine
	app="$(container_pid kvstore-app kvstore)"
	nginx="$(container_pid kvstore-nginx nginx)"
	if [[ -n $app && -n $nginx ]]; then
		measure+=(-app-pid "$app" -cpu "app=$app" -cpu "nginx=$nginx")
		proxies="$(pgrep -d, -f -- "^/[^ ]*docker-proxy .*-host-port ($HTTPS_PORT|$APP_PORT) " || true)"
		if [[ -n $proxies ]]; then measure+=(-cpu "docker-proxy=$proxies"); fi
		engine="$( (pgrep -x dockerd || true; ps -o ppid= -p "$app,$nginx" || true) | tr -d ' ' | { grep -v '^1\?$' || true; } | paste -sd, -)"
		if [[ -n $engine ]]; then measure+=(-cpu "docker engine=$engine"); fi
	else
		log "the containers' processes are not visible here; CPU and connections are not broken down"
	fi

	local stack
	stack="Docker $(docker version --format '{{.Server.Version}}'), ${COMPOSE_CMD[*]} $("${COMPOSE_CMD[@]}" version --short 2>/dev/null || echo '(version unknown)')"
	stack+=", $(docker exec kvstore-nginx nginx -v 2>&1 | sed 's/^nginx version: //') ($KVSTORE_NGINX_IMAGE), $KVSTORE_IMAGE"
	stack+=" $(docker image inspect --format '{{.Id}}' "$KVSTORE_IMAGE" | cut -c8-19)"

	log "running kvbench compose"
	KVBENCH_WRAPPER="hack/bench-compose.sh" bin/kvbench compose \
		-https-url "https://localhost:$HTTPS_PORT" -ca "$WORK/ca.crt" \
		-direct-url "http://127.0.0.1:$APP_PORT" -token-file "$WORK/admin.token" \
		-stack "$stack" "${measure[@]}" "$@"
}

main "$@"
