//! Real FTPS servers for the tests: vsftpd (LIST + MDTM, TLS session reuse required),
//! pyftpdlib (MLSD) and pure-ftpd (MLSD, capped listings, prohibited names).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::TestDir;

pub const FTP_USER: &str = "unstoppable-ftp";
pub const FTP_PASSWORD: &str = "ftp-test-password";
/// vsftpd changes into the home directory before `local_root`: it must exist.
const FTP_HOME: &str = "/srv/unstoppable-ftp";

/// A test CA and a server certificate for 127.0.0.1/localhost, shared by all servers.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let dir = TestDir::new();
        let (ca, cert, key) =
            unstoppable_job::demo::generate_certificates(dir.path()).expect("certificates");
        std::mem::forget(dir); // lives as long as the test process
        Tls { ca, cert, key }
    })
}

/// vsftpd logs in local Unix users: make sure ours exists with its password.
pub fn ensure_ftp_user() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let exists = Command::new("id")
            .arg(FTP_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            let ok = Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--home-dir",
                    FTP_HOME,
                    "--shell",
                    "/bin/bash",
                    FTP_USER,
                ])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "useradd {FTP_USER} failed (the tests need root)");
        }
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{FTP_USER}:{FTP_PASSWORD}\n").as_bytes())
            .expect("write chpasswd");
        assert!(child.wait().expect("chpasswd").success());
        std::fs::create_dir_all("/var/run/vsftpd/empty").expect("vsftpd secure_chroot_dir");
        std::fs::create_dir_all(FTP_HOME).expect("ftp home");
    });
}

/// Makes the FTP user own `path` (recursively), so that vsftpd may change what the test wrote.
pub fn give_to_ftp_user(path: &Path) {
    let owned = Command::new("chown")
        .args(["-R", FTP_USER])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    assert!(owned, "chown -R {FTP_USER} {} failed", path.display());
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A passive port range of its own for every server of this process.
fn passive_range() -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = 30000 + (std::process::id() % 50) as u16 * 400 + n * 20;
    (base, base + 19)
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on port {port} did not start");
}

#[derive(Debug, Clone, Default)]
pub struct VsftpdOptions {
    /// Bytes per second per transfer (to stop the server in the middle of one).
    pub max_rate: Option<u64>,
    /// Plain FTP only: no TLS offered (AUTH TLS refused).
    pub plain: bool,
    /// The user may write (`write_enable`), and owns `data/`: for restores onto the server.
    pub writable: bool,
    /// `mdtm_write=NO`: MDTM cannot set a file's time (vsftpd has no MFMT either).
    pub no_mdtm_write: bool,
}

/// vsftpd in the foreground, in its own process group, serving `root/data` as `/data`.
pub struct Vsftpd {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    /// The chroot; the tree to back up goes in `data/`.
    pub root: PathBuf,
    dir: TestDir,
    opts: VsftpdOptions,
}

