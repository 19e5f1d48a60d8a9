"""Operator at scale (not part of the tests): N customers with M resources each on the real
control plane of testenv/, the operator (debug or release build) with the admin kubeconfig.
Measures the time until every resource is Ready, the operator's peak RSS and CPU time, and API
requests per reconcile (from kube-apiserver's own apiserver_request_total).

usage: operator_scale.py --testenv BIN --operator BIN --s3 URL --key K --secret S
                         [--customers 100] [--per-customer 100]
"""
import argparse
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request


def client(kubeconfig):
    cfg = json.loads(json.dumps(__import__("yaml").safe_load(open(kubeconfig))))
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    d = tempfile.mkdtemp()
    for name, key in [("ca", cluster["certificate-authority-data"]),
                      ("crt", user["client-certificate-data"]),
                      ("key", user["client-key-data"])]:
        open(f"{d}/{name}", "wb").write(base64.b64decode(key))
    ctx = ssl.create_default_context(cafile=f"{d}/ca")
    ctx.load_cert_chain(f"{d}/crt", f"{d}/key")
    server = cluster["server"]

    def call(method, path, body=None, content_type="application/json"):
        req = urllib.request.Request(server + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.read()
    return call


def cpu_of(pid):
    """User and system CPU seconds of a process (its threads included)."""
    fields = open(f"/proc/{pid}/stat").read().split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def requests_total(call):
    """apiserver_request_total by (verb, resource, code)."""
    text = call("GET", "/metrics").decode()
    counts = {}
    for m in re.finditer(r'^apiserver_request_total\{([^}]*)\} (\S+)', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""), labels.get("code", ""))
        counts[key] = counts.get(key, 0) + float(m.group(2))
    return counts


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--testenv", required=True)
    a.add_argument("--operator", required=True)
    a.add_argument("--s3", required=True)
    a.add_argument("--key", required=True)
    a.add_argument("--secret", required=True)
    a.add_argument("--customers", type=int, default=100)
    a.add_argument("--per-customer", type=int, default=100)
    a.add_argument("--concurrency", type=int, default=16, help="--max-concurrent-reconciles")
    a.add_argument("--control-plane-gogc", metavar="N",
                   help="GOGC of testenv's process (etcd, kube-apiserver and kube-controller-manager in one Go "
                        "heap, on the same cores as the operator); default: Go's, 100")
    a.add_argument("--kubectl-apply", action="store_true",
                   help="objects carry kubectl apply's last-applied-configuration annotation, as applied ones do")
    a.add_argument("--dump-one", metavar="FILE",
                   help="write one reconciled BackupResource as the API returns it (what the operator stores per resource)")
    args = a.parse_args()
    work = tempfile.mkdtemp()
    plane_env = dict(os.environ)
    if args.control_plane_gogc:
        plane_env["GOGC"] = args.control_plane_gogc
    print(f"control plane GOGC: {plane_env.get('GOGC', '100 (default)')}")
    env = subprocess.Popen([args.testenv, "up", "--dir", f"{work}/kube"], stdout=subprocess.PIPE, text=True,
                           env=plane_env)
    for line in env.stdout:
        if line.startswith("ready"):
            break
    kubeconfig = f"{work}/kube/kubeconfig"
    call = client(kubeconfig)
    repo = os.path.join(os.path.dirname(__file__), "..")
    for f in sorted(os.listdir(f"{repo}/crds")):
        if f.endswith(".yaml"):
            crd = __import__("yaml").safe_load(open(f"{repo}/crds/{f}"))
            call("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}?fieldManager=bench&force=true",
                 crd, "application/apply-patch+yaml")
    time.sleep(3)
    total = args.customers * args.per_customer
    print(f"creating {args.customers} customers x {args.per_customer} resources = {total}")
    t0 = time.time()
    for c in range(args.customers):
        ns = f"tenant-{c:03d}"
        call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        call("POST", f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "creds"}, "stringData": {
            "FTP_USERNAME": "u", "FTP_PASSWORD": "p", "REPOSITORY_PASSWORD": "r",
            "S3_ACCESS_KEY_ID": args.key, "S3_SECRET_ACCESS_KEY": args.secret}})
        call("POST", f"/apis/unstoppable.dev/v1alpha1/namespaces/{ns}/backupcustomers", {
            "apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupCustomer", "metadata": {"name": "acme"},
            "spec": {"coldStorage": {"endpoint": args.s3, "region": "us-east-1", "bucket": f"scale-{os.getpid()}-{c:03d}"},
                     "secrets": {"secretRef": {"name": "creds"}}}})
        for r in range(args.per_customer):
            resource = {
                "apiVersion": "unstoppable.dev/v1alpha1", "kind": "BackupResource", "metadata": {"name": f"site-{r:03d}"},
                "spec": {"customerRef": {"name": "acme"}, "schedule": f"{r % 60} 3 * * *",
                         "source": {"ftps": {"host": f"ftp{r}.example.org"}}}}
            if args.kubectl_apply:
                resource["metadata"]["annotations"] = {
                    "kubectl.kubernetes.io/last-applied-configuration": json.dumps(resource)}
            call("POST", f"/apis/unstoppable.dev/v1alpha1/namespaces/{ns}/backupresources", resource)
    print(f"created in {time.time() - t0:.1f} s")
    before = requests_total(call)
    log = open(f"{work}/operator.log", "w")
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    op = subprocess.Popen([args.operator], stdout=log, stderr=log, env={
        "PATH": os.environ["PATH"], "KUBECONFIG": kubeconfig, "UNSTOPPABLE_JOB_IMAGE": "x",
        "UNSTOPPABLE_METRICS_ADDR": f"127.0.0.1:{port}", "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        "UNSTOPPABLE_MAX_CONCURRENT_RECONCILES": str(args.concurrency),
        # The allocator's settings pass through (MIMALLOC_*; MALLOC_* for glibc under a wrapper).
        **{k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "MIMALLOC_"))}})
    start = time.time()
    plane_cpu_before = cpu_of(env.pid)
    peak = 0
    # VmHWM counts the binary's mapped code too; anonymous memory is what grows with the data.
    anon_peak = 0
    file_peak = 0
    ready = 0
    busy = []
    while time.time() - start < 900:
        busy.append(open("/proc/stat").readline().split()[1:8])
        status = open(f"/proc/{op.pid}/status").read()
        peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        anon_peak = max(anon_peak, int(re.search(r"RssAnon:\s+(\d+)", status).group(1)))
        file_peak = max(file_peak, int(re.search(r"RssFile:\s+(\d+)", status).group(1)))
        # The operator's own gauge: listing 10,000 objects every few seconds would load the API
        # server as much as the operator does.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            ready = len(re.findall(r"^unstoppable_backup_resource_ready\{[^}]*\} 1$", text, re.M))
        except OSError:
            pass
        if ready == total:
            break
        if len(busy) % 5 == 0:
            anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1)) / 1024
            print(f"  {time.time() - start:5.0f} s: {ready} Ready, anonymous {anon:.1f} MiB", flush=True)
        time.sleep(2)
    elapsed = time.time() - start
    first, last = [list(map(int, x)) for x in (busy[0], busy[-1])] if len(busy) > 1 else ([0] * 7, [1] * 7)
    ticks = sum(last) - sum(first)
    idle = (last[3] + last[4]) - (first[3] + first[4])
    cpu = cpu_of(op.pid)
    plane_cpu = cpu_of(env.pid) - plane_cpu_before
    after = requests_total(call)
    if args.dump_one:
        with open(args.dump_one, "w") as f:
            json.dump(json.loads(call("GET", "/apis/unstoppable.dev/v1alpha1/namespaces/tenant-000/backupresources/site-000")), f, indent=1)
    op.send_signal(signal.SIGTERM)
    op.wait()
    env.send_signal(signal.SIGTERM)
    env.wait()
    print(f"resources Ready: {ready}/{total} after {elapsed:.1f} s (operator log: {work}/operator.log)")
    print(f"operator peak RSS: {peak / 1024:.1f} MiB (sampled peaks: anonymous {anon_peak / 1024:.1f} MiB, "
          f"mapped files {file_peak / 1024:.1f} MiB), CPU: {cpu:.1f} s; machine busy {100 * (ticks - idle) / max(ticks, 1):.0f}%")
    print(f"control plane CPU meanwhile: {plane_cpu:.1f} s ({plane_cpu / max(cpu, 0.1):.1f}x the operator's)")
    # The goal at 10,000 resources: every one reconciled within a minute, under 64 MiB.
    print(f"against the goal: {elapsed / 60:.2f}x the minute, {peak / 1024 / 64:.2f}x the 64 MiB")
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
    n = sum(delta.values())
    print(f"API requests while reconciling (all clients, incl. the controller-manager): {n:.0f} ({n / max(ready, 1):.1f} per resource)")
    for (verb, resource, sub, code), v in sorted(delta.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {v:8.0f}  {verb} {resource}{'/' + sub if sub else ''} {code}")


if __name__ == "__main__":
    main()
