#!/usr/bin/env bash
# The whole test suite. Installs missing tools, starts one SeaweedFS (S3) and one real Kubernetes
# control plane (testenv/: kube-apiserver, kube-controller-manager, etcd in one Go process) for
# all tests, runs `cargo test`, then the chart checks (scripts/test-chart.sh). FTPS servers
# (vsftpd, pyftpdlib, pure-ftpd, libunftp) are started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

export UNSTOPPABLE_TEST_PURE_FTPD_DIR=${UNSTOPPABLE_TEST_PURE_FTPD_DIR:-$HOME/.cache/unstoppable-test/pure-ftpd}
scripts/install-test-deps.sh
scripts/install-helm-tools.sh

work=$(mktemp -d)
s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export UNSTOPPABLE_TEST_S3_ENDPOINT="http://127.0.0.1:${s3_port}"
export UNSTOPPABLE_TEST_S3_ACCESS_KEY="unstoppable-test-key"
export UNSTOPPABLE_TEST_S3_SECRET_KEY="unstoppable-test-secret"
# Every bucket is a SeaweedFS collection with volumes of its own, and `weed mini` allows only
# "free disk / volume size" volumes by default: on a machine with little free disk the suite's
# buckets used them up and PUTs failed with 500 InternalError ("No writable volumes and no free
# volumes left"). Volume files are sparse, so a fixed, generous count costs no disk.
AWS_ACCESS_KEY_ID=$UNSTOPPABLE_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$UNSTOPPABLE_TEST_S3_SECRET_KEY \
  weed mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$s3_port" -admin.ui=false \
    -volume.max=2000 \
  >"$work/weed.log" 2>&1 &
weed_pid=$!
testenv_pid=""
cleanup() {
  status=$?
  # A failed run shows what the S3 server complained about (its log goes with $work).
  if [ "$status" -ne 0 ] && [ -f "$work/weed.log" ]; then
    echo "--- SeaweedFS errors (last 10) ---"; grep -E '^E[0-9]{4}' "$work/weed.log" | tail -10 || true
  fi
  kill "$weed_pid" 2>/dev/null || true
  [ -n "$testenv_pid" ] && kill "$testenv_pid" 2>/dev/null || true
  wait "$weed_pid" 2>/dev/null || true
  [ -n "$testenv_pid" ] && wait "$testenv_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/weed"
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$UNSTOPPABLE_TEST_S3_ENDPOINT"; then break; fi
  sleep 0.2
done
curl -s -o /dev/null "$UNSTOPPABLE_TEST_S3_ENDPOINT" || { echo "SeaweedFS did not start:"; tail -20 "$work/weed.log"; exit 1; }

# The control plane: built once per machine (first build ~6 min on 2 cores, then seconds).
command -v go >/dev/null 2>&1 || { echo "Go (>= 1.26) is needed to build testenv/"; exit 1; }
testenv_bin="${CARGO_TARGET_DIR:-$PWD/target}/testenv/testenv"
mkdir -p "$(dirname "$testenv_bin")"
echo "building testenv (the Kubernetes control plane for the tests)"
go build -C testenv -ldflags "$(cat testenv/ldflags)" -o "$testenv_bin" .
"$testenv_bin" up --dir "$work/kube" >"$work/testenv.out" 2>&1 &
testenv_pid=$!
for _ in $(seq 1 300); do
  if grep -q '^ready ' "$work/testenv.out"; then break; fi
  kill -0 "$testenv_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q '^ready ' "$work/testenv.out" || { echo "testenv did not start:"; cat "$work/testenv.out"; tail -20 "$work/kube/control-plane.log" 2>/dev/null; exit 1; }
export UNSTOPPABLE_TEST_KUBECONFIG="$work/kube/kubeconfig"

cargo test --workspace "$@"
scripts/test-chart.sh
