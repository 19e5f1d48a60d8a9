#!/usr/bin/env python3
"""Benchmark: unstoppable-job against what a user would do without it, on one generated tree.

Serves a deterministic tree (many small files plus some large ones, >= 1 GiB by default) from
vsftpd over FTPS on 127.0.0.1, with SeaweedFS as the S3 cold store, and measures in one run:

  a) raw FTPS download of the whole tree to /dev/null with lftp (4 connections) - the limit
  b) `lftp mirror` (4 connections) to local disk, then `restic backup` of that copy to S3
  c) unstoppable-job full backup (4 connections)
  d) unstoppable-job incremental backup after changing 1 % of the files

Further rows: e-j always (unchanged runs, restore, check --read-data); --large adds k/l (large
files at 1 connection), --wide N adds m-p (a wide and deep tree's full and unchanged run, the unchanged
run with MDTM for every file, and listing the tree with lftp), --scale N adds q/r (N tiny files in
N/100 directories).

For each: wall time, peak RSS, bytes downloaded and bytes written to local disk, then the ratios.
Needs root (vsftpd logs in a local user) and the tools of scripts/install-test-deps.sh.
Not part of the test suite. Usage: bench/run.sh [--gib 1.0] [--keep]
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import time

FTP_USER = "unstoppable-ftp"
FTP_PASSWORD = "ftp-test-password"
FTP_HOME = "/srv/unstoppable-ftp"
REPO_PASSWORD = "bench-repository-password"
S3_KEY, S3_SECRET = "bench-key", "bench-secret"
CONNECTIONS = 4


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on port {port}")


def generate_tree(root, gib, seed, small=0):
    """~14 % small files (1-96 KiB; `small` of them if given) in many directories, the rest 40 MiB
    files; half random, half compressible. Returns the list of relative file paths."""
    rng = random.Random(seed)
    target = int(gib * 1024**3)
    small_count = small or max(100, int(target * 0.14 / (48 * 1024)))
    files = []

    def content(n):
        if rng.random() < 0.5:
            return rng.randbytes(n)
        word = f"line {rng.randrange(1000)} of benchmark data\n".encode()
        return (word * (n // len(word) + 1))[:n]

    total = 0
    for i in range(small_count):
        rel = f"site/d{i % 50:02}/sub{i % 7}/f{i:05}.dat"
        data = content(rng.randrange(1024, 96 * 1024))
        files.append((rel, data))
        total += len(data)
    i = 0
    while total < target:
        data = content(40 * 1024 * 1024)
        files.append((f"media/large{i:03}.bin", data))
        total += len(data)
        i += 1
    mtime = 1_767_225_600
    for rel, data in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (mtime, mtime))
    return [rel for rel, _ in files], total


def old_tree(d, n, mtime, seed=0):
    """`n` tiny files in directory `d`, last changed around `mtime` (a few seconds apart)."""
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        path = f"{d}/f{i}.txt"
        with open(path, "w") as f:
            f.write(f"file {seed}/{i}\n" * (1 + (i + seed) % 7))
        os.utime(path, (mtime - i, mtime - i))


def ensure_ftp_user():
    if subprocess.run(["id", FTP_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", FTP_HOME, "--shell", "/bin/bash", FTP_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{FTP_USER}:{FTP_PASSWORD}\n", text=True, check=True)
    os.makedirs(FTP_HOME, exist_ok=True)
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)


def make_certs(d):
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench CA",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf", "-out", f"{d}/server.pem")


def start_vsftpd(work, root):
    port = free_port()
    conf = f"""listen=YES
