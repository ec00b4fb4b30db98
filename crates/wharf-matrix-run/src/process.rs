//! One cargo process: started in its own process group with its output in a log file,
//! waited for with a deadline, and killed with everything it started.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

/// How a process ended.
#[derive(Debug)]
pub enum Exit {
    Exited(ExitStatus),
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// The cancel flag was raised (Ctrl-C); the process group was killed.
    Cancelled,
}

/// How often a running process is checked. Cells take seconds to minutes, so a tenth of a
/// second is invisible in their time and costs nothing.
const POLL: Duration = Duration::from_millis(100);

/// How long a timed-out cell has between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Runs `command` with stdout and stderr appended to `log` (one file, so cargo's stderr
/// and the tests' stdout stay in the order they were written) until it exits, `deadline`
/// passes or `cancel` is raised.
///
/// The process leads a new process group, and the group is killed in every case: on
/// timeout or cancel to stop cargo, rustc and the tests, and after a normal exit to stop
/// what a test left running in the background.
///
/// On timeout or cancel the group first gets SIGTERM and [`GRACE`] to end: cargo-nextest
/// runs each test in a process group of its own, out of reach of ours, and kills those
/// groups itself when it is terminated (a SIGKILL would leave them running). Then the
/// group gets SIGKILL. A process that moves itself into another group or session, other
/// than through nextest, escapes this; nothing short of a cgroup would catch it.
pub fn run(
    mut command: Command,
    log: &File,
    deadline: Instant,
    cancel: &AtomicBool,
) -> io::Result<Exit> {
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0);
    tracing::debug!(?command, "starting process");
    let mut child = command.spawn()?;
    let group = Pid::from_child(&child);
    let exit = loop {
        if let Some(status) = child.try_wait()? {
            break Exit::Exited(status);
        }
        if cancel.load(Ordering::Relaxed) {
            break Exit::Cancelled;
        }
        if Instant::now() >= deadline {
            break Exit::TimedOut;
        }
        thread::sleep(POLL);
    };
    if !matches!(exit, Exit::Exited(_)) {
        let _ = kill_process_group(group, Signal::TERM);
        let until = Instant::now() + GRACE;
        while child.try_wait()?.is_none() && Instant::now() < until {
            thread::sleep(POLL);
        }
    }
    // ESRCH (the group is already empty) is the common case after a normal exit.
    let _ = kill_process_group(group, Signal::KILL);
    if !matches!(exit, Exit::Exited(_)) {
        child.wait()?;
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        // Zombies count as gone: a killed grandchild is reaped by init, not by us.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    #[test]
    fn a_timeout_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("log")).unwrap();
        let pid_file = dir.path().join("pid");
        // A shell that starts a long sleep in the background, says its pid, and waits. On a
        // busy machine the deadline may pass before the shell got that far (then there is
        // no grandchild to check): run it again with a longer deadline, so what the test
        // checks never depends on the machine's speed.
        let pid = (0..8)
            .find_map(|attempt| {
                let mut command = Command::new("sh");
                command.arg("-c").arg(format!(
                    "sleep 600 & echo $! > {}.tmp && mv {0}.tmp {0}; wait",
                    pid_file.display()
                ));
                let deadline = Instant::now() + Duration::from_millis(200 << attempt);
                let exit = run(command, &log, deadline, &AtomicBool::new(false)).unwrap();
                assert!(matches!(exit, Exit::TimedOut), "{exit:?}");
                std::fs::read_to_string(&pid_file).ok()
            })
            .expect("the shell never got to start its background sleep")
            .trim()
            .parse::<i32>()
            .unwrap();
        // SIGKILL is delivered before kill() returns, but the kernel may take a moment to
        // tear the process down: wait for that, up to a generous bound.
        let gone = (0..1000).any(|_| {
            thread::sleep(Duration::from_millis(10));
            !alive(pid)
        });
        assert!(
            gone,
            "the background sleep (pid {pid}) survived the timeout"
        );
    }

    #[test]
    fn output_goes_to_the_log_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let log = File::create(&path).unwrap();
        let mut command = Command::new("sh");
        command.arg("-c").arg("echo one; echo two >&2; echo three");
        let exit = run(
            command,
            &log,
            Instant::now() + Duration::from_secs(600),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(matches!(exit, Exit::Exited(s) if s.success()));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn cancel_stops_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("log")).unwrap();
        let mut command = Command::new("sleep");
        command.arg("600");
        let cancel = AtomicBool::new(true);
        let exit = run(
            command,
            &log,
            Instant::now() + Duration::from_secs(600),
            &cancel,
        )
        .unwrap();
        assert!(matches!(exit, Exit::Cancelled), "{exit:?}");
    }
}
