//! Benchmark: the gateway's seed API against the peer implementation (FastAPI + Celery + Redis,
//! ../shared/peers/seed-celery), both already running, measured in the same run by this one
//! load generator so neither side gets a different client.
//!
//! Run through `tests/bench/gateway.sh` (which starts the environment, the controller, the
//! gateway and the peer). Measures, for each side:
//! 1. status reads of a finished task: `GET /status/{task_id}` (and, for kubetrain,
//!    `GET /v1/namespaces/{ns}/trainingruns/{name}`) from `BENCH_CONCURRENCY` clients on
//!    keep-alive connections, in interleaved rounds: req/s, p50, p99 of the median round;
//! 2. submit acknowledgement: `BENCH_SUBMITS` sequential `POST /train/` with the peer's own
//!    tiny payload (20 rows x 3 features, labels i%2) on one keep-alive connection, after
//!    `BENCH_WARMUP` untimed ones: p50, p99. In this order: the peer; kubetrain with its
//!    controller running (each run gets a Job and a trainer while the next submit is timed);
//!    kubetrain with the controller paused. Each side's accepted work is trained to the end
//!    before the next measurement starts, so none runs beside another's leftovers.
//!
//! Every response is checked: a read that is not 200 with the side's terminal value (kubetrain
//! `complete`/`Succeeded`, the peer `SUCCESS`) or a submit that is not 200 with a `task_id`
//! counts as an error, and errors fail the benchmark.
//!
//! Settings (environment): `BENCH_KUBETRAIN` (gateway with `--auth none`), `BENCH_PEER`,
//! `BENCH_NAMESPACE` (the gateway's seed namespace), optional `BENCH_KUBETRAIN_AUTH` +
//! `BENCH_TOKEN_FILE` (a second gateway with `--auth kubernetes` and a ServiceAccount token),
//! `BENCH_CONTROLLER_PID` (the controller, paused with SIGSTOP for a submit measurement without
//! training load, see [`Paused`]), `BENCH_SECONDS` (5) x `BENCH_ROUNDS` (3, interleaved; the median is reported), `BENCH_CONCURRENCY` (8), `BENCH_SUBMITS` (200), `BENCH_WARMUP` (10),
//! `BENCH_CLIENT_THREADS` (1: the load generator's own threads, leaving the rest of the
//! machine to the server), `BENCH_JSON` (also write the figures there).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kubetrain_e2e::{api_requests, cpu_seconds, print_api_requests, print_cpu, wait_for};
use serde::Serialize;
use serde_json::{Value, json};

/// How long a finished task may take to appear (the first run pulls nothing, but trains).
const TRAINING_TIMEOUT: Duration = Duration::from_secs(300);
/// Untimed reads per client before the clock starts (connections open, caches warm).
const READ_WARMUP: Duration = Duration::from_secs(1);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

fn env_required(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (see tests/bench/gateway.sh)"))
}

/// One server under test.
#[derive(Clone)]
struct Side {
    label: String,
    base: String,
    token: Option<String>,
    /// The seed `status` value of a finished task.
    done: &'static str,
    /// Seed `status` values that mean the task will never finish.
    failed: &'static [&'static str],
}

