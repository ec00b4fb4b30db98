//! `verify` against edited, removed, reordered, torn and rewritten ledgers.

use serde_json::json;
use wharf_ledger::{Draft, Entry, Kind, Problem, Tamper, verify};
use wharf_oci::Digest;

fn draft(n: u64) -> Draft {
    let kinds = [
        Kind::Verification,
        Kind::Approval,
        Kind::Promotion,
        Kind::Rollback,
        Kind::Deploy,
    ];
    Draft {
        kind: kinds[(n as usize - 1) % kinds.len()],
        who: format!("alice{n}@example.com"),
        when: jiff::Timestamp::from_second(1_790_000_000 + n as i64).unwrap(),
        digest: Digest::sha256(format!("image {n}").as_bytes()),
        from: (n > 2).then(|| "dev".to_owned()),
        to: (n > 1).then(|| "staging".to_owned()),
        evidence: json!({
            "gates": [{ "name": "scan", "pass": n.is_multiple_of(2), "ms": 1200 + n }],
            "note": "tab\there, é, \"quoted\" \\ and a newline\n",
            "delta": -3,
        }),
        signature: (n == 2)
            .then(|| "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----".into()),
    }
}

fn entries(count: u64) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for n in 1..=count {
        out.push(Entry::try_after(out.last(), draft(n)).unwrap());
    }
    out
}

fn ledger(entries: &[Entry]) -> Vec<u8> {
    entries.iter().flat_map(Entry::line).collect()
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn tamper(bytes: &[u8]) -> Tamper {
    verify(bytes).expect_err("the tampered ledger must not verify")
}

#[test]
fn a_written_ledger_verifies_to_the_same_entries() {
    let written = entries(5);
    assert_eq!(verify(&ledger(&written)).unwrap(), written);
    assert_eq!(verify(b"").unwrap(), vec![]);
}

/// Checked against serde_json's own compact writer, whose `Value` keeps keys sorted: an
/// independent canonical form for entries, which hold no floats.
#[test]
fn each_line_is_the_canonical_json_of_its_entry_with_its_hash() {
    for entry in entries(5) {
        let line = entry.line();
        assert_eq!(line.last(), Some(&b'\n'));
        let mut value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), line[..line.len() - 1]);
        let hash = value.as_object_mut().unwrap().remove("hash").unwrap();
        let without = serde_json::to_vec(&value).unwrap();
        assert_eq!(hash, Digest::sha256(&without).to_string());
        assert_eq!(hash, entry.hash().to_string());
    }
}

