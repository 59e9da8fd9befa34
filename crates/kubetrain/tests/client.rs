//! `kubetrain submit`, `get`, `list` and `cancel` as a user runs them: the built binary against
//! a real `kubetrain local` (SQLite, a pool of real trainer processes) on a free loopback port,
//! training on the datasets in `tests/data`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{data, text};
use sha2::{Digest, Sha256};

fn kubetrain_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubetrain")
}

/// How long one client command may take (a submit trains a small model).
const CLI_DEADLINE: Duration = Duration::from_secs(120);

/// Wait for `child` to exit and collect its output; kill it and fail after `deadline`.
fn finish(child: Child, deadline: Duration, what: &str) -> Output {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output().unwrap()));
    match result.recv_timeout(deadline) {
        Ok(output) => output,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("`{what}` did not finish within {} s", deadline.as_secs());
        }
    }
}

/// A `kubetrain local` on a free port with its own data directory; killed on drop.
struct Local {
    child: Child,
    port: u16,
    extra: Vec<String>,
    url: String,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Local {
    fn start() -> Local {
        Self::start_with(&[])
    }

    /// Start with more flags of `kubetrain local`: `{dir}` in one stands for the test's
    /// directory, and a `--tokens` file is written with one token, `s3cret`, for user alice in
    /// namespace ml.
    fn start_with(extra: &[&str]) -> Local {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("local.log");
        let extra: Vec<String> = extra
            .iter()
            .map(|arg| arg.replace("{dir}", &dir.path().display().to_string()))
            .collect();
        if let Some(tokens) = extra.iter().position(|arg| arg == "--tokens") {
            std::fs::write(
                &extra[tokens + 1],
                "tokens:\n  - {token: s3cret, user: alice, namespaces: [ml]}\n",
            )
            .unwrap();
        }
        let child = Self::spawn(dir.path(), port, &log, &extra);
        let mut local = Local {
            child,
            port,
            extra,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            log,
        };
        local.wait_ready();
        local
    }

    fn spawn(dir: &Path, port: u16, log: &Path, extra: &[String]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(kubetrain_bin())
            .args([
                "local",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--workers",
                "2",
            ])
            .arg("--data-dir")
            .arg(dir.join("state"))
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Kill the server (no drain) and start it again on the same port and data directory.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.dir.path(), self.port, &self.log, &self.extra);
        self.wait_ready();
    }