impl Vsftpd {
    pub fn start(opts: VsftpdOptions) -> Self {
        ensure_ftp_user();
        let dir = TestDir::new();
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("data")).expect("ftp root");
        let mut server = Self {
            child: None,
            port: free_port(),
            log: dir.join("vsftpd.log"),
            root,
            dir,
            opts,
        };
        server.spawn();
        server
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn spawn(&mut self) {
        let tls = tls();
        let (pasv_min, pasv_max) = passive_range();
        let rate = self
            .opts
            .max_rate
            .map(|r| format!("local_max_rate={r}\n"))
            .unwrap_or_default();
        let ssl = if self.opts.plain {
            "ssl_enable=NO\n".to_string()
        } else {
            format!(
                "ssl_enable=YES\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
                 force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nssl_tlsv1=YES\nrequire_ssl_reuse=YES\n",
                cert = tls.cert.display(),
                key = tls.key.display(),
            )
        };
        let conf = format!(
            "listen=YES\nlisten_ipv6=NO\nbackground=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
             anonymous_enable=NO\nlocal_enable=YES\nwrite_enable={write}\nchroot_local_user=YES\n\
             local_root={root}\nsecure_chroot_dir=/var/run/vsftpd/empty\npam_service_name=vsftpd\n\
             pasv_enable=YES\npasv_address=127.0.0.1\npasv_min_port={pasv_min}\npasv_max_port={pasv_max}\n\
             {ssl}vsftpd_log_file={log}\nxferlog_enable=YES\nlog_ftp_protocol=YES\n\
             seccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n{rate}",
            port = self.port,
            root = self.root.display(),
            log = self.log.display(),
            write = if self.opts.writable { "YES" } else { "NO" },
        );
        let conf = if self.opts.no_mdtm_write {
            format!("{conf}mdtm_write=NO\n")
        } else {
            conf
        };
        if self.opts.writable {
            give_to_ftp_user(&self.data());
        }
        let conf_path = self.dir.join("vsftpd.conf");
        std::fs::write(&conf_path, conf).expect("vsftpd.conf");
        let child = Command::new(vsftpd_binary())
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vsftpd (run scripts/install-test-deps.sh)");
        self.child = Some(child);
        wait_for_port(self.port);
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            panic!(
                "vsftpd exited at start ({status}); see {}",
                self.log.display()
            );
        }
    }

    /// Kills vsftpd and every session process it forked, at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Session processes are forks that leave the process group; they all carry this
            // instance's unique config path on their command line.
            let conf = self.dir.join("vsftpd.conf");
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &conf.display().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the given options.
    pub fn restart(&mut self, opts: VsftpdOptions) {
        self.kill();
        self.opts = opts;
        self.spawn();
    }

    /// RETR commands received so far (from vsftpd's protocol log).
    pub fn retr_count(&self) -> usize {
        self.retr_paths().len()
    }

    pub fn retr_paths(&self) -> Vec<String> {
        self.command_args("RETR")
    }

    /// The arguments of every `verb` command received so far (from vsftpd's protocol log).
    pub fn command_args(&self, verb: &str) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let quoted = format!("\"{verb} ");
        log.lines()
            .filter_map(|l| l.split("FTP command: ").nth(1))
            .filter_map(|l| l.split(quoted.as_str()).nth(1))
            .map(|l| l.trim_end_matches('"').to_string())
            .collect()
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn vsftpd_binary() -> &'static str {
    if Path::new("/usr/sbin/vsftpd").exists() {
        "/usr/sbin/vsftpd"
    } else {
        "vsftpd"
    }
}

/// pyftpdlib with explicit TLS: a server that offers MLSD.
pub struct Pyftpd {
    child: Child,
    pub port: u16,
}

impl Pyftpd {
    /// Serves `root` (which appears as `/`).
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, None)
    }

    /// Like `start`; a file named `vanish` is deleted when a client asks to download it.
    pub fn start_with(root: &Path, vanish: Option<&str>) -> Self {
        Self::start_with_hooks(root, vanish, None)
    }

    /// Like `start_with`; a file named `grow` gets a line appended whenever it is downloaded.
    pub fn start_with_hooks(root: &Path, vanish: Option<&str>, grow: Option<&str>) -> Self {
        Self::spawn(root, vanish, grow, false, &[])
    }

    /// Like `start`, with a user that may also write (restores onto the server).
    pub fn start_writable(root: &Path) -> Self {
        Self::spawn(root, None, None, true, &[])
    }

    /// Without MLSD (LIST and MDTM only), LIST times shown `zone_hours` east of UTC and MDTM in
    /// UTC; every command received is appended to `log` (see [`Pyftpd::command_args`]).
    pub fn start_list_only(root: &Path, zone_hours: i32, log: &Path) -> Self {
        Self::spawn(
            root,
            None,
            None,
            false,
            &[
                ("PYFTPD_LIST_ONLY", "1".into()),
                ("PYFTPD_LIST_ZONE_HOURS", zone_hours.to_string()),
                ("PYFTPD_COMMAND_LOG", log.display().to_string()),
            ],
        )
    }

    /// The arguments of every `verb` command in a command log (see `start_list_only`).
    pub fn command_args(log: &Path, verb: &str) -> Vec<String> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let prefix = format!("{verb} ");
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_string)
            .collect()
    }

    fn spawn(
        root: &Path,
        vanish: Option<&str>,
        grow: Option<&str>,
        writable: bool,
        env: &[(&str, String)],
    ) -> Self {
        let tls = tls();
        let port = free_port();
        let (pasv_min, pasv_max) = passive_range();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mlsd_ftps_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(root)
            .arg(port.to_string())
            .arg(&tls.cert)
            .arg(&tls.key)
            .arg(FTP_USER)
            .arg(FTP_PASSWORD)
            .arg(pasv_min.to_string())
            .arg(pasv_max.to_string())
            .arg(vanish.unwrap_or("-"))
            .args(grow)
            .env("PYFTPD_WRITABLE", if writable { "1" } else { "0" })
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pyftpdlib (run scripts/install-test-deps.sh)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ready line");
        assert_eq!(line.trim(), "ready", "pyftpdlib did not start");
        wait_for_port(port);
        Self { child, port }
    }
}

