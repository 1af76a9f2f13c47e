#!/usr/bin/env bash
# Installs the pinned code generators and buf into .bin/ (make proto, proto-check and lint put
# .bin first on PATH), so everyone generates byte-identical code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools=(
	github.com/bufbuild/buf/cmd/buf@v1.75.0
	google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
)

export GOBIN="$PWD/.bin"
# `go install pkg@version` builds the tool from its own module, not from this workspace.
export GOWORK=off
for tool in "${tools[@]}"; do
	echo "tools: go install $tool" >&2
	go install "$tool"
done
