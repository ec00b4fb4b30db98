use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::github::{annotation_command, command, output_entry};
use super::*;
use crate::event::{Annotation, Level};

/// A writer whose bytes a test can read while the reporter still holds it.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn finished(step: &str, outcome: Outcome, ms: u64, cache_hit: bool, outputs: Outputs) -> Event {
    Event::Finished {
        step: step.into(),
        outcome,
        duration_ms: ms,
        cache_hit,
        outputs,
        log: None,
    }
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A run: fmt cached, scan with counts, image then push with the image's outputs, a failure.
fn run_events() -> Vec<Event> {
    let image = BTreeMap::from([
        ("digest".to_string(), Output::Digest(DIGEST.into())),
        (
            "reference".to_string(),
            Output::Reference("oci:target/image:1.2.3".into()),
        ),
        (
            "tags".to_string(),
            Output::Tags(vec!["1.2.3".into(), "EOF".into(), "latest".into()]),
        ),
    ]);
    let push = BTreeMap::from([(
        "reference".to_string(),
        Output::Reference(format!("docker://127.0.0.1:5000/app@{DIGEST}")),
    )]);
    let scan = BTreeMap::from([
        ("critical".to_string(), Output::Count(0)),
        ("high".to_string(), Output::Count(2)),
    ]);
    vec![
        Event::Started { step: "fmt".into() },
        finished("fmt", Outcome::Succeeded, 10, true, Outputs::new()),
        finished("image", Outcome::Succeeded, 1_500, false, image),
        finished("scan", Outcome::Succeeded, 300, false, scan),
        finished("push", Outcome::Succeeded, 61_000, false, push),
        finished(
            "test",
            Outcome::Failed {
                message: "1 test failed | see log".into(),
            },
            3_100,
            false,
            Outputs::new(),
        ),
        Event::Done {
            ok: false,
            duration_ms: 66_000,
        },
    ]
}

/// Reads `$GITHUB_OUTPUT` as the runner does (actions/runner `FileCommandManager`): skip empty
/// lines; `name=value` when `=` comes before any `<<`; else `name<<DELIM`, then every line up
/// to one equal to DELIM, joined with newlines; a missing end delimiter is an error.
fn parse_github_output(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                pairs.push((line[..e].to_string(), line[e + 1..].to_string()))
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                if name.is_empty() || delimiter.is_empty() {
                    return Err(format!("invalid heredoc line {line:?}"));
                }
                let mut value = Vec::new();
                loop {
                    match lines.next() {
                        Some(l) if l == delimiter => break,
                        Some(l) => value.push(l),
                        None => return Err(format!("no end delimiter {delimiter:?}")),
                    }
                }
                pairs.push((name.to_string(), value.join("\n")));
            }
            _ => return Err(format!("invalid line {line:?}")),
        }
    }
    Ok(pairs)
}

// The cases of actions/toolkit's packages/core/__tests__/command.test.ts.
#[test]
fn commands_escape_data_and_properties_as_toolkit_does() {
    assert_eq!(command("some-command", &[], ""), "::some-command::");
    assert_eq!(
        command(
            "some-command",
            &[],
            "percent % percent % cr \r cr \r lf \n lf \n"
        ),
        "::some-command::percent %25 percent %25 cr %0D cr %0D lf %0A lf %0A"
    );
    assert_eq!(
        command("some-command", &[], "%25 %25 %0D %0D %0A %0A"),
        "::some-command::%2525 %2525 %250D %250D %250A %250A"
    );
    assert_eq!(
        command(
            "some-command",
            &[(
                "name",
                Some(
                    "percent % percent % cr \r cr \r lf \n lf \n colon : colon : comma , comma ,"
                        .into()
                )
            )],
            ""
        ),
        "::some-command name=percent %25 percent %25 cr %0D cr %0D lf %0A lf %0A colon %3A colon %3A comma %2C comma %2C::"
    );
    assert_eq!(
        command(
            "some-command",
            &[(
                "name",
                Some("%25 %25 %0D %0D %0A %0A %3A %3A %2C %2C".into())
            )],
            ""
        ),
        "::some-command name=%2525 %2525 %250D %250D %250A %250A %253A %253A %252C %252C::"
    );
    // Colons and commas stay as they are in data: only properties need them escaped.
    assert_eq!(escape_data("a:b,c"), "a:b,c");
    assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    assert_eq!(
        command(
            "some-command",
            &[
                ("prop1", Some("value 1".into())),
                ("prop2", Some("value 2".into())),
                ("prop3", None)
            ],
            "some data"
        ),
        "::some-command prop1=value 1,prop2=value 2::some data"
    );
}