impl Side {
    fn client() -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()?)
    }

    fn get(&self, http: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let request = http.get(format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: &'static [u8],
    ) -> reqwest::RequestBuilder {
        let request = http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// The peer's bench.py payload: 20 rows of 3 features, labels i % 2. bench.py draws the
/// features from numpy's default_rng(0); the values here are fixed (4 decimals, like its
/// rounding) so both sides receive the same bytes.
fn submit_body() -> Result<&'static [u8]> {
    let features: Vec<Vec<f64>> = (0..20)
        .map(|i| {
            (0..3)
                .map(|j| {
                    let x = ((i * 7 + j * 13) % 17) as f64 / 4.0 - 2.0 + (i as f64) * 0.0123;
                    (x * 10_000.0).round() / 10_000.0
                })
                .collect()
        })
        .collect();
    let labels: Vec<i64> = (0..20).map(|i| i % 2).collect();
    let body = serde_json::to_vec(&json!({"features": features, "labels": labels}))?;
    Ok(Box::leak(body.into_boxed_slice()))
}

async fn submit_once(side: &Side, http: &reqwest::Client, body: &'static [u8]) -> Result<String> {
    let response = side.post(http, "/train/", body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(
        status.is_success(),
        "{}: POST /train/ answered {status}: {text}",
        side.label
    );
    let value: Value = serde_json::from_str(&text)?;
    value["task_id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{}: POST /train/ answered no task_id: {text}", side.label))
}

/// Submits one task and waits until `/status` reports it finished; its id.
async fn finished_task(side: &Side, body: &'static [u8]) -> Result<String> {
    let http = Side::client()?;
    let task_id = submit_once(side, &http, body).await?;
    let started = Instant::now();
    wait_finished(side, &http, &task_id).await?;
    eprintln!(
        "{}: task {task_id} {} after {:.1} s",
        side.label,
        side.done,
        started.elapsed().as_secs_f64()
    );
    Ok(task_id)
}

/// Waits until `/status` reports `task_id` finished; an error if it failed.
async fn wait_finished(side: &Side, http: &reqwest::Client, task_id: &str) -> Result<()> {
    let path = format!("/status/{task_id}");
    wait_for(
        &format!("{}: task {task_id} to finish", side.label),
        TRAINING_TIMEOUT,
        || async {
            let value: Value = side.get(http, &path).send().await?.json().await?;
            let state = value["status"].as_str().unwrap_or_default();
            if side.failed.contains(&state) {
                bail!("{}: task {task_id} ended {state}: {value}", side.label);
            }
            Ok((state == side.done).then_some(()))
        },
    )
    .await
}

/// Waits until `/status` reports every task in `ids` finished, so the next measurement does not
/// share the machine with this side's workers.
async fn drain(side: &Side, ids: &[String]) -> Result<()> {
    let http = Side::client()?;
    let started = Instant::now();
    // Tasks finish roughly in submission order: wait on each in turn.
    for task_id in ids {
        wait_finished(side, &http, task_id).await?;
    }
    eprintln!(
        "{}: its {} submitted tasks finished {:.1} s after the last submit",
        side.label,
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until every Job in `namespace` is finished and every Pod has ended with its
/// finalizers removed: the cluster's work for runs already reported done is over.
async fn settled(env: &kubetrain_e2e::TestEnv, namespace: &str) -> Result<()> {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    let client = env.client().await?;
    let jobs: kube::Api<Job> = kube::Api::namespaced(client.clone(), namespace);
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let started = Instant::now();
    wait_for(
        "the Jobs and Pods of finished runs to settle",
        TRAINING_TIMEOUT,
        || async {
            let params = kube::api::ListParams::default();
            let open_jobs = jobs
                .list(&params)
                .await?
                .items
                .iter()
                .filter(|job| {
                    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
                    !conditions.is_some_and(|c| {
                        c.iter().any(|c| {
                            (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                        })
                    })
                })
                .count();
            let open_pods = pods
                .list(&params)
                .await?
                .items
                .iter()
                .filter(|pod| {
                    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                    let ended = matches!(phase, Some("Succeeded" | "Failed"));
                    !ended
                        || pod
                            .metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| !f.is_empty())
                })
                .count();
            Ok((open_jobs == 0 && open_pods == 0).then_some(()))
        },
    )
    .await?;
    eprintln!(
        "the cluster settled {:.1} s after the runs finished",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Serialize)]
struct ReadFigures {
    side: String,
    route: String,
    concurrency: usize,
    seconds: f64,
    requests: usize,
    req_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
    /// req/s of every round; the other figures are the median round's.
    rounds_req_per_s: Vec<f64>,
}

/// The round with the median req/s, carrying every round's rate and all rounds' errors.
fn median_round(mut rounds: Vec<ReadFigures>) -> Result<ReadFigures> {
    let rates: Vec<f64> = rounds.iter().map(|r| r.req_per_s).collect();
    let errors = rounds.iter().map(|r| r.errors).sum();
    rounds.sort_by(|a, b| a.req_per_s.total_cmp(&b.req_per_s));
    let index = rounds.len() / 2;
    let mut median = rounds.into_iter().nth(index).context("no rounds")?;
    median.rounds_req_per_s = rates;
    median.errors = errors;
    Ok(median)
}

#[derive(Debug, Serialize)]
struct SubmitFigures {
    side: String,
    requests: usize,
    warmup: usize,
    payload_bytes: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    max_ms: f64,
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[index.min(sorted_us.len() - 1)]) / 1000.0
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// `concurrency` clients, each on its own keep-alive connection, read `path` for `seconds`.
async fn status_reads(
    side: &Side,
    route: &str,
    path: &str,
    expect: &'static str,
    concurrency: usize,
    seconds: Duration,
) -> Result<ReadFigures> {
    let needle: Arc<[u8]> = format!("\"{expect}\"").into_bytes().into();
    let stop = Arc::new(AtomicBool::new(false));
    let timing = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (side, path, needle, stop, timing) = (
            side.clone(),
            path.to_owned(),
            needle.clone(),
            stop.clone(),
            timing.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = Side::client()?;
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 18);
            let mut errors = 0usize;
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                let timed = timing.load(Ordering::Relaxed);
                let t0 = Instant::now();
                let outcome = async {
                    let response = side.get(&http, &path).send().await?;
                    let status = response.status();
                    let body = response.bytes().await?;
                    let ok = status == reqwest::StatusCode::OK
                        && body.windows(needle.len()).any(|w| w == &needle[..]);
                    anyhow::Ok((ok, status, body))
                }
                .await;
                let elapsed = t0.elapsed();
                if !timed {
                    continue;
                }
                latencies.push(micros(elapsed));
                match outcome {
                    Ok((true, _, _)) => {}
                    Ok((false, status, body)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("{status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
            anyhow::Ok((latencies, errors, first_error))
        }));
    }
    tokio::time::sleep(READ_WARMUP).await;
    timing.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(seconds).await;
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let (latencies, task_errors, task_first) = task.await??;
        all.extend(latencies);
        errors += task_errors;
        first_error = first_error.or(task_first);
    }
    if let Some(error) = first_error {
        eprintln!(
            "{} {route}: {errors} bad answers, the first: {error}",
            side.label
        );
    }
    all.sort_unstable();
    Ok(ReadFigures {
        side: side.label.clone(),
        route: route.to_owned(),
        concurrency,
        seconds: wall.as_secs_f64(),
        requests: all.len(),
        // Requests still in flight when the clock stopped finish a little later: count what
        // completed against the time until the last of them did, not the nominal duration.
        req_per_s: all.len() as f64 / wall.as_secs_f64(),
        p50_ms: percentile_ms(&all, 0.50),
        p99_ms: percentile_ms(&all, 0.99),
        max_ms: all.last().map_or(f64::NAN, |&us| f64::from(us) / 1000.0),
        errors,
        rounds_req_per_s: Vec::new(),
    })
}

/// Sequential submits on one keep-alive connection; the figures and the task ids.
async fn submits(
    side: &Side,
    variant: &str,
    body: &'static [u8],
    warmup: usize,
    n: usize,
) -> Result<(SubmitFigures, Vec<String>)> {
    let http = Side::client()?;
    let mut ids = Vec::with_capacity(warmup + n);
    for _ in 0..warmup {
        ids.push(submit_once(side, &http, body).await?);
    }
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let outcome = submit_once(side, &http, body).await;
        latencies.push(micros(t0.elapsed()));
        ids.push(outcome?);
    }
    let mean = latencies.iter().map(|&us| f64::from(us)).sum::<f64>() / n.max(1) as f64 / 1000.0;
    latencies.sort_unstable();
    let figures = SubmitFigures {
        side: format!("{}{variant}", side.label),
        requests: n,
        warmup,
        payload_bytes: body.len(),
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        mean_ms: mean,
        max_ms: latencies
            .last()
            .map_or(f64::NAN, |&us| f64::from(us) / 1000.0),
    };
    Ok((figures, ids))
}