    /// Wait until `kubetrain list` answers, failing early when the server exited.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("kubetrain local exited with {status}: {}", self.log());
            }
            // Any answer from the server (a 401 included) means it is up.
            let list = self.cli(&["list"]);
            if list.status.success() || !text(&list.stderr).contains("cannot reach") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "kubetrain local did not answer within 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run a client subcommand against this gateway.
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self.spawn_cli(args, stdin.is_some());
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        finish(child, CLI_DEADLINE, &args.join(" "))
    }

    /// Start a client subcommand against this gateway; its stdout and stderr are piped.
    fn spawn_cli(&self, args: &[&str], stdin: bool) -> Child {
        let (command, rest) = args.split_first().unwrap();
        Command::new(kubetrain_bin())
            .arg(command)
            .args(["--gateway", &self.url])
            .args(rest)
            .env_remove("RUST_LOG")
            .env_remove("KUBETRAIN_TOKEN")
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Wait until `kubetrain get NAME` shows the run in `phase`.
    fn wait_for_phase(&self, name: &str, phase: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let get = self.cli(&["get", name, "-o", "json"]);
            if get.status.success() {
                let run: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
                if run["status"]["phase"] == phase {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not reach {phase} within 30 s: {}",
                text(&get.stdout)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value printed after `key` in a `submit` summary.
fn summary_value(stdout: &str, key: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {key:?} in the summary:\n{stdout}"))
}

#[test]
fn submit_follows_a_run_to_succeeded_then_get_and_list_show_it() {
    let local = Local::start();
    let out = tempfile::tempdir().unwrap();
    let out_uri = format!("file://{}/model/", out.path().display());
    let data_uri = format!("file://{}", data("breast_cancer_train.csv").display());
    let submit = local.cli(&[
        "submit",
        "--data",
        &data_uri,
        "--label-column",
        "label",
        "--out",
        &out_uri,
        "--max-iterations",
        "200",
        "--name",
        "breast-cancer",
        "-l",
        "team=ml",
    ]);
    let (stdout, stderr) = (text(&submit.stdout), text(&submit.stderr));
    assert!(
        submit.status.success(),
        "submit failed:\n{stdout}\n{stderr}\n{}",
        local.log()
    );
    assert!(
        stdout.starts_with("trainingrun/breast-cancer created in namespace default\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trainingrun/breast-cancer Succeeded"),
        "{stdout}"
    );
    // stderr is not a terminal here: progress comes as plain lines, ending Succeeded.
    assert!(
        stderr.lines().any(|line| line.starts_with("Succeeded")),
        "{stderr}"
    );
    let accuracy: f64 = summary_value(&stdout, "accuracy").parse().unwrap();
    assert!(accuracy > 0.9, "accuracy {accuracy}");
    let model = summary_value(&stdout, "model");
    assert_eq!(model, format!("{out_uri}model.json"));
    let sha256 = summary_value(&stdout, "sha256");
    let bytes = std::fs::read(out.path().join("model/model.json")).unwrap();
    assert_eq!(sha256, hex::encode(Sha256::digest(&bytes)));

    let get = local.cli(&["get", "breast-cancer"]);
    let table = text(&get.stdout);
    assert!(get.status.success(), "{}", text(&get.stderr));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("PHASE") && header.contains("SCORE"),
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["breast-cancer", "Succeeded"], "{table}");
    assert!(row.contains(&format!("{accuracy:.4}").as_str()), "{table}");

    let json = local.cli(&["get", "breast-cancer", "-o", "json"]);
    let run: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(run["status"]["model"]["sha256"], sha256.as_str());
    assert_eq!(run["metadata"]["labels"]["team"], "ml");

    let list = local.cli(&["list", "-l", "team=ml", "--phase", "succeeded"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(
        text(&list.stdout)
            .lines()
            .any(|line| line.starts_with("breast-cancer ")),
        "{}",
        text(&list.stdout)
    );
    let none = local.cli(&["list", "-l", "team=other"]);
    assert_eq!(text(&none.stdout), "No runs found in namespace default.\n");
}

#[test]
fn a_run_on_bad_data_exits_non_zero_with_the_trainers_reason() {
    let local = Local::start();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "f1,f2,label\n1.0,2.0,0\nabc,1.0,1\n0.5,0.5,0\n").unwrap();
    let submit = local.cli(&[
        "submit",
        "--data",
        &format!("file://{}", bad.display()),
        "--out",
        &format!("file://{}/model/", dir.path().display()),
        "--name",
        "bad-data",
    ]);
    let stderr = text(&submit.stderr);
    assert_eq!(submit.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: trainingrun/bad-data Failed: "),
        "{stderr}"
    );
    assert!(stderr.contains("'abc' is not a number"), "{stderr}");
    assert!(!dir.path().join("model/model.json").exists());

    let failed = local.cli(&["list", "--phase", "Failed"]);
    let table = text(&failed.stdout);
    let row = table
        .lines()
        .find(|line| line.starts_with("bad-data "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("Failed") && row.contains("is not a number"),
        "{table}"
    );
}

#[test]
fn a_manifest_from_stdin_with_json_output_and_an_idempotent_resubmit() {
    let local = Local::start();
    let out = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: kubetrain.dev/v1alpha1\nkind: TrainingRun\nmetadata:\n  generateName: digits-\nspec:\n  algorithm:\n    logisticRegression: {{maxIterations: 300}}\n  dataset:\n    uri: file://{}\n    labelColumn: label\n    validationFraction: 0.2\n    seed: 42\n  output:\n    uri: file://{}/\n",
        data("digits_train.csv").display(),
        out.path().display()
    );
    let first = local.cli_with_stdin(
        &[
            "submit",
            "-f",
            "-",
            "--idempotency-key",
            "digits-once",
            "--detach",
            "-o",
            "json",
        ],
        Some(&manifest),
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let created: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let name = created["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("digits-"), "{name}");

    // The same key again (a retried command) finds the same run and follows it to the end.
    let again = local.cli_with_stdin(
        &[
            "submit",
            "-f",
            "-",
            "--idempotency-key",
            "digits-once",
            "-o",
            "json",
        ],
        Some(&manifest),
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let finished: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(finished["metadata"]["name"], name.as_str());
    assert_eq!(finished["status"]["phase"], "Succeeded");
    assert!(finished["status"]["metrics"]["accuracy"].as_f64().unwrap() > 0.9);

    let all = local.cli(&["list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn a_follower_survives_a_gateway_restart_and_ends_when_the_run_is_cancelled() {
    let mut local = Local::start();
    // Suspended, the run stays Queued until it is cancelled: nothing races the restart.
    let manifest = format!(
        "metadata: {{name: held}}\nspec:\n  algorithm: {{logisticRegression: {{}}}}\n  dataset: {{uri: {}}}\n  output: {{uri: {}/held/}}\n  suspend: true\n",
        data("digits_train.csv").display(),
        local.dir.path().display()
    );
    let manifest_path = local.dir.path().join("held.yaml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let follower = local.spawn_cli(&["submit", "-f", manifest_path.to_str().unwrap()], false);
    local.wait_for_phase("held", "Queued");

    local.restart();
    let cancel = local.cli(&["cancel", "held"]);
    assert_eq!(
        text(&cancel.stdout),
        "trainingrun/held cancelled\n",
        "{}",
        text(&cancel.stderr)
    );

    // The follower reconnected to the new server and sees the cancellation.
    let output = finish(
        follower,
        Duration::from_secs(60),
        "the follower after the cancel",
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: trainingrun/held Cancelled: spec.cancel was set"),
        "{stderr}"
    );
    assert!(stderr.contains("Queued"), "{stderr}");
}

#[test]
fn gateway_errors_name_the_field_and_exit_non_zero() {
    let local = Local::start();
    let submit = local.cli(&[
        "submit",
        "--data",
        &data("breast_cancer_train.csv").display().to_string(),
        "--out",
        "/tmp/kubetrain-never/",
        "--validation-fraction",
        "1.5",
    ]);
    let stderr = text(&submit.stderr);
    assert_eq!(submit.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("(field: spec.dataset.validationFraction)"),
        "{stderr}"
    );

    let missing = local.cli(&["get", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("\"no-such-run\" not found"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn tokens_are_sent_and_refusals_say_why() {
    let local = Local::start_with(&["--auth", "static", "--tokens", "{dir}/tokens.yaml"]);
    let anonymous = local.cli(&["list", "-n", "ml"]);
    let stderr = text(&anonymous.stderr);
    assert_eq!(anonymous.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("--token or KUBETRAIN_TOKEN"),
        "{stderr}"
    );

    let elsewhere = local.cli(&["list", "-n", "default", "--token", "s3cret"]);
    let stderr = text(&elsewhere.stderr);
    assert_eq!(elsewhere.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("alice may not list trainingruns.kubetrain.dev in namespace \"default\""),
        "{stderr}"
    );

    let allowed = local.cli(&["list", "-n", "ml", "--token", "s3cret"]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert_eq!(text(&allowed.stdout), "No runs found in namespace ml.\n");
}

#[test]
fn an_unreachable_gateway_says_where_and_how_to_start_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(kubetrain_bin())
        .args(["list", "--gateway", &format!("http://127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the gateway at http://127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("kubetrain local"), "{stderr}");
}