listen_ipv6=NO
background=NO
listen_address=127.0.0.1
listen_port={port}
anonymous_enable=NO
local_enable=YES
write_enable=NO
chroot_local_user=YES
local_root={root}
secure_chroot_dir=/var/run/vsftpd/empty
pam_service_name=vsftpd
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=47000
pasv_max_port=47099
ssl_enable=YES
rsa_cert_file={work}/tls/server.pem
rsa_private_key_file={work}/tls/server.key
force_local_logins_ssl=YES
force_local_data_ssl=YES
ssl_tlsv1=YES
require_ssl_reuse=YES
vsftpd_log_file={work}/vsftpd.log
xferlog_enable=YES
log_ftp_protocol=YES
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
"""
    path = f"{work}/vsftpd.conf"
    with open(path, "w") as f:
        f.write(conf)
    proc = subprocess.Popen(["/usr/sbin/vsftpd", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port, path


def start_weed(work):
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    os.makedirs(f"{work}/weed", exist_ok=True)
    proc = subprocess.Popen(["weed", "mini", f"-dir={work}/weed", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                             f"-s3.port={port}", "-admin.ui=false",
                             # Not "free disk / volume size": each bucket needs volumes of its own.
                             "-volume.max=2000"],
                            stdout=open(f"{work}/weed.log", "w"), stderr=subprocess.STDOUT, env=env)
    wait_port(port)
    time.sleep(2)
    endpoint = f"http://127.0.0.1:{port}"
    for bucket in ("bench-ours", "bench-restic"):
        for _ in range(30):
            r = subprocess.run(["aws", "--endpoint-url", endpoint, "--region", "us-east-1", "s3api", "create-bucket",
                                "--bucket", bucket], env=env, capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(1)
        else:
            sys.exit(f"cannot create bucket {bucket}: {r.stderr.decode()}")
    return proc, endpoint


def timed(cmd, env=None, stdout=subprocess.PIPE, shell=False):
    """Runs cmd under GNU time; returns (wall seconds, peak RSS bytes, completed process)."""
    tfile = tempfile.NamedTemporaryFile(delete=False)
    tfile.close()
    full = ["/usr/bin/time", "-v", "-o", tfile.name] + (["bash", "-c", cmd] if shell else cmd)
    start = time.monotonic()
    proc = subprocess.run(full, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - start
    stats = open(tfile.name).read()
    os.unlink(tfile.name)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stats)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {cmd}\n{proc.stderr[-3000:]}")
    # CPU seconds (user + system) of the command and its children, for the CPU accounts below.
    proc.cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", stats))
    return wall, int(m.group(1)) * 1024 if m else 0, proc


def cpu_seconds(pid):
    """CPU seconds of a process and of its children it has reaped (vsftpd's sessions end as
    children of its listener)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def du(path):
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


