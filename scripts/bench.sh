#!/usr/bin/env bash
# Measures the pipeline (`make bench`). For each JetStream sync setting it starts a fresh stack
# (embedded NATS with a file store, redis-server with AOF everysec, ingest, kpi — all on loopback)
# with `loadgen stack`, runs every measurement in one `loadgen all` run, and stops the stack,
# whatever happens. The stack writes its own tenants file and an operator API key, which
# `loadgen all` sends on every request. Figures are only comparable within a run: each pipeline figure is printed as a
# ratio to the JetStream and Redis limits measured on the same servers moments before. With sync
# "always" the pipeline figure (POSTs of -batch events, 100 by default) is also printed as the
# durable-ingest line: events/s POST → KPI-visible over the raw publish rate, where every message
# is one fsync (goal ≥ 15,000 events/s and ≥ 2 ×; docs/operations.md, "Durable ingest").
#
# Output under .run/bench/: sync-<setting>/{all.txt,result.json,stack.log,logs/} and summary.md,
# the table for docs/performance.md.
#
# Environment:
#   BENCH_QUICK=1       smoke run of about a minute with small figures
#   BENCH_SYNCS         settings to measure (default "2m always 2m-live overload"; 2m is the NATS default).
#                       Traffic is spread over the last 28 days (so 30-day queries have data; for
#                       the write path that is a backfill); a "-live" setting sends the same
#                       traffic with timestamps from the last 2 hours, as a live helpdesk does, and
#                       holds 15,000 events/s for 60 s in the fixed-rate step. "overload" runs
#                       ingest with -max-backlog $BENCH_OVERLOAD_BOUND (sync 2m) and only the
#                       raw JetStream and overload steps: posting flat out for 30 s, it reports the
#                       kpi backlog's max over the bound, the share of requests refused (429/503)
#                       and whether every accepted event was stored once and processed by kpi.
#   BENCH_OVERLOAD_BOUND  the overload setting's -max-backlog (default 20000)
#   BENCH_ARGS          extra flags for `loadgen all` (see `loadgen all -h`), e.g. "-posters 16"
#   BENCH_INGEST_ARGS   extra arguments for ingest, BENCH_KPI_ARGS for kpi (split on spaces)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/.run/bench"
bin="$out/bin"
syncs=${BENCH_SYNCS:-"2m always 2m-live overload"}
overload_bound=${BENCH_OVERLOAD_BOUND:-20000}

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	# Small enough for ~1 minute in total, large enough that every step measures something.
	args=(-events 20000 -duration 10s -drain-timeout 20s -rate 1000 -rate-duration 5s -probe-rate 5
		-probe-timeout 5s -raw-time 1s -grpc-calls 50 -grpc-time 1s -lag-interval 250ms -timeout 90s)
else
	# About 1.5 minutes per setting when the pipeline keeps up; -timeout caps a setting where
	# nothing does, so the whole run stays within about 6 minutes.
	args=(-duration 45s -drain-timeout 30s -timeout 165s)
fi
# shellcheck disable=SC2206 # word splitting is the point: these are lists of flags
args+=(${BENCH_ARGS:-})

for svc in ingest kpi; do
	if [[ ! -d "$root/services/$svc/cmd/$svc" ]]; then
		echo "bench: services/$svc/cmd/$svc does not exist yet; the benchmark needs both ingest and kpi binaries." >&2
		exit 1
	fi
done

mkdir -p "$bin"
echo "bench: building ingest, kpi and loadgen"
(
	cd "$root"
	go build -o "$bin/ingest" ./services/ingest/cmd/ingest
	go build -o "$bin/kpi" ./services/kpi/cmd/kpi
	go build -o "$bin/loadgen" ./tools/loadgen
) || {
	echo "bench: build failed (see above)" >&2
	exit 1
}

stack_pid=""
stack_dir=""

