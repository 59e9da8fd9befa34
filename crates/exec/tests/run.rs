//! One attempt of `kubetrain exec` around real programs (`sh`), with storage on local disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kubetrain_api::Iteration;
use kubetrain_exec::{ExecConfig, run};

fn config(dir: &Path, script: &str) -> ExecConfig {
    ExecConfig {
        command: vec!["sh".into(), "-c".into(), script.into()],
        data: dir.join("data.csv").display().to_string(),
        validation_data: None,
        download_dir: Some(dir.join("downloads")),
        out: dir.join("out").display().to_string(),
        model_dir: dir.join("model"),
        echo_events: false,
    }
}

#[tokio::test]
async fn the_attempt_ends_with_the_program_whatever_it_leaves_behind_or_prints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), "a,label\n1,0\n").unwrap();
    // A background process keeps stdout and stderr open long after the program exited; a
    // line of bytes that are not UTF-8 sits between two events.
    let script = r#"
        sleep 30 &
        test -f "$KUBETRAIN_DATA_FILE" || exit 65
        echo '{"event":"progress","iteration":1,"total":2}'
        printf 'caf\351 \377\n'
        echo '{"event":"progress","iteration":2,"total":2,"loss":0.5}'
        echo '{"event":"metrics","metrics":{"accuracy":0.75}}'
        mkdir -p "$KUBETRAIN_MODEL_DIR/tokenizer"
        echo weights > "$KUBETRAIN_MODEL_DIR/model.bin"
        echo vocab > "$KUBETRAIN_MODEL_DIR/tokenizer/vocab.txt"
    "#;
    let seen = Mutex::new(Vec::new());
    let record = |i: &Iteration| seen.lock().unwrap().push(i.iteration);
    let started = Instant::now();
    let done = run(&config(dir.path(), script), &record).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the attempt waited for the background process: {:?}",
        started.elapsed()
    );
    assert_eq!(*seen.lock().unwrap(), [1, 2]);
    assert_eq!(done.results.metrics.accuracy, Some(0.75));
    assert_eq!(done.results.progress.iteration, 2);
    // Every file is stored where its URI says, the main one in the status.
    let out = dir.path().join("out");
    assert_eq!(
        done.results.model.uri,
        out.join("model.bin").display().to_string()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("tokenizer/vocab.txt")).unwrap(),
        "vocab\n"
    );
    let files = done.summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for file in files {
        let stored = Path::new(file["uri"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(stored).unwrap().len(),
            file["bytes"].as_u64().unwrap()
        );
    }
    assert_eq!(done.summary["program"], "sh");
    assert!(out.join("summary.json").is_file());
}

#[tokio::test]
async fn a_program_that_closed_its_output_costs_no_wait() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), "a,label\n1,0\n").unwrap();
    let script = r#"echo '{"event":"progress","iteration":1,"total":1}'; echo m > "$KUBETRAIN_MODEL_DIR/model.bin""#;
    let started = Instant::now();
    run(&config(dir.path(), script), &|_: &Iteration| {})
        .await
        .unwrap();
    // Well under the 5 s the pipes are drained for when something still holds them.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the attempt took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failed_program_stores_nothing_and_a_missing_dataset_stops_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), "a,label\n1,0\n").unwrap();
    let script =
        r#"echo half > "$KUBETRAIN_MODEL_DIR/model.bin"; echo "no GPU found" >&2; exit 75"#;
    let error = run(&config(dir.path(), script), &|_: &Iteration| {})
        .await
        .unwrap_err();
    assert_eq!((error.reason.as_str(), error.exit_code), ("Transient", 75));
    assert_eq!(
        error.message,
        "no GPU found (the program exited with code 75)"
    );
    assert!(!dir.path().join("out").exists());

    let fresh = tempfile::tempdir().unwrap();
    let marker = fresh.path().join("ran");
    let script = format!("touch {}", marker.display());
    let error = run(&config(fresh.path(), &script), &|_: &Iteration| {})
        .await
        .unwrap_err();
    assert_eq!(error.reason, "BadInput");
    assert!(error.message.contains("data.csv"), "{}", error.message);
    assert!(!marker.exists(), "the program started without its dataset");
}
