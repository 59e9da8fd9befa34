//! kubectl and helm as a user runs them: the environment's binaries (first on PATH, from its
//! env file) with the admin kubeconfig, input on stdin.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::TestEnv;

/// Runs `program` with `args` and the admin kubeconfig, `input` on its stdin, and returns its
/// output whatever its exit status.
///
/// # Errors
/// If the program cannot be started or its stdin written.
pub fn run(env: &TestEnv, program: &str, args: &[&str], input: Option<&[u8]>) -> Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} (is the env file's PATH set?)"))?;
    if let Some(input) = input {
        child.stdin.take().context("stdin")?.write_all(input)?;
    }
    Ok(child.wait_with_output()?)
}

/// Like [`run`], returning its stdout.
///
/// # Errors
/// Unless it exited 0: the command line, exit status, stdout and stderr.
pub fn ok(env: &TestEnv, program: &str, args: &[&str], input: Option<&[u8]>) -> Result<String> {
    let out = run(env, program, args, input)?;
    ensure!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Whether `user` may `verb` `resource` (`plural.group`, or `plural.group/subresource`) in
/// `namespace`, as the API server's authorizer answers (`kubectl auth can-i` exits 0 for yes,
/// 1 for no).
///
/// # Errors
/// If kubectl answers neither (its stderr).
pub fn can_i(
    env: &TestEnv,
    user: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> Result<bool> {
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec![
        "auth",
        "can-i",
        verb,
        resource,
        "--as",
        user,
        "--namespace",
        namespace,
    ];
    if !subresource.is_empty() {
        args.extend(["--subresource", subresource]);
    }
    let out = run(env, "kubectl", &args, None)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!(
            "kubectl auth can-i: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `kubectl apply` of `manifest` (YAML, possibly several documents) into `namespace`.
///
/// # Errors
/// As [`ok`]: kubectl's answer when the API server refuses an object.
pub fn apply(env: &TestEnv, namespace: &str, manifest: &str) -> Result<String> {
    ok(
        env,
        "kubectl",
        &["apply", "--namespace", namespace, "-f", "-"],
        Some(manifest.as_bytes()),
    )
}

/// `kubectl apply --dry-run=server --validate=strict` of the file `file` (`-`: `input`), in
/// `namespace` when given: every object checked by the API server (schema, admission), none
/// stored. Returns kubectl's list of what would be created.
///
/// # Errors
/// As [`ok`]: kubectl's answer when the API server refuses an object.
pub fn dry_run(
    env: &TestEnv,
    namespace: Option<&str>,
    file: &str,
    input: Option<&[u8]>,
) -> Result<String> {
    let mut args = vec!["apply", "--dry-run=server", "--validate=strict"];
    if let Some(namespace) = namespace {
        args.extend(["--namespace", namespace]);
    }
    args.extend(["-f", file]);
    ok(env, "kubectl", &args, input)
}
