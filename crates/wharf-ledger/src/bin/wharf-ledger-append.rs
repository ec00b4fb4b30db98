//! Test helper, not installed: appends one entry to a ledger, as one CI runner would, so
//! tests can race many separate processes against one ledger.
//!
//! `wharf-ledger-append git REPO REMOTE WHO` (REMOTE `-`: none, the repository's own ref)
//! or `wharf-ledger-append file PATH WHO`.
//! It reads stdin to its end before appending, so a test can start every process and
//! release them all at once by closing their stdin.

use std::io::Read;
use std::process::ExitCode;

use wharf_ledger::{DEFAULT_REF, Draft, Kind, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (store, who) = match args.as_slice() {
        [kind, repo, remote, who] if kind == "git" => (
            Store::git(repo, DEFAULT_REF, (remote != "-").then(|| remote.clone())),
            who.clone(),
        ),
        [kind, path, who] if kind == "file" => (Store::file(path), who.clone()),
        _ => {
            eprintln!("usage: wharf-ledger-append git REPO REMOTE WHO | file PATH WHO");
            return ExitCode::from(2);
        }
    };
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let mut tries = 0;
    let appended = store.append(|entries| {
        tries += 1;
        Ok::<_, std::convert::Infallible>(Draft {
            kind: Kind::Promotion,
            who: who.clone(),
            when: jiff::Timestamp::now(),
            digest: wharf_oci::Digest::sha256(who.as_bytes()),
            from: Some("dev".into()),
            to: Some("staging".into()),
            evidence: serde_json::json!({ "seen": entries.len() }),
            signature: None,
        })
    });
    match appended {
        Ok(entry) => {
            println!("seq {} after {tries} tries", entry.seq);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