#[test]
fn annotations_name_file_line_col_and_title() {
    let annotation = Annotation {
        level: Level::Warning,
        file: Some("crates/a/src/lib.rs".into()),
        line: Some(3),
        column: Some(9),
        title: Some("clippy::needless_return".into()),
        message: "unneeded `return` statement\n100%".into(),
    };
    assert_eq!(
        annotation_command(&annotation),
        "::warning file=crates/a/src/lib.rs,line=3,col=9,title=clippy%3A%3Aneedless_return::unneeded `return` statement%0A100%25"
    );
    let bare = Annotation {
        level: Level::Notice,
        file: None,
        line: None,
        column: None,
        title: None,
        message: "m".into(),
    };
    assert_eq!(annotation_command(&bare), "::notice::m");
}

#[test]
fn output_entries_parse_back_by_the_runners_rules() {
    let values = [
        ("plain", "sha256:abc"),
        ("eof", "EOF"),
        ("lines", "one\nEOF\n\nthree"),
        ("looks_like_a_delimiter", "ghadelimiter_\nx=y\na<<b"),
        ("empty", ""),
    ];
    let text: String = values.iter().map(|(n, v)| output_entry(n, v)).collect();
    let parsed = parse_github_output(&text).unwrap();
    let expected: Vec<(String, String)> = values
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(parsed, expected);
}

#[test]
fn github_writes_outputs_and_summary_at_done() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("github_output");
    let summary = dir.path().join("step_summary");
    // Both files exist with earlier steps' content: the reporter appends.
    std::fs::write(&output, "earlier=1\n").unwrap();
    std::fs::write(&summary, "# earlier\n").unwrap();
    let files = GitHubFiles {
        step_summary: Some(summary.clone()),
        output: Some(output.clone()),
    };
    let log = Buffer::default();
    let github = GitHub::with_writer(dir.path(), files, Box::new(log.clone()));
    for event in run_events() {
        github.event(&event);
    }

    let parsed = parse_github_output(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let push_reference = format!("docker://127.0.0.1:5000/app@{DIGEST}");
    let expected = [
        ("earlier", "1"),
        ("digest", DIGEST),
        ("reference", &push_reference),
        ("tags", "1.2.3\nEOF\nlatest"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(parsed, expected);

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("# earlier\n"), "{md}");
    for expected in [
        "| Step | Outcome | Duration | Cache |",
        "| fmt | ✅ ok | 0.0s | hit |",
        "| push | ✅ ok | 1m01s |  |",
        "| test | ❌ failed: 1 test failed \\| see log | 3.1s |  |",
        &format!("- Digest: `{DIGEST}`"),
        &format!("- Reference: `{push_reference}`"),
        "- Tags: `1.2.3`, `EOF`, `latest`",
        "| scan | critical | 0 |",
        "| scan | high | 2 |",
    ] {
        assert!(
            md.contains(expected),
            "no {expected:?} in the summary:\n{md}"
        );
    }
    let commands = log.text();
    assert!(
        commands.contains("::group::fmt (ok, 0.0s, cached)\n::endgroup::\n"),
        "{commands}"
    );
    assert!(
        commands.contains(
            "::error title=test failed::1 test failed | see log\n::group::test (failed, 3.1s)\n"
        ),
        "{commands}"
    );
}

#[test]
fn github_groups_hold_the_log_with_commands_stopped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clippy.log"),
        "line 1\n::error::not ours\nlast",
    )
    .unwrap();
    let out = Buffer::default();
    let github = GitHub::with_writer(dir.path(), GitHubFiles::default(), Box::new(out.clone()));
    github.event(&Event::Finished {
        step: "clippy".into(),
        outcome: Outcome::Succeeded,
        duration_ms: 12_345,
        cache_hit: false,
        outputs: Outputs::new(),
        log: Some("clippy.log".into()),
    });
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "::group::clippy (ok, 12.3s)");
    let token = lines[1].strip_prefix("::stop-commands::").expect(&text);
    assert_eq!(lines[2..5], ["line 1", "::error::not ours", "last"]);
    assert_eq!(lines[5], format!("::{token}::"));
    assert_eq!(lines[6], "::endgroup::");
    assert_eq!(lines.len(), 7, "{text}");
}

