#!/bin/sh
# Writes Redis's ACL file from the services' passwords in the environment, then runs the rest of
# the command line with --aclfile added (docker-compose.yml runs the image's entrypoint this way).
# Redis reads no environment variables itself; the file keeps only SHA-256 hashes of the passwords.
#
#   redis-acl.sh ACL_FILE [COMMAND ARGS...]
#
# One user per service that keeps state in Redis (ingest keeps none), each limited to its own keys
# (DESIGN.md §4 and the services' store packages) and to data and scripting commands: no
# administration (CONFIG, DEBUG, SHUTDOWN, ACL, ...), nothing dangerous (FLUSHALL, FLUSHDB, KEYS,
# ...), no pub/sub, no SCRIPT FLUSH or KILL, no FUNCTION, and no SCAN or RANDOMKEY (they would
# list other services' keys). The exceptions: INFO's server section, as each consumer's
# watermark (tp:{wm}:<service>:*; on a Redis Cluster tp:{wm:<n>}:<service>:* on each master)
# compares Redis's run_id to notice a restart or failover that lost writes; CLUSTER SLOTS and
# CLUSTER INFO, which a Redis Cluster client and its health check read (on one server they only
# answer an error); and SCAN for kpi alone, which deletes a tenant's old generation of keys after a
# rebuild (tpctl kpi rebuild) by pattern: it sees other key names, never a value, and its key
# patterns still refuse it every other service's key. kpi's patterns also cover a rebuild's
# generations (tp:{<tenant>@<g>:...}) and its state (tp:{<tenant>:kgen}, tp:{kgen}:jobs);
# escalation's the state of a ticket-log rebuild (tp:{<tenant>:escrb}, tp:{escrb}:jobs). The default user is off, so a client that does not log in can do nothing;
# "healthcheck" may only PING.
set -eu

if [ $# -lt 1 ]; then
	echo "usage: redis-acl.sh ACL_FILE [COMMAND ARGS...]" >&2
	exit 2
fi
acl=$1
shift

# hash prints the SHA-256 of the password in the named variable, which must be set.
hash() {
	eval "pw=\${$1:-}"
	if [ -z "$pw" ]; then
		echo "redis-acl.sh: $1 is not set (docs/operations.md, \"NATS and Redis credentials\")" >&2
		exit 1
	fi
	printf '%s' "$pw" | sha256sum | cut -d ' ' -f 1
}
kpi=$(hash TICKETPULSE_KPI_REDIS_PASSWORD)
escalation=$(hash TICKETPULSE_ESCALATION_REDIS_PASSWORD)
notify=$(hash TICKETPULSE_NOTIFY_REDIS_PASSWORD)

commands='-@all +@read +@write +@keyspace +@string +@hash +@list +@set +@sortedset +@scripting +@transaction +@connection -@admin -@dangerous -@pubsub -script|flush -script|kill -function -scan -randomkey +info|server +cluster|slots +cluster|info'

umask 077
cat >"$acl" <<EOF
user default off resetpass resetkeys resetchannels -@all
user healthcheck on nopass resetkeys resetchannels -@all +ping
user kpi on #$kpi resetkeys resetchannels $commands ~tp:{*:t:*} ~tp:{*}:h:* ~tp:{*}:dt:* ~tp:{*}:wt:* ~tp:{*}:mt:* ~tp:{*}:yt:* ~tp:{*}:gen ~tp:{*}:ff ~tp:{*}:m:* ~tp:{*:ix}:a:* ~tp:{*:ix}:ga:* ~tp:{*:ix}:g:* ~tp:{*:ix}:q:* ~tp:{*:ix}:toseal ~tp:{*:ix}:topack ~tp:{*:ix}:tomonth ~tp:{*:ix}:toyear ~tp:{*:ix}:allagents ~tp:{*:ix}:allteams ~tp:{*:ix}:allqueues ~tp:{*:ix}:gen ~tp:{*:ix}:resolved ~tp:{tenants} ~tp:{wm}:kpi:* ~tp:{wm:*}:kpi:* ~tp:{*:kgen} ~tp:{kgen}:jobs +scan
user escalation on #$escalation resetkeys resetchannels $commands ~tp:{*}:e:* ~tp:{*:ix}:esc ~tp:{*:t:*}:esc:ev ~tp:{tq:*}:due ~tp:{tq:*}:lease ~tp:{tq:*}:seq ~tp:{wm}:escalation:* ~tp:{wm:*}:escalation:* ~tp:{*:escrb} ~tp:{escrb}:jobs
user notify on #$notify resetkeys resetchannels $commands ~tp:{*:ng:*} ~tp:{*:ng:*}:s:* ~tp:{*:nd}:* ~tp:{*:nopen} ~tp:{nf}:disabled ~tp:notify:{tq:*}:due ~tp:notify:{tq:*}:lease ~tp:notify:{tq:*}:seq ~tp:{wm}:notify:* ~tp:{wm:*}:notify:*
EOF
# The server drops root before it reads the file (the image's entrypoint runs it as "redis").
if [ "$(id -u)" = 0 ] && id redis >/dev/null 2>&1; then
	chown redis "$acl"
fi

if [ $# -gt 0 ]; then
	exec "$@" --aclfile "$acl"
fi
