//! The web UI in a real headless browser (Debian's `chromium`, driven over WebDriver by
//! `chromedriver` and the `fantoccini` client) against `kubetrain local` with tokens on:
//! a person pastes a token, submits a run through the form with an uploaded CSV, watches its
//! progress bar move and its loss curve gain points, sees it succeed with metrics and the
//! confusion matrix, sees the list follow runs created elsewhere, and cancels a run. Without a
//! token, neither the API nor the pages give out any run.
//!
//! Needs `chromedriver` and `chromium` (`KUBETRAIN_CHROMEDRIVER`, `KUBETRAIN_CHROMIUM`;
//! default `/usr/bin/...`; `tests/run.sh` installs Debian's packages). Screenshots of every
//! page go to `tests/screenshots/ui/` (ignored by git).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::data;
use common::server::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const TOKEN: &str = "ui-test-token-4f1c";

/// `chromedriver` on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium and chromium-driver (tests/run.sh does) or \
         set {variable}",
        path.display()
    );
    path
}

async fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(tool("KUBETRAIN_CHROMEDRIVER", "/usr/bin/chromedriver"))
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    eventually("chromedriver to listen", 30, || async {
        let r = http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    driver
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let chromium = tool("KUBETRAIN_CHROMIUM", "/usr/bin/chromium");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // No sandbox as root in a container; no background traffic on a closed network.
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1100",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// Poll `check` until it answers `Some`, at most `seconds`.
async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {seconds}s for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of a JavaScript expression on the current page.
async fn js(client: &Client, expression: &str) -> Value {
    client
        .execute(&format!("return {expression};"), vec![])
        .await
        .unwrap()
}

/// Wait until a JavaScript expression on the current page is `true` (at most 30 s).
async fn until(client: &Client, what: &str, expression: &str) {
    eventually(what, 30, || async {
        (js(client, expression).await == true).then_some(())
    })
    .await;
}

async fn click(client: &Client, locator: Locator<'_>) {
    client.find(locator).await.unwrap().click().await.unwrap();
}

async fn type_into(client: &Client, locator: Locator<'_>, text: &str) {
    client
        .find(locator)
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Milliseconds from the start of the page's navigation to the performance mark `name`.
async fn mark(client: &Client, name: &str) -> f64 {
    let expression = format!("performance.getEntriesByName('{name}')[0]?.startTime");
    eventually(name, 30, || async {
        js(client, &expression).await.as_f64()
    })
    .await
}

async fn screenshot(client: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/screenshots/ui");
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The run `name` in namespace default, read with the token.
async fn read_run(server: &Server, name: &str) -> Value {
    let r = server
        .http
        .get(format!(
            "{}/v1/namespaces/default/trainingruns/{name}",
            server.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A CSV of `copies` times the breast-cancer training rows: enough work that training takes
/// a few seconds (progress is written at most once a second).
fn bigger_csv(dir: &Path, copies: usize) -> PathBuf {
    let text = std::fs::read_to_string(data("breast_cancer_train.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let path = dir.join("cancer_big.csv");
    std::fs::write(&path, format!("{header}\n{}", body.repeat(copies))).unwrap();
    path
}

/// A run whose program only sleeps (a custom run of `sleep`), to be cancelled.
fn sleeper(name: &str, dir: &Path) -> Value {
    json!({
        "apiVersion": "kubetrain.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name, "labels": {"purpose": "cancel"}},
        "spec": {
            "custom": {"image": "sleeper", "command": ["sleep", "600"]},
            "dataset": {"uri": data("breast_cancer_train.csv").to_str().unwrap()},
            "output": {"uri": dir.join(name).to_str().unwrap()},
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_follows_runs_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!("tokens:\n- {{token: {TOKEN}, user: ada, namespaces: [default]}}\n"),
    )
    .unwrap();
    let server = Server::start_with_args(
        &dir.path().join("state"),
        2,
        None,
        None,
        None,
        &["--auth", "static", "--tokens", tokens.to_str().unwrap()],
    );
    server.wait_ready().await;
    let driver = start_driver().await;
    let client = browser(&driver, &dir.path().join("profile")).await;
    let ui = format!("{}/ui/", server.url);

    // A run exists; without a token neither the API nor the page shows it.
    let api = |path: &str| format!("{}/v1/namespaces/default/{path}", server.url);
    let r = server
        .http
        .post(api("trainingruns"))
        .bearer_auth(TOKEN)
        .json(&sleeper("before-token", dir.path()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for path in ["trainingruns", "trainingruns/before-token"] {
        let r = server.http.get(api(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        let body = r.text().await.unwrap();
        assert!(!body.contains("\"spec\""), "{path} gave data: {body}");
    }
    client.goto(&ui).await.unwrap();
    until(
        &client,
        "the token form",
        "!document.getElementById('token-form').hidden",
    )
    .await;
    assert_eq!(
        js(
            &client,
            "document.querySelectorAll('#runs tbody tr').length"
        )
        .await,
        0
    );
    let page = js(&client, "document.documentElement.outerHTML").await;
    assert!(!page.as_str().unwrap().contains("before-token"));
    screenshot(&client, "1-token").await;

    // The token, pasted: the list shows the run, and follows a run created elsewhere live.
    type_into(&client, Locator::Id("token"), TOKEN).await;
    click(&client, Locator::Css("#token-form button")).await;
    let row = |name: &str| format!("document.querySelector('#runs tr[data-name=\"{name}\"]')");
    until(
        &client,
        "the run in the list",
        &format!("{} !== null", row("before-token")),
    )
    .await;
    let post = |path: &str, body: Option<Value>| {
        let request = server.http.post(api(path)).bearer_auth(TOKEN);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        post("trainingruns", Some(sleeper("made-elsewhere", dir.path()))).await,
        201
    );
    let phase_in_list = format!("{}?.dataset.phase", row("made-elsewhere"));
    until(
        &client,
        "a run created by another client to appear",
        &format!("{phase_in_list} === 'Running'"),
    )
    .await;
    assert_eq!(post("trainingruns/made-elsewhere/cancel", None).await, 200);
    until(
        &client,
        "the list to show the cancelled phase",
        &format!("{phase_in_list} === 'Cancelled'"),
    )
    .await;

    // Submit a run through the form, with an uploaded CSV and a parameter of the algorithm.
    let csv = bigger_csv(dir.path(), 60);
    client.goto(&format!("{ui}new")).await.unwrap();
    let field = |id: &str| format!("document.getElementById('{id}') !== null");
    until(
        &client,
        "the algorithm's parameters",
        &field("param-maxIterations"),
    )
    .await;
    click(&client, Locator::Css("input[name=source][value=upload]")).await;
    type_into(&client, Locator::Id("datasetFile"), csv.to_str().unwrap()).await;
    client
        .find(Locator::Id("algorithm"))
        .await
        .unwrap()
        .select_by_value("gradientBoostedTrees")
        .await
        .unwrap();
    until(
        &client,
        "the boosted trees' parameters",
        &field("param-maxLeaves"),
    )
    .await;
    type_into(&client, Locator::Id("param-maxIterations"), "500").await;
    client
        .find(Locator::Id("generateName"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    type_into(&client, Locator::Id("generateName"), "cancer-").await;
    screenshot(&client, "2-new-run").await;
    click(&client, Locator::Id("submit")).await;

    // The run's page: the progress bar moves and the curve gains points while it trains.
    let name = eventually("the run's page", 30, || async {
        let url = client.current_url().await.ok()?;
        let name = url
            .query_pairs()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.into_owned())?;
        (url.path() == "/ui/run").then_some(name)
    })
    .await;
    assert!(name.starts_with("cancer-"), "{name}");
    let mut progress_seen = Vec::new();
    let mut points_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let progress = js(&client, "document.getElementById('progress').value").await;
        let points = js(
            &client,
            "Number(document.getElementById('loss').dataset.points)",
        )
        .await;
        let phase = js(
            &client,
            "document.querySelector('#phase .phase')?.textContent",
        )
        .await;
        if phase == "Running" {
            let progress = progress.as_f64().unwrap();
            if progress > 0.0 && progress < 100.0 && progress_seen.last() != Some(&progress) {
                progress_seen.push(progress);
            }
            let points = points.as_u64().unwrap();
            if points > 0 && points_seen.last() != Some(&points) {
                points_seen.push(points);
                if points_seen.len() == 2 {
                    screenshot(&client, "3-run-training").await;
                }
            }
        }
        if phase == "Succeeded" || phase == "Failed" {
            assert_eq!(phase, "Succeeded", "{:#}", read_run(&server, &name).await);
            break;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {phase}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        progress_seen.len() >= 2 && progress_seen.windows(2).all(|w| w[0] < w[1]),
        "the progress bar should move forward while training: {progress_seen:?}"
    );
    assert!(
        points_seen.len() >= 2,
        "the loss curve should gain points while training: {points_seen:?}"
    );

    // Succeeded: metrics, the confusion matrix (from the summary) and the whole loss history.
    let confusion_shown = "!document.getElementById('confusion-section').hidden";
    until(&client, "the confusion matrix", confusion_shown).await;
    let run = read_run(&server, &name).await;
    let matrix = js(
        &client,
        "[...document.querySelectorAll('#confusion tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => Number(c.textContent)))",
    )
    .await;
    let cells: u64 = matrix
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(matrix.as_array().unwrap().len(), 2, "{matrix}");
    assert_eq!(
        cells,
        run["status"]["metrics"]["validationRows"].as_u64().unwrap()
    );
    let accuracy = js(
        &client,
        "[...document.querySelectorAll('#metrics tr')].find(r => r.querySelector('th').textContent === 'accuracy').querySelector('td').textContent",
    )
    .await;
    let expected = run["status"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy.as_str().unwrap().parse::<f64>().unwrap() - expected).abs() < 1e-3,
        "{accuracy} vs {expected}"
    );
    let points = eventually("the summary's loss history", 15, || async {
        let points = js(
            &client,
            "Number(document.getElementById('loss').dataset.points)",
        )
        .await
        .as_u64()?;
        (points == 500).then_some(points)
    })
    .await;
    assert_eq!(points, 500, "one point per iteration from summary.json");
    assert_eq!(
        js(&client, "document.querySelector('#model td')?.textContent").await,
        run["status"]["model"]["uri"]
    );
    // The whole page, not only what fits the window.
    client.set_window_size(1280, 2700).await.unwrap();
    screenshot(&client, "4-run-succeeded").await;
    client.set_window_size(1280, 1100).await.unwrap();

    // Cancel a running run from its page, with the confirmation.
    client
        .goto(&format!("{ui}run?namespace=default&name=before-token"))
        .await
        .unwrap();
    until(
        &client,
        "the cancel button",
        "!document.getElementById('cancel').hidden",
    )
    .await;
    screenshot(&client, "5-run-running").await;
    click(&client, Locator::Id("cancel")).await;
    client.accept_alert().await.unwrap();
    until(
        &client,
        "the run to end Cancelled",
        "document.querySelector('#phase .phase')?.textContent === 'Cancelled'",
    )
    .await;
    assert_eq!(
        read_run(&server, "before-token").await["status"]["phase"],
        "Cancelled"
    );

    // The list, filtered by phase from its form.
    client
        .goto(&format!("{ui}?namespace=default&phase=Cancelled"))
        .await
        .unwrap();
    let names = eventually("the cancelled runs", 15, || async {
        let names = js(
            &client,
            "[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.name).sort()",
        )
        .await;
        (names.as_array()?.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(names, json!(["before-token", "made-elsewhere"]));
    client.goto(&ui).await.unwrap();
    until(
        &client,
        "every run in the list",
        "document.querySelectorAll('#runs tbody tr').length === 3",
    )
    .await;
    screenshot(&client, "6-runs").await;
    let list_ms = mark(&client, "kubetrain:first-rows").await;

    // Without a mouse: Tab reaches a run's link, Enter opens it.
    let mut reached = false;
    // WebDriver's codes for the Tab and Enter keys.
    let press = |key: &'static str| {
        let client = &client;
        async move {
            let focused = client.active_element().await.unwrap();
            focused.send_keys(key).await.unwrap();
        }
    };
    for _ in 0..40 {
        press("\u{E004}").await;
        let href = js(&client, "document.activeElement.getAttribute('href') || ''").await;
        if href.as_str().unwrap().starts_with("run?") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached a run's link");
    press("\u{E007}").await;
    eventually("Enter to open the run's page", 15, || async {
        let url = client.current_url().await.ok()?;
        (url.path() == "/ui/run").then_some(())
    })
    .await;

    // On a phone-sized screen the pages still fit (no sideways scrolling of the page itself).
    client.set_window_size(390, 844).await.unwrap();
    client
        .goto(&format!("{ui}run?namespace=default&name={name}"))
        .await
        .unwrap();
    until(&client, "the run page on a phone", confusion_shown).await;
    let overflow = js(
        &client,
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page scrolls sideways by {overflow}px"
    );
    screenshot(&client, "7-run-phone").await;
    let run_ms = mark(&client, "kubetrain:first-render").await;
    let bytes = js(
        &client,
        "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).reduce((sum, e) => sum + e.decodedBodySize, 0)",
    )
    .await;
    // For the README: how long until a person sees data, on this machine (debug build).
    eprintln!(
        "UI timings: runs list shows its rows {list_ms:.0} ms after navigation starts; the run \
         page shows the run {run_ms:.0} ms after (summary included later); the run page \
         loaded {bytes} bytes of HTML, scripts and styles (API answers included)"
    );
    client.close().await.unwrap();
}