/// The controller stopped with SIGSTOP while this lives, continued with SIGCONT on drop.
struct Paused(u32);

impl Paused {
    fn new(pid: u32) -> Result<Self> {
        signal(pid, "-STOP")?;
        Ok(Paused(pid))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Err(error) = signal(self.0, "-CONT") {
            eprintln!("cannot continue the controller (pid {}): {error:#}", self.0);
        }
    }
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill {sig} {pid}: {status}");
    Ok(())
}

fn print_reads(reads: &[ReadFigures]) {
    println!(
        "\nstatus reads of a finished task, {} clients, keep-alive, {} interleaved rounds of {:.0} s; the median round (req/s of every round on the right)",
        reads.first().map_or(0, |r| r.concurrency),
        reads.first().map_or(0, |r| r.rounds_req_per_s.len()),
        reads.first().map_or(0.0, |r| r.seconds)
    );
    println!(
        "  {:<78} {:>10} {:>8} {:>8} {:>8} {:>7}  rounds",
        "side / route", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for r in reads {
        let rounds: Vec<String> = r
            .rounds_req_per_s
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect();
        println!(
            "  {:<78} {:>10.0} {:>8.3} {:>8.3} {:>8.2} {:>7}  {}",
            format!("{}  {}", r.side, r.route),
            r.req_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            rounds.join(" ")
        );
    }
}

fn print_submits(submits: &[SubmitFigures]) {
    if let Some(first) = submits.first() {
        println!(
            "\nsubmit acknowledgement: {} sequential POST /train/ ({} bytes inline) after {} warm-up, one keep-alive connection",
            first.requests, first.payload_bytes, first.warmup
        );
    }
    println!(
        "  {:<58} {:>8} {:>8} {:>8} {:>8}",
        "side", "p50 ms", "p99 ms", "mean ms", "max ms"
    );
    for s in submits {
        println!(
            "  {:<58} {:>8.3} {:>8.3} {:>8.3} {:>8.2}",
            s.side, s.p50_ms, s.p99_ms, s.mean_ms, s.max_ms
        );
    }
}

fn main() -> Result<()> {
    let threads: usize = env_or("BENCH_CLIENT_THREADS", 1)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let seconds = Duration::from_secs_f64(env_or("BENCH_SECONDS", 5.0)?);
    let n_rounds: usize = env_or("BENCH_ROUNDS", 3)?;
    ensure!(n_rounds >= 1, "BENCH_ROUNDS must be at least 1");
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 8)?;
    let n_submits: usize = env_or("BENCH_SUBMITS", 200)?;
    let warmup: usize = env_or("BENCH_WARMUP", 10)?;
    let namespace = env_required("BENCH_NAMESPACE")?;
    let kubetrain = Side {
        label: "kubetrain (--auth none)".into(),
        base: env_required("BENCH_KUBETRAIN")?,
        token: None,
        done: "complete",
        failed: &["failure"],
    };
    let peer = Side {
        label: "peer (FastAPI+Celery+Redis)".into(),
        base: env_required("BENCH_PEER")?,
        token: None,
        done: "SUCCESS",
        failed: &["failure", "FAILURE"],
    };
    let kubetrain_auth = match std::env::var("BENCH_KUBETRAIN_AUTH") {
        Ok(base) if !base.is_empty() => {
            let file = env_required("BENCH_TOKEN_FILE")?;
            let token = std::fs::read_to_string(&file)
                .with_context(|| format!("reading BENCH_TOKEN_FILE {file}"))?
                .trim()
                .to_owned();
            Some(Side {
                label: "kubetrain (--auth kubernetes)".into(),
                base,
                token: Some(token),
                done: "complete",
                failed: &["failure"],
            })
        }
        _ => None,
    };
    let controller_pid: Option<u32> = match std::env::var("BENCH_CONTROLLER_PID") {
        Ok(pid) => Some(
            pid.parse()
                .with_context(|| format!("BENCH_CONTROLLER_PID={pid:?} is not a pid"))?,
        ),
        Err(_) => None,
    };
    let body = submit_body()?;

    // 1. One finished task on each side (the same payload as the submits).
    let (kt_task, peer_task) =
        tokio::try_join!(finished_task(&kubetrain, body), finished_task(&peer, body))?;

    // 2. Status reads, one side at a time, before any submit load (runs submitted later
    //    train on this machine).
    let v1 = format!("/v1/namespaces/{namespace}/trainingruns/{kt_task}");
    let seed = format!("/status/{kt_task}");
    let route_seed = "GET /status/{task_id}";
    let route_v1 = "GET /v1/namespaces/{ns}/trainingruns/{name}";
    let peer_seed = format!("/status/{peer_task}");
    let mut targets = vec![
        (&kubetrain, route_seed, seed.as_str(), "complete"),
        (&kubetrain, route_v1, v1.as_str(), "Succeeded"),
    ];
    if let Some(auth) = &kubetrain_auth {
        targets.push((auth, route_seed, seed.as_str(), "complete"));
        targets.push((auth, route_v1, v1.as_str(), "Succeeded"));
    }
    targets.push((&peer, route_seed, peer_seed.as_str(), "SUCCESS"));
    // Rounds interleave the targets, so a burst of other work on the machine does not land
    // on one side only; each target reports its median round.
    let mut rounds: Vec<Vec<ReadFigures>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..n_rounds {
        for (i, &(side, route, path, expect)) in targets.iter().enumerate() {
            let figures = status_reads(side, route, path, expect, concurrency, seconds).await?;
            rounds[i].push(figures);
        }
    }
    let reads: Vec<ReadFigures> = rounds
        .into_iter()
        .map(median_round)
        .collect::<Result<_>>()?;

    // 3. Submit acknowledgement: the peer first (its tasks train meanwhile, as they would).
    let (peer_acks, peer_ids) = submits(&peer, "", body, warmup, n_submits).await?;
    // The peer's workers train what it accepted; kubetrain is measured after they are done.
    drain(&peer, &peer_ids).await?;
    // kubetrain with the controller running: every run submitted gets a Job and a trainer
    // process on this machine's process node while the next submits are timed.
    let env = kubetrain_e2e::TestEnv::from_env();
    let others: Vec<(&str, u32)> = [
        ("kubetrain-controller", controller_pid),
        (
            "kubetrain-gateway",
            env_or("BENCH_GATEWAY_PID", 0u32).ok().filter(|p| *p != 0),
        ),
    ]
    .into_iter()
    .filter_map(|(name, pid)| Some((name, pid?)))
    .collect();
    let cpu_before = env.as_ref().map(|env| cpu_seconds(env, &others));
    let requests_before = env.as_ref().map(api_requests).transpose()?;
    let started = Instant::now();
    let (running, running_ids) =
        submits(&kubetrain, ", controller running", body, warmup, n_submits).await?;
    let cpu = env
        .as_ref()
        .zip(cpu_before)
        .map(|(env, before)| (started.elapsed(), before, cpu_seconds(env, &others)));
    let requests = match (&env, requests_before) {
        (Some(env), Some(before)) => Some((before, api_requests(env)?)),
        _ => None,
    };
    // Those runs train to the end before the next measurement, as the peer's did, and the
    // cluster finishes their Jobs and Pods.
    drain(&kubetrain, &running_ids).await?;
    if let Some(env) = &env {
        settled(env, &namespace).await?;
    }
    // kubetrain with the controller paused (SIGSTOP): the gateway, its auth, S3 and the API
    // server, no training load on this machine. Measured last: the runs it creates start
    // only when the controller continues, after every measurement.
    let mut acks = vec![peer_acks];
    if let Some(pid) = controller_pid {
        let _paused = Paused::new(pid)?;
        acks.push(
            submits(&kubetrain, ", controller paused", body, warmup, n_submits)
                .await?
                .0,
        );
        if let Some(auth) = &kubetrain_auth {
            acks.push(
                submits(auth, ", controller paused", body, warmup, n_submits)
                    .await?
                    .0,
            );
        }
    }
    acks.push(running);

    print_reads(&reads);
    print_submits(&acks);
    if let Some((wall, before, after)) = &cpu {
        print_cpu(
            "kubetrain's submits with the controller running",
            *wall,
            before,
            after,
        );
    }
    if let Some((before, after)) = &requests {
        print_api_requests(
            "kubetrain's submits with the controller running",
            before,
            after,
            (warmup + n_submits) as f64,
        );
    }
    let peer_rate = reads.last().map_or(f64::NAN, |r| r.req_per_s);
    let peer_ack = acks.first().map_or(f64::NAN, |a| a.p99_ms);
    println!("\nratios (kubetrain / peer)");
    for r in reads.iter().filter(|r| r.side != peer.label) {
        println!(
            "  req/s  {:<78} {:>6.1}x   (target >= 20x)",
            format!("{}  {}", r.side, r.route),
            r.req_per_s / peer_rate
        );
    }
    for a in acks.iter().skip(1) {
        println!(
            "  submit p99  {:<58} {:>6.2}x   ({:.2} ms; target < 20 ms)",
            a.side,
            a.p99_ms / peer_ack,
            a.p99_ms
        );
    }
    let errors: usize = reads.iter().map(|r| r.errors).sum();
    let out = json!({
        "status_reads": reads,
        "submit_ack": acks,
        "finished_tasks": {"kubetrain": kt_task, "peer": peer_task},
        "client_threads": env_or::<usize>("BENCH_CLIENT_THREADS", 1)?,
    });
    if let Ok(path) = std::env::var("BENCH_JSON") {
        std::fs::write(&path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {path}"))?;
    }
    ensure!(
        errors == 0,
        "{errors} status reads got a wrong answer (see above)"
    );
    Ok(())
}
