#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::data::parse_csv;

const CSV: &[u8] = b"f1,f2,label\n1.5,2,yes\n-3,4.25,no\n0,1e-3,yes\n";

fn selection() -> ColumnSelection {
    ColumnSelection {
        label: Some("label".into()),
        label_required: true,
        features: None,
    }
}

fn fingerprint() -> Fingerprint {
    Fingerprint {
        uri: "s3://data/x.csv".into(),
        rows: 3,
        bytes: CSV.len() as u64,
        sha256: hex::encode(Sha256::digest(CSV)),
    }
}

fn meta(size: u64, e_tag: &str) -> ObjectMeta {
    ObjectMeta {
        location: "x.csv".into(),
        last_modified: "2026-11-25T12:00:00Z".parse().unwrap(),
        size,
        e_tag: Some(e_tag.into()),
        version: None,
    }
}

#[test]
fn an_entry_loads_exactly_what_was_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DatasetCache::open(dir.path(), DEFAULT_BUDGET).unwrap();
    let table = parse_csv(CSV, &selection()).unwrap();
    let key = DatasetCache::key("s3://data/x.csv", &meta(44, "a"), &selection());
    assert!(cache.load(&key).is_none());
    cache.store(&key, &table, &fingerprint()).unwrap();

    let (loaded, loaded_fingerprint) = cache.load(&key).unwrap();
    assert_eq!(loaded.feature_names, table.feature_names);
    assert_eq!(loaded.features, table.features);
    assert_eq!(loaded.labels, table.labels);
    assert_eq!(loaded_fingerprint, fingerprint());
}

#[test]
fn the_key_follows_the_object_and_the_selection() {
    let base = DatasetCache::key("s3://data/x.csv", &meta(44, "a"), &selection());
    assert_eq!(
        base,
        DatasetCache::key("s3://data/x.csv", &meta(44, "a"), &selection())
    );
    let other_tag = DatasetCache::key("s3://data/x.csv", &meta(44, "b"), &selection());
    let other_size = DatasetCache::key("s3://data/x.csv", &meta(45, "a"), &selection());
    let other_uri = DatasetCache::key("s3://data/y.csv", &meta(44, "a"), &selection());
    let mut columns = selection();
    columns.features = Some(vec!["f2".into()]);
    let other_columns = DatasetCache::key("s3://data/x.csv", &meta(44, "a"), &columns);
    for other in [other_tag, other_size, other_uri, other_columns] {
        assert_ne!(base, other);
    }
}

#[test]
fn damaged_or_foreign_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = DatasetCache::open(dir.path(), DEFAULT_BUDGET).unwrap();
    let table = parse_csv(CSV, &selection()).unwrap();
    let key = DatasetCache::key("s3://data/x.csv", &meta(44, "a"), &selection());
    cache.store(&key, &table, &fingerprint()).unwrap();
    let path = cache.path(&key);
    let good = std::fs::read(&path).unwrap();

    // One flipped bit in the numbers.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    std::fs::write(&path, &flipped).unwrap();
    assert!(cache.load(&key).is_none());
    // Truncated.
    std::fs::write(&path, &good[..good.len() - 40]).unwrap();
    assert!(cache.load(&key).is_none());
    // Intact, but stored under another key's name.
    let other = DatasetCache::key("s3://data/x.csv", &meta(44, "b"), &selection());
    std::fs::write(cache.path(&other), &good).unwrap();
    assert!(cache.load(&other).is_none());
    // Rewritten, it loads again.
    cache.store(&key, &table, &fingerprint()).unwrap();
    assert!(cache.load(&key).is_some());
}

#[test]
fn the_directory_is_trimmed_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let table = parse_csv(CSV, &selection()).unwrap();
    let keys: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|tag| DatasetCache::key("s3://data/x.csv", &meta(44, tag), &selection()))
        .collect();
    let unbounded = DatasetCache::open(dir.path(), DEFAULT_BUDGET).unwrap();
    unbounded.store(&keys[0], &table, &fingerprint()).unwrap();
    let entry = std::fs::metadata(unbounded.path(&keys[0])).unwrap().len();
    // Room for two entries: storing a third drops the least recently used one.
    let cache = DatasetCache::open(dir.path(), entry * 2).unwrap();
    let old = SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .append(true)
        .open(cache.path(&keys[0]))
        .unwrap()
        .set_modified(old)
        .unwrap();
    cache.store(&keys[1], &table, &fingerprint()).unwrap();
    cache.store(&keys[2], &table, &fingerprint()).unwrap();
    assert!(cache.load(&keys[0]).is_none(), "the oldest entry goes");
    assert!(cache.load(&keys[1]).is_some());
    assert!(cache.load(&keys[2]).is_some());
}
