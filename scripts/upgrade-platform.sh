#!/usr/bin/env bash
# `just upgrade-platform <newer template checkout>`: takes the platform's files from a newer
# template, keeping this service's own files (service/, README.md, the dashboards' generate.py and
# what it writes, infra/terraform.tfvars). The newer template is first rendered with this
# service's name, region and domain by cargo-generate itself, so the platform files that carry
# the name (scrape jobs, Terraform defaults, Dockerfile) come out carrying this service's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. scripts/env.sh
newer=$(cd "${1:?usage: just upgrade-platform <newer template checkout>}" && pwd)
# The platform's files: whole directories (files gone upstream go here too) and single files.
PLATFORM_DIRS=(platform smoke otel-collector dev e2e scripts just infra dashboards/cloudwatch .ci)
PLATFORM_FILES=(Cargo.toml Cargo.lock Justfile Dockerfile .dockerignore .gitignore dashboards/README.md)
# Team files inside platform directories.
KEEP=(infra/terraform.tfvars)

cargo_generate=${CARGO_GENERATE:-$MCP_CACHE/cargo-generate/bin/cargo-generate}
[ -x "$cargo_generate" ] || cargo_generate=cargo-generate
tfvar() { sed -n "/^variable \"$1\"/,/^}/s/^ *default *= *\"\(.*\)\"$/\1/p" infra/variables.tf | head -n 1; }
region=$(tfvar region)
domain=$(tfvar domain_name)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cargo_generate" generate --path "$newer" --destination "$work" --name "$MCP_SERVICE_NAME" \
  --silent --vcs none --define aws_region="$region" --define domain_name="${domain:-none}" \
  --define keep_example_tools=true >/dev/null
rendered=$work/$MCP_SERVICE_NAME

for keep in "${KEEP[@]}"; do [ -e "$keep" ] && cp -p "$keep" "$work/kept-${keep//\//_}"; done
for dir in "${PLATFORM_DIRS[@]}"; do
  rm -rf "$dir"
  [ -d "$rendered/$dir" ] && cp -a "$rendered/$dir" "$dir"
done
for file in "${PLATFORM_FILES[@]}"; do cp -p "$rendered/$file" "$file"; done
for keep in "${KEEP[@]}"; do
  [ -e "$work/kept-${keep//\//_}" ] && cp -p "$work/kept-${keep//\//_}" "$keep"
done
# The newer platform's lock, with this service's name and its own extra dependencies recorded.
cargo update --workspace --quiet
echo "platform upgraded from $newer; review with \`git status\` and \`git diff\`, then ./scripts/test.sh"
