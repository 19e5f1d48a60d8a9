#!/usr/bin/env bash
# End-to-end on a kind cluster: build, deploy with helmfile, back up an in-cluster FTPS server into
# an in-cluster S3, restore and compare. See e2e/README.md. KEEP=1 keeps the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind kubectl helm helmfile openssl; do
  command -v "$tool" >/dev/null || { echo "e2e needs $tool"; exit 2; }
done
cluster=unstoppable
work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  [ "${KEEP:-0}" = 1 ] || kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT
step() { echo "== $*"; }

step "cluster"
mkdir -p /tmp/unstoppable-kind/worker1 /tmp/unstoppable-kind/worker2
kind get clusters | grep -qx "$cluster" || kind create cluster --config kind-config.yaml

step "images"
docker build -f job/Dockerfile -t ghcr.io/unstoppable-dev/unstoppable-job:e2e .
docker build -f operator/Dockerfile -t ghcr.io/unstoppable-dev/unstoppable-operator:e2e .
kind load docker-image --name "$cluster" ghcr.io/unstoppable-dev/unstoppable-job:e2e ghcr.io/unstoppable-dev/unstoppable-operator:e2e

step "helmfile -e dev apply"
helmfile -e dev --state-values-set imageTag=e2e apply
kubectl -n unstoppable rollout status deployment/unstoppable --timeout=180s

step "test servers"
kubectl create namespace backups --dry-run=client -o yaml | kubectl apply -f -
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=e2e CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=ftps.backups.svc" -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:ftps.backups.svc,DNS:ftps.backups.svc.cluster.local\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext.cnf" -out "$work/tls.crt" 2>/dev/null
kubectl -n backups create secret tls ftps-tls --cert="$work/tls.crt" --key="$work/tls.key" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n backups create secret generic ftps-ca --from-file=ca.crt="$work/ca.crt" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n backups create configmap ftps-server --from-file=job/tests/fixtures/mlsd_ftps_server.py --dry-run=client -o yaml | kubectl apply -f -
kubectl -n backups create secret generic acme-credentials \
  --from-literal=FTP_USERNAME=backup --from-literal=FTP_PASSWORD=backup-password \
  --from-literal=REPOSITORY_PASSWORD="$(openssl rand -hex 16)" \
  --from-literal=S3_ACCESS_KEY_ID=e2e-key --from-literal=S3_SECRET_ACCESS_KEY=e2e-secret \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f e2e/manifests/servers.yaml
kubectl -n backups rollout status deployment/ftps --timeout=300s
kubectl -n backups rollout status deployment/s3 --timeout=300s

step "customer and resource"
kubectl apply -f e2e/manifests/customer.yaml
kubectl -n backups wait --for=condition=Ready backupcustomer/acme --timeout=120s
kubectl -n backups wait --for=condition=Ready backupresource/www --timeout=120s
kubectl -n backups get cronjob backup-www -o jsonpath='{.spec.concurrencyPolicy}' | grep -qx Forbid

step "backup"
kubectl -n backups create job --from=cronjob/backup-www e2e-run-1
kubectl -n backups wait --for=condition=complete job/e2e-run-1 --timeout=600s
kubectl -n backups wait --for=condition=LastBackupSucceeded backupresource/www --timeout=120s
kubectl -n backups get backupresource www -o wide

step "restore and compare"
kubectl apply -f e2e/manifests/restore.yaml
kubectl -n backups wait --for=condition=complete job/restore-www --timeout=600s
kubectl -n backups logs job/restore-www -c checksums > "$work/restored.sha256"
kubectl -n backups exec deploy/ftps -- sh -c 'cd /srv/site && find . -type f | sort | xargs -I{} sha256sum "{}"' > "$work/source.sha256"
diff -u "$work/source.sha256" "$work/restored.sha256"

step "BackupRestore puts a deleted file back onto the FTPS server"
victim=$(kubectl -n backups exec deploy/ftps -- sh -c 'cd /srv/site && find . -type f | sort | head -1')
kubectl -n backups exec deploy/ftps -- rm "/srv/site/$victim"
kubectl apply -f e2e/manifests/backuprestore.yaml
kubectl -n backups wait --for=condition=Complete backuprestore/put-back --timeout=600s
kubectl -n backups get backuprestore put-back -o wide
kubectl -n backups exec deploy/ftps -- sh -c 'cd /srv/site && find . -type f | sort | xargs -I{} sha256sum "{}"' > "$work/after.sha256"
diff -u "$work/source.sha256" "$work/after.sha256"
echo "e2e passed: $(wc -l < "$work/source.sha256") files restored byte-exact; $victim put back by a BackupRestore"
