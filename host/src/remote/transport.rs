//! Running the system `git` against a remote: bounded in time, never
//! prompting, its stderr kept for the error.
//!
//! The system `git` rather than gix's transports, so that whatever the user's
//! own `git push` can reach, `dlog` reaches too: SSH keys and agents,
//! `~/.ssh/config`, credential helpers, `http.proxy`, `insteadOf` rewrites,
//! and every server's protocol quirks (ARCHITECTURE.md §9c says more).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::backend::StorageError;

/// What a finished `git` run left: its exit status, stdout and stderr.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Exit code; none when killed by a signal.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error, trimmed.
    pub stderr: String,
}

impl Ran {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// How to run `git` for one remote.
#[derive(Clone, Debug)]
pub(crate) struct Git {
    /// The repository's git directory.
    pub git_dir: std::path::PathBuf,
    /// How long one `git` run may take before it is killed.
    pub timeout: Duration,
    /// The ssh command to use when the user configured none (BatchMode: a
    /// password prompt would hang a writer that has no terminal).
    pub ssh_command: Option<String>,
}

impl Git {
    /// Run `git <args>` in the repository. Errors only when `git` could not
    /// be run or did not finish in time; a non-zero exit is the caller's to
    /// read. `what` names the operation and the remote, for the error.
    pub(crate) fn run(&self, args: &[&str], what: &str) -> Result<Ran, StorageError> {
        run_in(&self.git_dir, args, self.timeout, self.ssh_command.as_deref(), what)
    }
}

/// Run `git --git-dir=<git_dir> <args>` with a deadline, in its own process
/// group so that the deadline also ends the ssh or HTTP helper it started.
pub(crate) fn run_in(
    git_dir: &Path,
    args: &[&str],
    timeout: Duration,
    ssh_command: Option<&str>,
    what: &str,
) -> Result<Ran, StorageError> {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new("git");
    command
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        // Nothing may wait for a person: no terminal prompt for a password,
        // no pager, no editor.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GIT_PAGER", "cat")
        .env("GIT_EDITOR", "true")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(ssh) = ssh_command {
        command.env("GIT_SSH_COMMAND", ssh);
    }
    let mut child = command
        .spawn()
        .map_err(|e| StorageError::io(format!("{what}: cannot run git (is it installed and on PATH?)"), e))?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (tx, rx) = mpsc::channel();
    // Both pipes are drained on their own threads: a git that fills one
    // while we read the other would otherwise never finish.
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stdout.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(status) => status.map_err(|e| StorageError::io(format!("{what}: waiting for git"), e))?,
        Err(_) => {
            kill_group(pid);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            return Err(StorageError::io(
                what.to_owned(),
                format!(
                    "git did not finish within {}s and was stopped (the remote may be unreachable; \
                     raise dlog.remoteTimeout or DLOG_REMOTE_TIMEOUT to wait longer)",
                    timeout.as_secs_f64()
                ),
            ));
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default().trim().to_owned();
    Ok(Ran { code: status.code(), stdout, stderr })
}

/// SIGKILL every process in the group `pgid` (git and the helpers it ran).
/// Through `kill(1)`: the library allows no `unsafe`, so no `libc::kill`.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last few lines of git's stderr: enough to say why, short enough to read.
pub(crate) fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(4);
    let text = lines[start..].join("; ");
    if text.is_empty() { "git gave no reason".to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_that_runs_past_its_deadline_is_stopped_with_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // `git -c alias…` cannot sleep; a hook can't run here either. An
        // alias to a shell command can.
        let args = ["-c", "alias.nap=!sleep 5", "nap"];
        let outcome = run_in(dir.path(), &args, Duration::from_millis(300), None, "napping on remote \"x\"");
        let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("napping on remote \"x\""), "{message}");
        assert!(message.contains("did not finish within 0.3s"), "{message}");
    }

    #[test]
    fn the_tail_of_stderr_keeps_the_last_lines_that_say_something() {
        assert_eq!(tail("a\n\nb\nc\nd\ne\n"), "b; c; d; e");
        assert_eq!(tail(""), "git gave no reason");
    }
}
