#!/usr/bin/env bash
# Fails when the generated Go code under proto/ is not exactly what `make proto` writes: a file
# differs, one is missing, one is left over from a removed .proto, or one is not committed.
# It regenerates into a temporary copy, so the work tree is never touched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Only the generated files are compared; tar keeps their relative paths on any platform.
copy_generated() { (cd "$1" && find . -name '*.pb.go' -print | tar -cf - -T -) | (cd "$2" && tar -xf -); }

mkdir "$tmp/gen" "$tmp/have" "$tmp/want"
(cd proto && tar -cf - .) | (cd "$tmp/gen" && tar -xf -)
find "$tmp/gen" -name '*.pb.go' -delete
(cd "$tmp/gen" && buf generate)
copy_generated "$tmp/gen" "$tmp/want"
copy_generated proto "$tmp/have"

stale=0
if ! diff -r -u "$tmp/have" "$tmp/want" >"$tmp/diff"; then
	sed -e "s|$tmp/have|proto (committed)|g; s|$tmp/want|proto (generated)|g" "$tmp/diff" | head -n 60 >&2
	stale=1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	untracked=$(git ls-files --others --exclude-standard -- 'proto/*.pb.go')
	if [[ -n $untracked ]]; then
		echo "generated but not committed:" >&2
		echo "$untracked" >&2
		stale=1
	fi
fi
if [[ $stale == 1 ]]; then
	echo "proto-check: generated code is stale: run make proto (and commit the result)" >&2
	exit 1
fi
echo "proto-check: generated code is up to date" >&2
