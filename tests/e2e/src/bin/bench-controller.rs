//! Benchmark: how fast the controller turns TrainingRuns into Jobs, against the raw rate at
//! which one client creates Jobs on the same API server, measured in the same run.
//!
//! Run through `tests/bench/controller.sh` (which starts the environment and builds release
//! binaries). Runs are created suspended, so their Jobs start no Pods: this measures the
//! controller, not training.
//!
//! Prints: time until every run has its Job, p50/p99 of run created -> Job seen, the ratio of
//! our Job creation rate to the raw rate, the controller's peak RSS at N runs, and its RSS
//! with `BENCH_TOTAL` runs in the cluster.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use kubetrain_e2e::{TestEnv, cpu_seconds, print_cpu, wait_for};
use serde_json::json;

/// Requests in flight from the benchmark's one client (both for raw Jobs and for runs).
const IN_FLIGHT: usize = 32;

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Controller {
    fn rss_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("{field} not in /proc status"))
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn suspended_job(name: &str) -> Result<Job> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]}}},
    }))?)
}

fn suspended_run(name: &str) -> Result<kubetrain_api::TrainingRun> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kubetrain.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "algorithm": {"logisticRegression": {}},
            "dataset": {"uri": "s3://bench/data.csv"},
            "output": {"uri": "s3://bench/models/"},
            "suspend": true,
        },
    }))?)
}

async fn create_all<K, F>(
    api: &Api<K>,
    names: &[String],
    build: F,
) -> Result<HashMap<String, Instant>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    F: Fn(&str) -> Result<K>,
{
    let objects: Vec<(String, K)> = names
        .iter()
        .map(|n| Ok((n.clone(), build(n)?)))
        .collect::<Result<_>>()?;
    stream::iter(objects)
        .map(|(name, object)| async move {
            api.create(&PostParams::default(), &object).await?;
            Ok::<_, anyhow::Error>((name, Instant::now()))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await
}

/// Reconcile count and mean duration from the controller's own `/metrics`.
fn print_reconcile_metrics(listen: &str) {
    let Ok(out) = Command::new("curl")
        .args(["-fsS", &format!("http://{listen}/metrics")])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    if let (Some(count), Some(sum), Some(reconciles)) = (
        value("kubetrain_controller_reconcile_duration_seconds_count"),
        value("kubetrain_controller_reconcile_duration_seconds_sum"),
        value("kubetrain_controller_reconciles_total"),
    ) {
        println!(
            "controller: {reconciles} reconciles, mean {:.1} ms",
            sum / count.max(1.0) * 1000.0
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs_n = env_usize("BENCH_RUNS", 1000);
    let total_n = env_usize("BENCH_TOTAL", 10_000);
    let env = TestEnv::from_env().context("no test environment")?;
    let client = env.client().await?;

    // 1. The raw rate: one client creating suspended Jobs.
    let raw_ns = env.namespace("bench-raw").await?;
    let names: Vec<String> = (0..runs_n).map(|i| format!("raw-{i}")).collect();
    let cpu_before = cpu_seconds(&env, &[]);
    let started = Instant::now();
    create_all(&raw_ns.api::<Job>(), &names, suspended_job).await?;
    let raw = started.elapsed();
    print_cpu("the raw creates", raw, &cpu_before, &cpu_seconds(&env, &[]));
    let raw_rate = runs_n as f64 / raw.as_secs_f64();
    println!(
        "raw: {runs_n} Jobs created by one client in {:.2}s ({raw_rate:.0}/s)",
        raw.as_secs_f64()
    );

    // 2. The controller: runs in, Jobs out.
    let listen =
        std::env::var("BENCH_CONTROLLER_LISTEN").unwrap_or_else(|_| "127.0.0.1:18089".to_owned());
    let binary = std::env::var_os("KUBETRAIN_BIN")
        .map(PathBuf::from)
        .context("KUBETRAIN_BIN (the release kubetrain binary) is not set")?;
    let controller = Controller(
        Command::new(binary)
            .args(["controller", "--listen", &listen])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the controller")?,
    );
    let ns = env.namespace("bench-ctl").await?;
    let jobs: Api<Job> = ns.api();
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let stream = watcher(jobs.clone(), watcher::Config::default()).applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(job)) = stream.next().await {
                if let Some(run) = job.labels().get("kubetrain.dev/run").cloned()
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.entry(run).or_insert_with(Instant::now);
                }
            }
        })
    };
    let names: Vec<String> = (0..runs_n).map(|i| format!("run-{i}")).collect();
    let controller_pid = [("kubetrain-controller", controller.0.id())];
    let cpu_before = cpu_seconds(&env, &controller_pid);
    let started = Instant::now();
    let created = create_all(
        &ns.api::<kubetrain_api::TrainingRun>(),
        &names,
        suspended_run,
    )
    .await?;
    println!(
        "runs: {runs_n} TrainingRuns created by one client in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let mut peak = controller.rss_kib("VmRSS:")?;
    wait_for(
        "every run to have its Job",
        Duration::from_secs(600),
        || {
            let done = seen.lock().map(|s| s.len()).unwrap_or(0);
            if let Ok(rss) = controller.rss_kib("VmRSS:") {
                peak = peak.max(rss);
            }
            async move { Ok((done >= runs_n).then_some(())) }
        },
    )
    .await?;
    let all_jobs = started.elapsed();
    print_cpu(
        "runs -> Jobs",
        all_jobs,
        &cpu_before,
        &cpu_seconds(&env, &controller_pid),
    );
    let seen_at = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| Some(seen_at.get(name)?.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    if latencies.len() != runs_n {
        bail!("saw {} Jobs for {runs_n} runs", latencies.len());
    }
    let our_rate = runs_n as f64 / all_jobs.as_secs_f64();
    let count = jobs
        .list(&ListParams::default().labels("kubetrain.dev/run"))
        .await?
        .items
        .len();
    println!(
        "controller: {runs_n} runs -> {count} Jobs in {:.2}s ({our_rate:.0}/s); run created -> Job seen p50 {:.3}s p99 {:.3}s",
        all_jobs.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64(),
        percentile(&latencies, 0.99).as_secs_f64(),
    );
    println!(
        "ratio (our Job creation rate / raw rate): {:.2}",
        our_rate / raw_rate
    );
    println!(
        "controller RSS peak while creating {runs_n} Jobs: {:.1} MiB",
        peak as f64 / 1024.0
    );
    print_reconcile_metrics(&listen);

    // 3. Memory with many runs in the cluster.
    if total_n > runs_n {
        let more: Vec<String> = (runs_n..total_n).map(|i| format!("run-{i}")).collect();
        create_all(
            &ns.api::<kubetrain_api::TrainingRun>(),
            &more,
            suspended_run,
        )
        .await?;
        wait_for(
            "every run to have its Job",
            Duration::from_secs(1800),
            || {
                let done = seen.lock().map(|s| s.len()).unwrap_or(0);
                async move { Ok((done >= total_n).then_some(())) }
            },
        )
        .await?;
        println!(
            "controller RSS with {total_n} runs and Jobs: {:.1} MiB (peak {:.1} MiB)",
            controller.rss_kib("VmRSS:")? as f64 / 1024.0,
            controller.rss_kib("VmHWM:")? as f64 / 1024.0,
        );
    }
    watch.abort();
    drop(controller);
    let _ = client;
    ns.delete().await?;
    raw_ns.delete().await?;
    Ok(())
}