#[test]
fn terminal_plain_lines_tail_of_a_failed_log_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let log: String = (1..=100).map(|n| format!("log line {n}\n")).collect();
    std::fs::write(dir.path().join("test.log"), log).unwrap();
    let out = Buffer::default();
    let terminal = Terminal::plain(dir.path(), Box::new(out.clone()));
    let mut events = run_events();
    events.insert(
        1,
        Event::Waiting {
            step: "clippy".into(),
            lock: "target/".into(),
            holder: "test".into(),
        },
    );
    if let Some(Event::Finished { log, .. }) = events.iter_mut().find(|e| {
        matches!(
            e,
            Event::Finished {
                outcome: Outcome::Failed { .. },
                ..
            }
        )
    }) {
        *log = Some("test.log".into());
    }
    events.insert(
        2,
        Event::Annotated {
            step: "clippy".into(),
            annotation: Annotation {
                level: Level::Warning,
                file: Some("src/lib.rs".into()),
                line: Some(2),
                column: Some(9),
                title: Some("unused_variables".into()),
                message: "unused variable: `x`\nhelp: prefix it".into(),
            },
        },
    );
    for event in &events {
        terminal.event(event);
    }
    let text = out.text();
    for expected in [
        "==> fmt started\n",
        "warning src/lib.rs:2:9 [unused_variables] unused variable: `x`\n",
        "... clippy waiting for target/ held by test\n",
        "cached fmt\n",
        "ok push 1m01s\n",
        "FAILED test 3.1s: 1 test failed | see log\n",
        "log line 61\n",
        "log line 100\n",
        "step   outcome       time  cache\n",
        "fmt    ok            0.0s  cached\n",
        "test   failed        3.1s\n",
        &format!("digest: {DIGEST}\n"),
        "tags: 1.2.3, EOF, latest\n",
        "run FAILED in 1m06s",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("log line 60\n"),
        "more than 40 lines of the log:\n{text}"
    );
}

#[test]
fn tail_of_a_log_larger_than_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let log: String = (1..=20_000).map(|n| format!("line {n}\n")).collect();
    std::fs::write(&path, log).unwrap();
    let expected: Vec<String> = (19_961..=20_000).map(|n| format!("line {n}")).collect();
    assert_eq!(tail(&path, 40).unwrap(), expected.join("\n"));
}

#[test]
fn json_lines_are_events_one_per_line() {
    let json = JsonLines::new(Vec::new());
    let events = run_events();
    for event in &events {
        json.event(event);
    }
    let text = String::from_utf8(json.into_inner()).unwrap();
    let parsed: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, events);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with(r#"{"event":"started""#)
    );
}

/// A reader that went away: every write fails with `BrokenPipe`; counts the attempts.
struct ClosedPipe(Arc<Mutex<u32>>);

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        *self.0.lock().unwrap() += 1;
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn json_lines_stop_quietly_when_the_reader_went_away() {
    let attempts = Arc::new(Mutex::new(0));
    let json = JsonLines::new(ClosedPipe(attempts.clone()));
    for event in run_events() {
        json.event(&event);
    }
    assert_eq!(*attempts.lock().unwrap(), 1, "writes after the pipe closed");
}

#[test]
fn fanout_sends_every_event_to_each_reporter() {
    let (a, b) = (Buffer::default(), Buffer::default());
    let fanout = Fanout(vec![
        Box::new(JsonLines::new(a.clone())),
        Box::new(JsonLines::new(b.clone())),
    ]);
    for event in run_events() {
        fanout.event(&event);
    }
    assert_eq!(a.text().lines().count(), run_events().len());
    assert_eq!(a.text(), b.text());
}

#[test]
fn durations_read_well_in_a_column() {
    assert_eq!(duration(0), "0.0s");
    assert_eq!(duration(12_345), "12.3s");
    assert_eq!(duration(59_999), "59.9s");
    assert_eq!(duration(60_000), "1m00s");
    assert_eq!(duration(3_725_000), "62m05s");
}

#[test]
fn choose_gives_one_reporter_or_a_fanout() {
    // Only the shape: the reporters write to the process's stdout and stderr.
    let _ = choose(false, false, Path::new("."), GitHubFiles::default());
    let _ = choose(true, true, Path::new("."), GitHubFiles::default());
}

#[test]
fn terminal_spinners_come_and_go_with_their_steps() {
    let terminal = Terminal::hidden_live(Path::new("."));
    let events = run_events();
    terminal.event(&Event::Waiting {
        step: "clippy".into(),
        lock: "target/".into(),
        holder: "fmt".into(),
    });
    assert_eq!(terminal.spinners(), 1);
    terminal.event(&events[0]); // fmt started
    assert_eq!(terminal.spinners(), 2);
    terminal.event(&events[1]); // fmt finished
    assert_eq!(terminal.spinners(), 1);
    for event in &events[2..] {
        terminal.event(event);
    }
    assert_eq!(terminal.spinners(), 0, "spinners left after done");
}
