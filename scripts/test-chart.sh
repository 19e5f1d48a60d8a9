#!/usr/bin/env bash
# Chart, helmfile, alerts and cluster files: helm lint (Helm 3 and 4), helm template validated by
# kubernetes-validate, PrometheusRule/ServiceMonitor validated against their schemas, promtool
# check + unit tests of the alert rules as rendered, helmfile template for dev and prod, CRD copies,
# YAML syntax of talos/ and kind-config.yaml. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${UNSTOPPABLE_TOOLS:-$HOME/.local/share/unstoppable/bin}"
models="${UNSTOPPABLE_NODE_MODELS:-$HOME/.local/share/unstoppable/node}"
export PATH="$tools:$PATH"
chart=charts/unstoppable
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
step() { echo "== $*"; }

step "CRDs in the chart are the generated ones"
for f in crds/*.yaml; do cmp "$f" "$chart/crds/$(basename "$f")"; done
[ "$(ls "$chart"/crds/*.yaml | wc -l)" = "$(ls crds/*.yaml | wc -l)" ]

step "helm lint (Helm 3 and Helm 4)"
helm lint --strict "$chart"
helm lint --strict "$chart" --set serviceMonitor.enabled=true
helm4 lint --strict "$chart"

step "helm template | kubernetes-validate --strict"
monitoring="--api-versions monitoring.coreos.com/v1/PrometheusRule --api-versions monitoring.coreos.com/v1/ServiceMonitor"
# Without the Prometheus Operator's CRDs (a bare kind cluster) neither object is rendered.
helm template unstoppable "$chart" -n unstoppable --set serviceMonitor.enabled=true > "$out/bare.yaml"
if grep -qE "kind: (PrometheusRule|ServiceMonitor)" "$out/bare.yaml"; then
  echo "PrometheusRule/ServiceMonitor rendered without the monitoring.coreos.com API"; exit 1
fi
# shellcheck disable=SC2086
helm template unstoppable "$chart" -n unstoppable --include-crds $monitoring \
  --set serviceMonitor.enabled=true \
  --set 'storageClasses[0].name=mayastor-3,storageClasses[0].provisioner=io.openebs.csi-mayastor' \
  > "$out/all.yaml"
python3 - "$out" <<'PY'
import sys, yaml
out = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(f"{out}/all.yaml")) if d]
builtin, custom = [], {}
for d in docs:
    if d["apiVersion"].startswith("monitoring.coreos.com"):
        custom[d["kind"]] = d
    else:
        builtin.append(d)
yaml.safe_dump_all(builtin, open(f"{out}/builtin.yaml", "w"))
for kind, d in custom.items():
    yaml.safe_dump(d, open(f"{out}/{kind}.yaml", "w"))
yaml.safe_dump(custom["PrometheusRule"]["spec"], open(f"{out}/rules.yaml", "w"))
kinds = sorted({d["kind"] for d in docs})
endpoints = custom["ServiceMonitor"]["spec"]["endpoints"]
assert all(e.get("honorLabels") is True for e in endpoints), "ServiceMonitor must honour our namespace label"
print("rendered:", ", ".join(kinds))
for needed in ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition", "Deployment",
               "NetworkPolicy", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor", "StorageClass"]:
    assert needed in kinds, f"chart renders no {needed}"
PY
kubernetes-validate --strict -k 1.30.0 "$out/builtin.yaml"

step "Secrets readable only in the listed namespaces when secretNamespaces is set"
helm template unstoppable "$chart" -n unstoppable --set 'secretNamespaces={tenant-a,tenant-b}' > "$out/narrow.yaml"
python3 - "$out/narrow.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cluster = [d for d in docs if d["kind"] == "ClusterRole"][0]
assert not any("secrets" in r["resources"] for r in cluster["rules"]), "ClusterRole still reads secrets"
roles = sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-secrets"))
bindings = sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-secrets"))
assert roles == bindings == ["tenant-a", "tenant-b"], (roles, bindings)
print("secrets: Roles in", ", ".join(roles))
PY
kubernetes-validate --strict -k 1.30.0 "$out/narrow.yaml" >/dev/null

step "Two replicas elect a leader on a Lease"
helm template unstoppable "$chart" -n unstoppable --set replicas=2 > "$out/ha.yaml"
python3 - "$out/ha.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = [d for d in docs if d["kind"] == "Deployment"][0]
assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
assert env["UNSTOPPABLE_LEADER_ELECTION"]["value"] == "true"
assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
role = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("leader-election")][0]
assert role["metadata"]["namespace"] == "unstoppable"
assert role["rules"][0]["resources"] == ["leases"]
print("leader election: Lease RBAC and env in place")
PY
kubernetes-validate --strict -k 1.30.0 "$out/ha.yaml" >/dev/null

step "PrometheusRule and ServiceMonitor against their schemas"
cat > "$out/validate.mjs" <<'JS'
// The models package is ESM-only: import it by file path from wherever it was installed.
import fs from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const [models, out] = process.argv.slice(2);
const require = createRequire(`${models}/node_modules/`);
const yaml = require("js-yaml");
const v1 = `${models}/node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js`;
const { PrometheusRule, ServiceMonitor } = await import(pathToFileURL(v1).href);
new PrometheusRule(yaml.load(fs.readFileSync(`${out}/PrometheusRule.yaml`, "utf8"))).validate();
new ServiceMonitor(yaml.load(fs.readFileSync(`${out}/ServiceMonitor.yaml`, "utf8"))).validate();
// A broken rule must be caught, or this check proves nothing.
let caught = false;
try {
  new PrometheusRule({ metadata: { name: "x" }, spec: { groups: [{ rules: [{ alert: 1 }] }] } }).validate();
} catch (e) {
  caught = true;
}
if (!caught) throw new Error("schema validation accepted an invalid PrometheusRule");
console.log("PrometheusRule and ServiceMonitor are valid");
JS
node "$out/validate.mjs" "$models" "$out"

step "promtool check rules + test rules"
promtool check rules "$out/rules.yaml"
cp "$chart/tests/alerts.test.yaml" "$out/"
promtool test rules "$out/alerts.test.yaml"

step "helmfile template (dev, prod)"
for env in dev prod; do
  helmfile --helm-binary "$tools/helm" -e "$env" -l name=unstoppable template --skip-deps > "$out/$env.yaml"
  grep -q "UNSTOPPABLE_JOB_IMAGE" "$out/$env.yaml"
done
grep -q 'value: "openebs-hostpath"' "$out/dev.yaml"
grep -q 'value: "mayastor-3"' "$out/prod.yaml"
grep -q 'io.openebs.csi-mayastor' "$out/prod.yaml"
# The operator may reach in-cluster S3 (SeaweedFS on 8333) in dev, not in prod.
grep -q 'port: 8333' "$out/dev.yaml"
! grep -q 'port: 8333' "$out/prod.yaml"

step "YAML syntax of talos/ and kind-config.yaml"
python3 - <<'PY'
import glob, yaml
files = glob.glob("talos/*.yaml") + ["kind-config.yaml", "helmfile.yaml"] + glob.glob("charts/environments/*.yaml")
assert len(files) >= 5, files
for f in files:
    text = open(f).read()
    if f == "helmfile.yaml":
        text = "\n".join(l for l in text.splitlines() if "{{" not in l)
    list(yaml.safe_load_all(text))
    print("ok", f)
PY
echo "chart checks passed"