# stop_stack asks the stack to stop (it stops kpi, ingest, Redis and NATS in turn), and if it is
# gone without doing so, stops the services it started by their recorded ids.
stop_stack() {
	[[ -n "$stack_pid" ]] || return 0
	if kill -0 "$stack_pid" 2>/dev/null; then
		kill -TERM "$stack_pid" 2>/dev/null || true
		for _ in $(seq 1 250); do
			kill -0 "$stack_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$stack_pid" 2>/dev/null; then
			echo "bench: stack did not stop in 25s; killing it" >&2
			kill -KILL "$stack_pid" 2>/dev/null || true
		fi
	fi
	wait "$stack_pid" 2>/dev/null || true
	if [[ -f "$stack_dir/stack.pids" ]]; then
		while read -r pid; do
			if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done <"$stack_dir/stack.pids"
	fi
	stack_pid=""
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

ingest_args=()
for a in ${BENCH_INGEST_ARGS:-}; do ingest_args+=(-ingest-arg "$a"); done
kpi_args=()
for a in ${BENCH_KPI_ARGS:-}; do kpi_args+=(-kpi-arg "$a"); done

status=0
results=()
for setting in $syncs; do
	sync=${setting%-live}
	label="sync $sync"
	setting_args=()
	setting_ingest_args=()
	if [[ "$setting" == overload ]]; then
		sync=2m
		label="overload, -max-backlog $overload_bound"
		setting_ingest_args=(-ingest-arg -max-backlog -ingest-arg "$overload_bound")
		setting_args=(-steps jetstream,overload -overload-bound "$overload_bound")
		if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
			setting_args+=(-overload-duration 10s -overload-events 200000)
		fi
	elif [[ "$setting" == *-live ]]; then
		label="sync $sync, live traffic"
		if [[ "${BENCH_QUICK:-0}" != 1 ]]; then
			setting_args=(-spread 2h -rate 15000 -rate-duration 60s)
		else
			setting_args=(-spread 2h)
		fi
	fi
	stack_dir="$out/sync-$setting"
	rm -rf "$stack_dir"
	mkdir -p "$stack_dir"
	echo
	echo "bench: sync $sync: starting the stack (logs in ${stack_dir#"$root"/})"
	"$bin/loadgen" stack -dir "$stack_dir" -sync "$sync" -ingest-bin "$bin/ingest" -kpi-bin "$bin/kpi" \
		-lifetime 10m ${ingest_args[@]+"${ingest_args[@]}"} ${setting_ingest_args[@]+"${setting_ingest_args[@]}"} \
		${kpi_args[@]+"${kpi_args[@]}"} >"$stack_dir/stack.log" 2>&1 &
	stack_pid=$!
	for _ in $(seq 1 900); do
		[[ -f "$stack_dir/stack.env" ]] && break
		kill -0 "$stack_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ ! -f "$stack_dir/stack.env" ]]; then
		echo "bench: sync $sync: the stack did not come up:" >&2
		tail -n 30 "$stack_dir/stack.log" >&2
		stop_stack
		status=1
		continue
	fi
	# shellcheck source=/dev/null
	. "$stack_dir/stack.env"
	if "$bin/loadgen" all -label "$label" -sync "$sync" -nats-url "$NATS_URL" -redis-url "$REDIS_URL" \
		-ingest-url "$INGEST_URL" -kpi-grpc "$KPI_GRPC" -api-key-file "$API_KEY_FILE" -json "$stack_dir/result.json" "${args[@]}" \
		${setting_args[@]+"${setting_args[@]}"} \
		2>"$stack_dir/loadgen.log" | tee "$stack_dir/all.txt"; then
		:
	else
		echo "bench: sync $sync: some measurements failed (see ${stack_dir#"$root"/}/all.txt and logs/)" >&2
		status=1
	fi
	stop_stack
	[[ -f "$stack_dir/result.json" ]] && results+=("$stack_dir/result.json")
	# The stores are large and worthless after the run; the logs stay.
	rm -rf "$stack_dir/nats" "$stack_dir/redis"
done

if ((${#results[@]} > 0)); then
	"$bin/loadgen" report "${results[@]}" >"$out/summary.md"
	echo
	echo "bench: summary (${out#"$root"/}/summary.md):"
	echo
	cat "$out/summary.md"
fi
exit "$status"