def lftp_settings(work, port):
    return (f"set ssl:ca-file {work}/tls/ca.pem; set ftp:ssl-force true; set ftp:ssl-protect-data true; "
            f"set ftp:passive-mode true; set net:max-retries 1; "
            f"open -u {FTP_USER},{FTP_PASSWORD} ftp://127.0.0.1:{port}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--job", default="target/release/unstoppable-job")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--unchanged-runs", type=int, default=5)
    ap.add_argument("--large", action="store_true", help="also 16 x 50 MiB random files at 1 connection")
    ap.add_argument("--small", type=int, default=0,
                    help="small files in the tree (default: 14 %% of --gib); the rest is 40 MiB files")
    ap.add_argument("--connections", action="store_true",
                    help="also the tree at 8 connections (lftp mirror + restic, and ours) and ours at 1")
    ap.add_argument("--wide", type=int, default=0,
                    help="also a directory of this many tiny files and a 40-deep path (unchanged run vs lftp find)")
    ap.add_argument("--scale", type=int, default=0,
                    help="also this many tiny files in one directory per 100 (full and unchanged run)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: vsftpd logs in a local user")
    job = os.path.abspath(args.job)
    work = tempfile.mkdtemp(prefix="unstoppable-bench-", dir="/var/tmp")
    os.chmod(work, 0o755)
    procs = []
    try:
        ensure_ftp_user()
        os.makedirs(f"{work}/tls")
        make_certs(f"{work}/tls")
        root = f"{work}/ftp"
        os.makedirs(f"{root}/data")
        os.chmod(root, 0o755)
        print(f"generating a {args.gib} GiB tree (seed {args.seed}) ...", flush=True)
        files, total = generate_tree(f"{root}/data", args.gib, args.seed, args.small)
        print(f"tree: {len(files)} files, {total / 2**20:.0f} MiB", flush=True)
        vsftpd, port, _ = start_vsftpd(work, root)
        procs.append(vsftpd)
        weed, endpoint = start_weed(work)
        procs.append(weed)
        results = {}

        # a) raw download to /dev/null, CONNECTIONS lftp sessions each `cat`-ing its share.
        shares = [files[i::CONNECTIONS] for i in range(CONNECTIONS)]
        scripts = []
        for i, share in enumerate(shares):
            path = f"{work}/cat{i}.lftp"
            with open(path, "w") as f:
                f.write(lftp_settings(work, port) + "\n")
                for rel in share:
                    f.write(f'cat "/data/{rel}"\n')
            scripts.append(path)
        cmd = " & ".join(f"lftp -f {s} > /dev/null" for s in scripts) + " & wait"
        wall, rss, _ = timed(cmd, shell=True)
        results["a"] = dict(name="raw FTPS download to /dev/null (lftp, 4 conn.)", wall=wall, rss=rss,
                            downloaded=total, disk=0)
        print(f"a: {wall:.1f} s", flush=True)

        # b) lftp mirror to disk, then restic backup of the copy.
        staging = f"{work}/staging"
        wall1, rss1, _ = timed(["lftp", "-c", lftp_settings(work, port) + f"; mirror --parallel={CONNECTIONS} /data {staging}"])
        renv = dict(os.environ, RESTIC_PASSWORD=REPO_PASSWORD, AWS_ACCESS_KEY_ID=S3_KEY,
                    AWS_SECRET_ACCESS_KEY=S3_SECRET, RESTIC_CACHE_DIR=f"{work}/restic-cache")
        repo = f"s3:{endpoint}/bench-restic/repo"
        subprocess.run(["restic", "-r", repo, "init"], env=renv, check=True, capture_output=True)
        weed_before = cpu_seconds(weed.pid)
        wall2, rss2, restic_proc = timed(["restic", "-r", repo, "backup", "--compression", "auto", staging], env=renv)
        restic_cpu = (restic_proc.cpu, cpu_seconds(weed.pid) - weed_before)
        results["b"] = dict(name="lftp mirror to disk + restic backup", wall=wall1 + wall2, rss=max(rss1, rss2),
                            downloaded=total, disk=du(staging) + du(f"{work}/restic-cache"))
        print(f"b: {wall1:.1f} s + {wall2:.1f} s", flush=True)
        shutil.rmtree(staging)

        # c) our full backup.
        jenv = dict(os.environ,
                    UNSTOPPABLE_CUSTOMER="bench", UNSTOPPABLE_RESOURCE="site",
                    UNSTOPPABLE_FTPS_HOST="127.0.0.1", UNSTOPPABLE_FTPS_PORT=str(port),
                    UNSTOPPABLE_FTPS_USERNAME=FTP_USER, UNSTOPPABLE_FTPS_PASSWORD=FTP_PASSWORD,
                    UNSTOPPABLE_FTPS_PATH="/data", UNSTOPPABLE_FTPS_CA_FILE=f"{work}/tls/ca.pem",
                    UNSTOPPABLE_FTPS_MAX_CONNECTIONS=str(CONNECTIONS),
                    UNSTOPPABLE_REPOSITORY_HOT_DIR=f"{work}/hot", UNSTOPPABLE_REPOSITORY_PASSWORD=REPO_PASSWORD,
                    UNSTOPPABLE_S3_ENDPOINT=endpoint, UNSTOPPABLE_S3_BUCKET="bench-ours",
                    UNSTOPPABLE_S3_ACCESS_KEY_ID=S3_KEY, UNSTOPPABLE_S3_SECRET_ACCESS_KEY=S3_SECRET,
                    UNSTOPPABLE_SUMMARY_PATH="", UNSTOPPABLE_PROGRESS_INTERVAL_SECS="0", RUST_LOG="warn")
        wall, rss, proc = timed([job, "backup"], env=jenv)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        results["c"] = dict(name="unstoppable-job full backup", wall=wall, rss=rss,
                            downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot"))
        print(f"c: {wall:.1f} s", flush=True)

        # s/t/u) the same tree at 8 connections (lftp mirror + restic against ours) and ours at 1:
        # the lead over staging must hold as lftp gets more connections, and our time stay flat.
        if args.connections:
            wall1, rss1, _ = timed(["lftp", "-c", lftp_settings(work, port) + f"; mirror --parallel=8 /data {staging}"])
            shutil.rmtree(staging)
            # restic archives the same staged copy as in b: its time from b stands.
            results["s"] = dict(name="lftp mirror (8 conn.) + restic backup", wall=wall1 + wall2, rss=max(rss1, rss2),
                                downloaded=total, disk=0)
            for key, conns in (("t", 8), ("u", 1)):
                cenv = dict(jenv, UNSTOPPABLE_RESOURCE=f"site-{conns}", UNSTOPPABLE_FTPS_MAX_CONNECTIONS=str(conns),
                            UNSTOPPABLE_REPOSITORY_HOT_DIR=f"{work}/hot-{conns}")
                servers_before = cpu_seconds(vsftpd.pid), cpu_seconds(weed.pid)
                wall, rss, proc = timed([job, "backup"], env=cenv)
                time.sleep(1)  # vsftpd's sessions end and are reaped
                servers = [cpu_seconds(p.pid) - b for p, b in zip((vsftpd, weed), servers_before)]
                summary = json.loads(proc.stdout.strip().splitlines()[-1])
                results[key] = dict(name=f"unstoppable-job full backup, {conns} conn.", wall=wall, rss=rss,
                                    downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot-{conns}"),
                                    cpu=(proc.cpu, *servers))
            print(f"s: {results['s']['wall']:.1f} s, t: {results['t']['wall']:.1f} s, u: {results['u']['wall']:.1f} s",
                  flush=True)

        # d) change 1 % of the files, incremental backup.
        rng = random.Random(args.seed + 1)
        changed = rng.sample(files, max(1, len(files) // 100))
        changed_bytes = 0
        for rel in changed:
            path = f"{root}/data/{rel}"
            size = os.path.getsize(path)
            with open(path, "wb") as f:
                f.write(rng.randbytes(size))
            os.utime(path, (1_767_300_000, 1_767_300_000))
            changed_bytes += size
        hot_before = du(f"{work}/hot")
        wall, rss, proc = timed([job, "backup"], env=jenv)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        results["d"] = dict(name=f"unstoppable-job incremental ({len(changed)} files changed)", wall=wall, rss=rss,
                            downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot") - hot_before)
        print(f"d: {wall:.1f} s", flush=True)

        # e/f) unchanged re-runs with the change profile and verdict on (the default) and off,
        # interleaved so that both see the same machine; medians of --unchanged-runs each.
        walls = {"true": [], "false": []}
        downloads = {"true": 0, "false": 0}
        for _ in range(args.unchanged_runs):
            for enabled in ("true", "false"):
                wall, _, proc = timed([job, "backup"], env=dict(jenv, UNSTOPPABLE_ANOMALY_ENABLED=enabled))
                summary = json.loads(proc.stdout.strip().splitlines()[-1])
                walls[enabled].append(wall)
                downloads[enabled] += summary["filesDownloaded"]
                if enabled == "true" and "changes" not in summary:
                    sys.exit("the profiled run reported no change profile")
        for key, enabled, what in (("e", "true", "on"), ("f", "false", "off")):
            results[key] = dict(name=f"unchanged re-run, change profile {what} (median of {args.unchanged_runs})",
                                wall=statistics.median(walls[enabled]), rss=0, downloaded=0, disk=0)
        print(f"e/f: {walls}", flush=True)

        # g/h) restore of the latest snapshot to local disk: ours (hot part + bucket) and restic's
        # (of the bucket, which is a plain restic repository); the two trees must be the same.
        ours_dir, restic_dir = f"{work}/restore-ours", f"{work}/restore-restic"
        wall, rss, proc = timed([job, "restore", "--target", ours_dir], env=jenv)
        results["g"] = dict(name="unstoppable-job restore latest (local disk)", wall=wall, rss=rss,
                            downloaded=du(ours_dir), disk=du(ours_dir))
        renv_ours = dict(renv, RESTIC_CACHE_DIR=f"{work}/restic-cache-ours")
        wall, rss, _ = timed(["restic", "-r", f"s3:{endpoint}/bench-ours/site", "restore", "latest",
                              "--target", restic_dir], env=renv_ours)
        results["h"] = dict(name="restic restore latest of the same bucket", wall=wall, rss=rss,
                            downloaded=du(restic_dir), disk=du(restic_dir))
        # restic restores under the snapshot's path; ours restores the backed-up directory itself.
        nested = f"{restic_dir}/data"
        theirs = nested if os.path.isdir(nested) and not os.path.isdir(f"{ours_dir}/data") else restic_dir
        same = subprocess.run(["diff", "-r", "-q", ours_dir, theirs], capture_output=True, text=True)
        if same.returncode != 0:
            sys.exit(f"the two restores differ:\n{same.stdout[:2000]}{same.stderr[:2000]}")
        print(f"g: {results['g']['wall']:.1f} s, h: {wall:.1f} s; identical trees", flush=True)

        # i/j) reading every pack back: our check --read-data and restic's, same repository.
        wall, rss, _ = timed([job, "check", "--read-data"], env=jenv)
        results["i"] = dict(name="unstoppable-job check --read-data", wall=wall, rss=rss, downloaded=0, disk=0)
        wall, rss, _ = timed(["restic", "-r", f"s3:{endpoint}/bench-ours/site", "check", "--read-data"],
                             env=renv_ours)
        results["j"] = dict(name="restic check --read-data of the same bucket", wall=wall, rss=rss, downloaded=0,
                            disk=0)
        print(f"i: {results['i']['wall']:.1f} s, j: {wall:.1f} s", flush=True)

        # k/l) large files at 1 connection: lftp mirror + restic backup against ours.
        if args.large:
            large = f"{root}/large"
            os.makedirs(large)
            lrng = random.Random(args.seed + 7)
            for i in range(16):
                with open(f"{large}/big{i:02}.bin", "wb") as f:
                    f.write(lrng.randbytes(50 * 2**20))
            staging = f"{work}/staging-large"
            wall1, rss1, _ = timed(["lftp", "-c", lftp_settings(work, port) + f"; mirror --parallel=1 /large {staging}"])
            lrepo = f"s3:{endpoint}/bench-restic/large"
            subprocess.run(["restic", "-r", lrepo, "init"], env=renv, check=True, capture_output=True)
            wall2, rss2, _ = timed(["restic", "-r", lrepo, "backup", "--compression", "auto", staging], env=renv)
            results["k"] = dict(name="16 x 50 MiB random: lftp mirror (1 conn.) + restic", wall=wall1 + wall2,
                                rss=max(rss1, rss2), downloaded=16 * 50 * 2**20, disk=du(staging))
            shutil.rmtree(staging)
            lenv = dict(jenv, UNSTOPPABLE_RESOURCE="large", UNSTOPPABLE_FTPS_PATH="/large",
                        UNSTOPPABLE_FTPS_MAX_CONNECTIONS="1", UNSTOPPABLE_REPOSITORY_HOT_DIR=f"{work}/hot-large")
            wall, rss, proc = timed([job, "backup"], env=lenv)
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            results["l"] = dict(name="16 x 50 MiB random: unstoppable-job (1 conn.)", wall=wall, rss=rss,
                                downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot-large"))
            print(f"k: {wall1:.1f} s + {wall2:.1f} s, l: {wall:.1f} s", flush=True)

        # m/n/o) one directory of --wide tiny files and a 40-deep path on vsftpd (LIST + MDTM), the
        # files last changed a month ago as most of a site's are: the full run, the unchanged one
        # (which only lists, and dates from the previous snapshot what LIST shows unchanged), and
        # the time lftp needs just to list the same tree.
        if args.wide:
            wide = f"{root}/wide"
            old_tree(f"{wide}/flat", args.wide, time.time() - 30 * 86400)
            deep = wide
            for level in range(1, 41):
                deep = f"{deep}/d{level}"
                old_tree(deep, 1, time.time() - 30 * 86400)
            count = args.wide + 40
            wenv = dict(jenv, UNSTOPPABLE_RESOURCE="wide", UNSTOPPABLE_FTPS_PATH="/wide",
                        UNSTOPPABLE_REPOSITORY_HOT_DIR=f"{work}/hot-wide")
            # o: what unchanged runs cost before LIST lines could spare MDTM (a ten-year allowance
            # for the server's clock makes every file's MDTM necessary again).
            every_mdtm = dict(wenv, UNSTOPPABLE_FTPS_CLOCK_SKEW_SECS=str(10 * 365 * 86400))
            runs = {"m": [], "n": [], "o": []}
            for key in ["m"] + ["n", "o"] * max(1, args.unchanged_runs):
                runs[key].append(timed([job, "backup"], env=every_mdtm if key == "o" else wenv))
            for key, what in (("m", "full"), ("n", "unchanged"), ("o", "unchanged, MDTM each")):
                wall, rss, proc = sorted(runs[key], key=lambda r: r[0])[len(runs[key]) // 2]
                summary = json.loads(proc.stdout.strip().splitlines()[-1])
                results[key] = dict(name=f"{count} files, 10k in a dir, 40 deep: {what}", wall=wall, rss=rss,
                                    downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot-wide"))
            wall, rss, proc = timed(["lftp", "-c", lftp_settings(work, port) + "; find /wide"])
            listed = len(proc.stdout.splitlines())
            results["p"] = dict(name=f"lftp find: list the same tree ({listed} names)", wall=wall, rss=rss,
                                downloaded=0, disk=0)
            print(f"m: {results['m']['wall']:.1f} s, n: {results['n']['wall']:.1f} s, "
                  f"o: {results['o']['wall']:.1f} s, p: {wall:.1f} s", flush=True)

        # q/r) --scale N tiny files in N/100 directories (LIST + MDTM): full and unchanged run, with
        # peak memory and the hot part's size, to compare between sizes (run it at 20000 and 200000).
        if args.scale:
            scale = f"{root}/scale"
            dirs = max(1, args.scale // 100)
            for d in range(dirs):
                old_tree(f"{scale}/dir{d:05}", args.scale // dirs, time.time() - 30 * 86400, seed=d)
            senv = dict(jenv, UNSTOPPABLE_RESOURCE="scale", UNSTOPPABLE_FTPS_PATH="/scale",
                        UNSTOPPABLE_REPOSITORY_HOT_DIR=f"{work}/hot-scale")
            for key, what in (("q", "full"), ("r", "unchanged")):
                wall, rss, proc = timed([job, "backup"], env=senv)
                summary = json.loads(proc.stdout.strip().splitlines()[-1])
                results[key] = dict(name=f"{args.scale} tiny files in {dirs} dirs: {what}", wall=wall, rss=rss,
                                    downloaded=summary["bytesDownloaded"], disk=du(f"{work}/hot-scale"))
                print(f"{key}: {wall:.1f} s, {rss / 2**20:.0f} MiB", flush=True)

        print()
        print(f"tree: {len(files)} files, {total / 2**20:.0f} MiB; FTPS over loopback, vsftpd, {CONNECTIONS} connections")
        print(f"{'':2} {'what':52} {'wall s':>8} {'MiB/s':>8} {'peak RSS MiB':>13} {'downloaded MiB':>15} {'local disk MiB':>15}")
        for key in [k for k in "abcstudefghijklmnopqr" if k in results]:
            r = results[key]
            rate = r["downloaded"] / 2**20 / r["wall"] if r["wall"] else 0
            print(f"{key}) {r['name']:52} {r['wall']:8.1f} {rate:8.1f} {r['rss'] / 2**20:13.0f} "
                  f"{r['downloaded'] / 2**20:15.1f} {r['disk'] / 2**20:15.1f}")
        a, b, c, d = (results[k] for k in "abcd")
        print()
        print("local disk for b is the staged copy plus restic's cache; for c/d it is the hot part (metadata only)")
        print(f"c/a wall time: {c['wall'] / a['wall']:.2f}  (c throughput = {a['wall'] / c['wall']:.2f} x a; target >= 0.80)")
        print(f"b/c wall time: {b['wall'] / c['wall']:.2f}  (target >= 1.5)")
        if args.connections:
            print(f"s/t wall time at 8 connections: {results['s']['wall'] / results['t']['wall']:.2f}  (target >= 5 with b/c);"
                  f" ours at 1 / 4 / 8 connections: {results['u']['wall']:.1f} / {c['wall']:.1f} / {results['t']['wall']:.1f} s")
            # What the machine can do at all: the FTPS server and the S3 server share its cores.
            job_cpu, ftpd_cpu, s3_cpu = results["t"]["cpu"]
            cores = os.cpu_count() or 1
            floor = (restic_cpu[0] + ftpd_cpu + s3_cpu) / cores
            print(f"t CPU seconds: job {job_cpu:.1f}, vsftpd {ftpd_cpu:.1f}, SeaweedFS {s3_cpu:.1f}; restic archiving the "
                  f"staged copy: {restic_cpu[0]:.1f} (SeaweedFS {restic_cpu[1]:.1f}). On {cores} cores an archiver as "
                  f"frugal as restic, fed by this vsftpd, needs at least {floor:.1f} s: s/t <= {results['s']['wall'] / floor:.2f}")
        print(f"d/c wall time: {d['wall'] / c['wall']:.3f}")
        print(f"d downloaded / changed bytes: {d['downloaded'] / changed_bytes:.3f}  (target 1.00-1.05: every changed byte, little more)")
        e, f = results["e"], results["f"]
        print(f"e/f wall time: {e['wall'] / f['wall']:.3f} median, {min(walls['true']) / min(walls['false']):.3f} fastest"
              f"  (the change profile's cost on an unchanged run; target ~1.0)")
        print(f"files downloaded by the unchanged runs: profile on {downloads['true']}, off {downloads['false']}  (target 0: no RETR)")
        g, h = results["g"], results["h"]
        print(f"g/h restore wall time: {g['wall'] / h['wall']:.2f}  (target <= 1.0)   "
              f"g/h restore peak RSS: {g['rss'] / h['rss']:.2f}  (target <= 1.0, and flat in the snapshot's size)")
        if args.large:
            print(f"k/l large files, 1 connection, wall time: {results['k']['wall'] / results['l']['wall']:.2f}"
                  f"  (target >= 1.25)")
        if args.wide:
            print(f"n/p unchanged wide/deep run against listing it with lftp: {results['n']['wall'] / results['p']['wall']:.2f}"
                  f"  (target <= 1.2); o/n with MDTM for every file: {results['o']['wall'] / results['n']['wall']:.2f}")
        if args.scale:
            print(f"{args.scale} files: full {results['q']['wall']:.1f} s, unchanged {results['r']['wall']:.1f} s, "
                  f"peak RSS {results['q']['rss'] / 2**20:.0f} / {results['r']['rss'] / 2**20:.0f} MiB, "
                  f"hot part {results['r']['disk'] / 2**20:.1f} MiB")
        i, j = results["i"], results["j"]
        print(f"i/j check --read-data wall time: {i['wall'] / j['wall']:.2f}   peak RSS: {i['rss'] / j['rss']:.2f}"
              f"  (target <= 1.0)")
    finally:
        for p in procs:
            p.terminate()
        subprocess.run(["pkill", "-KILL", "-f", f"{work}/vsftpd.conf"], capture_output=True)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
