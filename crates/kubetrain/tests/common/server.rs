//! `kubetrain local` as a user runs it: the built binary on a free loopback port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const KUBETRAIN: &str = env!("CARGO_BIN_EXE_kubetrain");

/// A `kubetrain local` process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start(
        data_dir: &Path,
        workers: usize,
        trainer: Option<&Path>,
        log: Option<&Path>,
    ) -> Self {
        Self::start_with_path(data_dir, workers, trainer, log, None)
    }

    /// [`Server::start`] with `bin` first on the server's PATH (where custom runs find their
    /// programs).
    pub fn start_with_path(
        data_dir: &Path,
        workers: usize,
        trainer: Option<&Path>,
        log: Option<&Path>,
        bin: Option<&Path>,
    ) -> Self {
        Self::start_with_args(data_dir, workers, trainer, log, bin, &[])
    }

    /// [`Server::start_with_path`] with more arguments for `kubetrain local`.
    pub fn start_with_args(
        data_dir: &Path,
        workers: usize,
        trainer: Option<&Path>,
        log: Option<&Path>,
        bin: Option<&Path>,
        args: &[&str],
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(KUBETRAIN);
        command
            .args([
                "local",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--workers",
            ])
            .arg(workers.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("TEST_KUBETRAIN_BIN", KUBETRAIN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(trainer) = trainer {
            command.arg("--trainer").arg(trainer);
        }
        if let Some(log) = log {
            command.env("TEST_TRAINER_LOG", log);
        }
        if let Some(bin) = bin {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path));
            command.env("PATH", std::env::join_paths(paths).unwrap());
        }
        let child = command.spawn().unwrap();
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubetrain local did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POST `run` to the default namespace: the answer's status and JSON body.
    pub async fn post(&self, run: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/namespaces/default/trainingruns", self.url))
            .json(run)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// POST `run` and expect it created (201).
    pub async fn create(&self, run: Value) -> Value {
        let (status, body) = self.post(&run).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn get(&self, name: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!(
                "{}/v1/namespaces/default/trainingruns/{name}",
                self.url
            ))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Poll the run until `done` holds for it (at most `seconds`).
    pub async fn wait_for(&self, name: &str, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let (_, run) = self.get(name).await;
            if done(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {name} did not reach the expected state in {seconds}s: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: &str, seconds: u64) -> Value {
        self.wait_for(name, seconds, |r| r["status"]["phase"] == phase)
            .await
    }

    pub fn sigterm(&mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "kubetrain local ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
