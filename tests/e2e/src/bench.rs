//! What the benchmarks measure besides time: CPU seconds per component and API requests.

use std::time::Duration;

use anyhow::Result;

use crate::env::TestEnv;

/// CPU seconds (user + system) used so far by each component of the test environment and
/// by `others` (name, PID), from `/proc/<pid>/stat`, children that exited included.
pub fn cpu_seconds(env: &TestEnv, others: &[(&str, u32)]) -> Vec<(String, f64)> {
    // clock ticks per second; 100 on every Linux this runs on.
    const TICKS: f64 = 100.0;
    let of_pid = |pid: u32| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime, stime, and those of reaped children (the process node's trainers).
        let ticks: f64 = fields
            .get(11..15)?
            .iter()
            .map(|f| f.parse::<f64>().ok())
            .sum::<Option<f64>>()?;
        Some(ticks / TICKS)
    };
    let mut out: Vec<(String, f64)> = std::fs::read_dir(env.state_dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.path().file_stem()?.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let pid = text.split_whitespace().next()?.parse().ok()?;
            Some((name, of_pid(pid)?))
        })
        .collect();
    for (name, pid) in others {
        out.extend(of_pid(*pid).map(|s| ((*name).to_owned(), s)));
    }
    out.extend(of_pid(std::process::id()).map(|s| ("bench client".to_owned(), s)));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How much each named counter of `after` grew since `before` (a name new in `after` from 0).
fn growth<'a>(
    before: &'a [(String, f64)],
    after: &'a [(String, f64)],
) -> impl Iterator<Item = (&'a str, f64)> {
    after.iter().map(|(name, end)| {
        let start = before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        (name.as_str(), end - start)
    })
}

/// Prints the CPU seconds each component used between two [`cpu_seconds`] readings.
pub fn print_cpu(phase: &str, wall: Duration, before: &[(String, f64)], after: &[(String, f64)]) {
    let used: Vec<String> = growth(before, after)
        .map(|(name, used)| format!("{name} {used:.2}"))
        .collect();
    println!(
        "  CPU seconds during {phase} ({:.2}s wall, {} cores): {}",
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        used.join(", ")
    );
}

/// The API server's request counters (`apiserver_request_total`, all codes) by
/// "VERB resource[/subresource]", read with `kubectl get --raw /metrics`.
pub fn api_requests(env: &TestEnv) -> Result<Vec<(String, f64)>> {
    let out = env.kubectl(&["get", "--raw", "/metrics"])?;
    Ok(parse_api_requests(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_api_requests(metrics: &str) -> Vec<(String, f64)> {
    let mut counts = std::collections::BTreeMap::<String, f64>::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| {
                    kv.strip_prefix(name)?
                        .strip_prefix("=\"")?
                        .strip_suffix('"')
                })
                .unwrap_or_default()
        };
        let mut key = format!("{} {}", label("verb"), label("resource"));
        if !label("subresource").is_empty() {
            key = format!("{key}/{}", label("subresource"));
        }
        *counts.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    counts.into_iter().collect()
}

/// Prints the API requests made between two [`api_requests`] readings, most frequent first,
/// also per `per` (e.g. per run submitted).
pub fn print_api_requests(
    phase: &str,
    before: &[(String, f64)],
    after: &[(String, f64)],
    per: f64,
) {
    let mut diff: Vec<(&str, f64)> = growth(before, after).filter(|(_, n)| *n > 0.0).collect();
    diff.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = diff.iter().map(|(_, n)| n).sum();
    let list: Vec<String> = diff
        .iter()
        .filter(|(key, _)| !key.starts_with("WATCH"))
        .take(16)
        .map(|(key, n)| format!("{key} {:.2}", n / per))
        .collect();
    println!(
        "  API requests during {phase}: {total:.0} ({:.1} per run); per run: {}",
        total / per,
        list.join(", ")
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn api_request_counters_are_summed_by_verb_and_resource() {
        let text = r#"# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="kubetrain.dev",resource="trainingruns",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 7
"#;
        assert_eq!(
            parse_api_requests(text),
            vec![
                ("APPLY trainingruns/status".to_owned(), 7.0),
                ("POST jobs".to_owned(), 4.0)
            ]
        );
    }
}