impl Drop for Pyftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// pure-ftpd (Debian's package, unpacked by `scripts/install-test-deps.sh`, not installed: it
/// conflicts with vsftpd) with TLS required, a virtual user chrooted to `root/data`, and a
/// listing cap of `max_entries` (`-L`): larger directories are cut, which it says only in the
/// text of its `226` reply.
pub struct PureFtpd {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
    dir: TestDir,
    max_entries: usize,
}

impl PureFtpd {
    pub fn start(max_entries: usize) -> Self {
        ensure_ftp_user();
        let dir = TestDir::new();
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("data")).expect("ftp root");
        let mut server = Self {
            child: None,
            port: free_port(),
            root,
            dir,
            max_entries,
        };
        server.write_user_db();
        server.spawn();
        server
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn bin(name: &str) -> PathBuf {
        let base = std::env::var("UNSTOPPABLE_TEST_PURE_FTPD_DIR").unwrap_or_else(|_| {
            panic!("UNSTOPPABLE_TEST_PURE_FTPD_DIR is not set: run the tests with scripts/test.sh")
        });
        Path::new(&base).join(name)
    }

    fn id(flag: &str) -> String {
        let out = Command::new("id")
            .args([flag, FTP_USER])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write_user_db(&self) {
        let passwd = self.dir.join("pureftpd.passwd");
        let mut child = Command::new(Self::bin("usr/bin/pure-pw"))
            .args([
                "useradd",
                FTP_USER,
                "-u",
                &Self::id("-u"),
                "-g",
                &Self::id("-g"),
            ])
            .arg("-d")
            .arg(self.data())
            .arg("-f")
            .arg(&passwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("pure-pw");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{FTP_PASSWORD}\n{FTP_PASSWORD}\n").as_bytes())
            .expect("password");
        assert!(child.wait().expect("pure-pw").success(), "pure-pw useradd");
        let ok = Command::new(Self::bin("usr/bin/pure-pw"))
            .arg("mkdb")
            .arg(self.dir.join("pureftpd.pdb"))
            .arg("-f")
            .arg(&passwd)
            .status()
            .expect("pure-pw mkdb")
            .success();
        assert!(ok, "pure-pw mkdb");
    }

    fn spawn(&mut self) {
        let tls = tls();
        // pure-ftpd reads the key and the certificate from one file.
        let pem = self.dir.join("pure-ftpd.pem");
        let mut both = std::fs::read(&tls.key).expect("key");
        both.extend(std::fs::read(&tls.cert).expect("cert"));
        std::fs::write(&pem, both).expect("pem");
        let (pasv_min, pasv_max) = passive_range();
        let child = Command::new(Self::bin("usr/sbin/pure-ftpd"))
            .arg("-S")
            .arg(format!("127.0.0.1,{}", self.port))
            .arg("-l")
            .arg(format!(
                "puredb:{}",
                self.dir.join("pureftpd.pdb").display()
            ))
            .args(["-Y", "2", "-E", "-H", "-A"])
            .arg("-2")
            .arg(&pem)
            .arg("-p")
            .arg(format!("{pasv_min}:{pasv_max}"))
            .arg("-L")
            .arg(format!("{}:50", self.max_entries))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pure-ftpd (run scripts/install-test-deps.sh)");
        self.child = Some(child);
        wait_for_port(self.port);
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            panic!("pure-ftpd exited at start ({status})");
        }
    }

    /// Starts it again on the same port with another listing cap.
    pub fn restart(&mut self, max_entries: usize) {
        self.kill();
        self.max_entries = max_entries;
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Sessions run in forked processes that carry the listening port on their command
            // line only through the parent: kill the whole set by the unique pem path.
            let pem = self.dir.join("pure-ftpd.pem");
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &pem.display().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PureFtpd {
    fn drop(&mut self) {
        self.kill();
    }
}
