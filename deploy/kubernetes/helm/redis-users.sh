#!/bin/sh
# Writes the ACL file of the Redis the Bitnami chart runs (helm/redis-values.yaml mounts it from
# the Secret ticketpulse-redis-acl): the services' users exactly as deploy/redis-acl.sh makes them
# for compose, and the chart's own "default" user, which its replicas and Sentinels log in as
# (the chart's auth.password), allowed replication and what Sentinel needs, nothing else.
#
#   TICKETPULSE_KPI_REDIS_PASSWORD=... TICKETPULSE_ESCALATION_REDIS_PASSWORD=... \
#   TICKETPULSE_NOTIFY_REDIS_PASSWORD=... TICKETPULSE_REDIS_DEFAULT_PASSWORD=... \
#     sh deploy/kubernetes/helm/redis-users.sh users.acl
set -eu

if [ $# -ne 1 ]; then
	echo "usage: redis-users.sh ACL_FILE" >&2
	exit 2
fi
if [ -z "${TICKETPULSE_REDIS_DEFAULT_PASSWORD:-}" ]; then
	echo "redis-users.sh: TICKETPULSE_REDIS_DEFAULT_PASSWORD is not set (the chart's auth.password)" >&2
	exit 1
fi
here=$(dirname "$0")
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sh "$here/../../redis-acl.sh" "$tmp"
default=$(printf '%s' "$TICKETPULSE_REDIS_DEFAULT_PASSWORD" | sha256sum | cut -d ' ' -f 1)
umask 077
{
	echo "user default on #$default resetkeys resetchannels &__sentinel__:hello -@all +ping +info +role +psync +replconf +multi +exec +slaveof +replicaof +subscribe +publish +config|rewrite +client|setname +client|kill +script|kill"
	grep -v '^user default ' "$tmp"
} >"$1"
