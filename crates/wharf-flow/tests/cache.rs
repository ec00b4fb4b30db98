//! The step cache: round trips, and every unusable entry is a miss.

use wharf_flow::{Cache, Entry, Output, Outputs};

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn entry(key: &str) -> Entry {
    Entry {
        step: "image".to_string(),
        key: key.to_string(),
        outputs: Outputs::from([(
            "digest".to_string(),
            Output::Digest(format!("sha256:{}", "a".repeat(64))),
        )]),
        duration_ms: 1200,
    }
}

#[test]
fn put_then_get_round_trips_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("nested/cache"));
    assert_eq!(cache.get(KEY), None);
    cache.put(&entry(KEY)).unwrap();
    assert_eq!(cache.get(KEY), Some(entry(KEY)));
    // Overwriting is fine (a corrupt entry gets replaced this way).
    cache.put(&entry(KEY)).unwrap();
    let names: Vec<_> = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [format!("{KEY}.json")]);
}

#[test]
fn corrupt_truncated_or_mismatched_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let path = cache.entry_path(KEY).unwrap();
    let whole = serde_json::to_vec(&entry(KEY)).unwrap();
    for bad in [
        b"not json".to_vec(),
        whole[..whole.len() / 2].to_vec(),
        Vec::new(),
        b"{\"step\": 1}".to_vec(),
        serde_json::to_vec(&entry(&"f".repeat(64))).unwrap(),
    ] {
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(cache.get(KEY), None, "{}", String::from_utf8_lossy(&bad));
    }
    // A directory where the entry should be: unreadable, still a miss.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert_eq!(cache.get(KEY), None);
}

#[test]
fn keys_that_are_not_digests_never_name_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    assert_eq!(cache.entry_path("../../etc/passwd"), None);
    assert_eq!(cache.get(""), None);
    let error = cache.put(&entry("../escape")).unwrap_err();
    assert!(error.to_string().contains("`../escape`"), "{error}");
}
