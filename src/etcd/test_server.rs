//! A real etcd for tests: `/usr/bin/etcd` on free 127.0.0.1 ports in a
//! temporary directory, killed on drop; restartable on the same data
//! directory and ports ("etcd restarted mid-run").
//!
//! A missing binary fails the test ("install etcd-server"): tests of the
//! etcd client are never skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary the tests run.
pub(crate) const ETCD: &str = "/usr/bin/etcd";
/// The etcdctl binary the tests run.
pub(crate) const ETCDCTL: &str = "/usr/bin/etcdctl";

/// TLS files for an etcd served over https with client certificates.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    /// The CA that signed both certificates.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate and its key.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

/// A running etcd, killed on drop.
pub(crate) struct TestEtcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<TlsFiles>,
    child: Option<Child>,
    starts: u32,
}

/// A port free right now on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

impl TestEtcd {
    /// An etcd over plain http.
    pub(crate) fn start() -> TestEtcd {
        TestEtcd::start_with(None)
    }

    /// An etcd over https requiring client certificates, with a CA and
    /// certificates made by the `openssl` CLI in its directory.
    pub(crate) fn start_tls() -> TestEtcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = make_certificates(dir.path());
        TestEtcd::start_in(dir, Some(tls))
    }

    fn start_with(tls: Option<TlsFiles>) -> TestEtcd {
        TestEtcd::start_in(tempfile::tempdir().expect("tempdir"), tls)
    }

    fn start_in(dir: tempfile::TempDir, tls: Option<TlsFiles>) -> TestEtcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install etcd-server (apt-get install etcd-server)"
        );
        let mut etcd = TestEtcd {
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            tls,
            child: None,
            starts: 0,
        };
        etcd.launch();
        etcd
    }

    /// The client URL (`http://` or `https://127.0.0.1:PORT`).
    pub(crate) fn url(&self) -> url::Url {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        url::Url::parse(&format!("{scheme}://127.0.0.1:{}", self.client_port)).expect("url")
    }

    /// The TLS files, for an https etcd.
    pub(crate) fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The temporary directory (data directory, logs, certificates).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops etcd (SIGTERM, then SIGKILL after 10 s) and waits for it.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }

    /// Stops etcd and starts it again on the same data directory and ports.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Runs etcdctl against this etcd (with the client certificate when
    /// https); panics with its output when it fails.
    pub(crate) fn etcdctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(ETCDCTL);
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()));
        if let Some(t) = &self.tls {
            cmd.arg(format!("--cacert={}", t.ca.display()))
                .arg(format!("--cert={}", t.client_cert.display()))
                .arg(format!("--key={}", t.client_key.display()));
        }
        let out = cmd.args(args).output().expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates user `root` with `password` (and the root role) and
    /// enables authentication.
    pub(crate) fn enable_auth(&self, password: &str) {
        self.etcdctl(&["user", "add", &format!("root:{password}")]);
        self.etcdctl(&["role", "add", "root"]);
        self.etcdctl(&["user", "grant-role", "root", "root"]);
        self.etcdctl(&["auth", "enable"]);
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log_path = self.dir.path().join(format!("etcd-{}.log", self.starts));
        let log = std::fs::File::create(&log_path).expect("create the etcd log");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new(ETCD);
        cmd.arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("default={peer}"));
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&t.ca);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("ready to serve client requests") {
                break;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited ({status}) before serving:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "etcd not ready within 30 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.tls.is_none() {
            self.wait_health(deadline);
        }
    }

    /// Waits until `GET /health` answers (plain http only).
    fn wait_health(&self, deadline: Instant) {
        use std::io::{Read, Write};
        loop {
            let answered = std::net::TcpStream::connect(("127.0.0.1", self.client_port))
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
                    let mut answer = String::new();
                    s.read_to_string(&mut answer)?;
                    Ok(answer.contains("\"health\":\"true\""))
                })
                .unwrap_or(false);
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd /health not true within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `openssl` with `args` in `dir`, panicking with its output on
/// failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate
/// (P-256 keys) in `dir`.
pub(crate) fn make_certificates(dir: &Path) -> TlsFiles {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=upkeep test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write server.ext");
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )
    .expect("write client.ext");
    for (name, cn) in [("server", "127.0.0.1"), ("client", "root")] {
        let (key, csr, pem, ext, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
            format!("/CN={cn}"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
    TlsFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}