/// Every byte of every entry, the newlines included, is covered: the newline ending a line
/// belongs to that line (changing it joins two lines, and the joined line does not parse;
/// changing the last one leaves a line with no newline, which reads as a torn write).
#[test]
fn changing_any_byte_fails_and_names_the_entry_on_that_line() {
    let original = ledger(&entries(5));
    let mut checked = 0;
    for position in 0..original.len() {
        let line = 1 + original[..position].iter().filter(|&&b| b == b'\n').count();
        let byte = original[position];
        let replacements = [
            byte ^ 0x01,
            if byte == b'#' { b'%' } else { b'#' },
            if byte == b'7' { b'8' } else { b'7' },
        ];
        for replacement in replacements {
            let mut bytes = original.clone();
            bytes[position] = replacement;
            let found = tamper(&bytes);
            assert_eq!(
                found.line, line,
                "byte {position} ({:?} -> {:?}) is on line {line}, but verify named: {found}",
                byte as char, replacement as char
            );
            let message = found.to_string();
            assert!(
                message.contains(&format!("line {line}")),
                "the message does not name line {line}: {message}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, original.len() * 3);
}

#[test]
fn a_removed_entry_is_named_missing() {
    let mut all = lines(&ledger(&entries(5)));
    all.remove(2);
    let found = tamper(&all.concat());
    assert_eq!((found.line, found.seq), (3, Some(4)));
    assert_eq!(found.problem, Problem::Missing { expected: 3 });
    assert!(
        found
            .to_string()
            .starts_with("entry 3 is missing: line 3 holds entry 4"),
        "{found}"
    );

    let mut all = lines(&ledger(&entries(5)));
    all.remove(0);
    let found = tamper(&all.concat());
    assert_eq!(found.problem, Problem::Missing { expected: 1 });
}

#[test]
fn swapped_entries_are_named_in_order() {
    let mut all = lines(&ledger(&entries(5)));
    all.swap(2, 3);
    let found = tamper(&all.concat());
    assert_eq!((found.line, found.seq), (3, Some(4)));
    assert_eq!(found.problem, Problem::Before { expected: 3 });
    assert!(
        found
            .to_string()
            .contains("entry 4 (line 3, rollback sha256:"),
        "{found}"
    );
    assert!(
        found.to_string().contains("comes before entry 3"),
        "{found}"
    );
}

#[test]
fn a_repeated_entry_is_named() {
    let mut all = lines(&ledger(&entries(3)));
    let again = all[1].clone();
    all.insert(2, again);
    let found = tamper(&all.concat());
    assert_eq!(
        (found.line, found.problem),
        (3, Problem::Repeated { after: 2 })
    );
}

/// Someone who edits an entry and writes its hash anew breaks the link from the next one.
#[test]
fn an_edited_and_rehashed_entry_breaks_the_next_link() {
    let mut written = entries(4);
    written[1].who = "mallory".into();
    let found = tamper(&ledger(&written));
    assert_eq!((found.line, found.seq), (3, Some(3)));
    assert!(
        matches!(found.problem, Problem::BrokenLink { .. }),
        "{found}"
    );
    assert!(
        found
            .to_string()
            .contains("an entry before it was edited or removed")
    );
}

#[test]
fn an_edited_entry_is_named_with_both_hashes() {
    let bytes = ledger(&entries(3));
    let text = String::from_utf8(bytes)
        .unwrap()
        .replacen("alice2@", "mallory@", 1);
    let found = tamper(text.as_bytes());
    assert_eq!(found.line, 2);
    assert!(matches!(found.problem, Problem::Edited { .. }), "{found}");
    assert!(
        found
            .to_string()
            .starts_with("entry 2 (line 2, approval sha256:"),
        "{found}"
    );
}

#[test]
fn reformatted_json_is_not_canonical() {
    let written = entries(3);
    let mut all = lines(&ledger(&written));
    let value: serde_json::Value = serde_json::from_slice(&all[1]).unwrap();
    all[1] = format!(
        "{}\n",
        serde_json::to_string(&value)
            .unwrap()
            .replacen(':', ": ", 1)
    )
    .into_bytes();
    let found = tamper(&all.concat());
    assert_eq!((found.line, found.problem), (2, Problem::NotCanonical));
}

#[test]
fn a_torn_last_line_is_named() {
    let bytes = ledger(&entries(3));
    for cut in [1, 2, 40] {
        let found = tamper(&bytes[..bytes.len() - cut]);
        assert_eq!(
            (found.line, &found.problem),
            (3, &Problem::Torn),
            "cut {cut}"
        );
        assert!(
            found
                .to_string()
                .contains("a write to the ledger was cut off")
        );
    }
}

#[test]
fn a_float_in_a_line_is_an_error_not_a_panic() {
    let bytes = ledger(&entries(1));
    let text = String::from_utf8(bytes)
        .unwrap()
        .replacen("\"delta\":-3", "\"delta\":-3.5", 1);
    let found = tamper(text.as_bytes());
    assert_eq!(found.line, 1);
    assert!(
        found
            .to_string()
            .contains("entry.evidence.delta is a floating-point number"),
        "{found}"
    );
}

#[test]
fn a_draft_with_a_float_is_refused_with_its_path() {
    let mut float = draft(1);
    float.evidence = json!({ "gates": [{ "name": "bench", "ratio": 1.1 }] });
    let error = Entry::try_after(None, float).unwrap_err();
    assert_eq!(error.path, "evidence.gates[0].ratio");
    assert!(error.to_string().contains("record an integer"), "{error}");
}
