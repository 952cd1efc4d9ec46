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

/// Why a `git` run did not finish with an exit status of its own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// `git` could not be started.
    #[error("cannot run git (is it installed and on PATH?): {0}")]
    Spawn(#[source] std::io::Error),
    /// Waiting for `git` failed.
    #[error("waiting for git failed: {0}")]
    Wait(#[source] std::io::Error),
    /// `git` ran past its deadline and was killed, with its helpers.
    #[error(
        "git did not finish within {}s and was stopped (the remote may be unreachable; \
         raise dlog.remoteTimeout or DLOG_REMOTE_TIMEOUT to wait longer)",
        .0.as_secs_f64()
    )]
    TimedOut(Duration),
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
        self.try_run(args).map_err(|e| StorageError::io(what.to_owned(), e))
    }

    /// [`Git::run`], telling a run past its deadline from the other failures
    /// (a push that timed out may or may not have landed).
    pub(crate) fn try_run(&self, args: &[&str]) -> Result<Ran, RunError> {
        run_in(&self.git_dir, args, self.timeout, self.ssh_command.as_deref())
    }
}

/// The variables through which a caller's environment would point git at
/// another repository, object store or config than the one we name (`git
/// rev-parse --local-env-vars`: what git itself clears before it runs a
/// command in another repository). The installed git's own list is added
/// to these, once per process, so a newer git's additions are cleared too.
const LOCAL_ENV_VARS: [&str; 15] = [
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

fn local_env_vars() -> &'static [String] {
    static VARS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    VARS.get_or_init(|| {
        let mut vars: Vec<String> = LOCAL_ENV_VARS.iter().map(|v| (*v).to_owned()).collect();
        let listed = Command::new("git")
            .args(["rev-parse", "--local-env-vars"])
            .env_remove("GIT_DIR")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = listed {
            for var in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
                if var.starts_with("GIT_") && !vars.iter().any(|v| v == var) {
                    vars.push(var.to_owned());
                }
            }
        }
        vars
    })
}

/// Run `git --git-dir=<git_dir> <args>` with a deadline, in its own process
/// group so that the deadline also ends the ssh or HTTP helper it started.
pub(crate) fn run_in(
    git_dir: &Path,
    args: &[&str],
    timeout: Duration,
    ssh_command: Option<&str>,
) -> Result<Ran, RunError> {
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // `--git-dir` names the repository; a `GIT_DIR`, `GIT_OBJECT_DIRECTORY`
    // or `GIT_CONFIG_PARAMETERS` inherited from a caller (a git hook running
    // dlog, say) must not send git to another one or change its config.
    for var in local_env_vars() {
        command.env_remove(var);
    }
    if let Some(ssh) = ssh_command {
        command.env("GIT_SSH_COMMAND", ssh);
    }
    let mut child = command.spawn().map_err(RunError::Spawn)?;
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
        Ok(status) => status.map_err(RunError::Wait)?,
        Err(_) => {
            kill_group(pid);
            let _ = rx.recv_timeout(Duration::from_secs(5));
            return Err(RunError::TimedOut(timeout));
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

/// What git's stderr says in a few lines: its `error:` and `fatal:` lines
/// (a server's come prefixed `remote:`, among lines of advice), else the
/// last few lines. Enough to say why, short enough to read.
pub(crate) fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.trim_start_matches("remote:").trim() != "")
        .collect();
    let said = |l: &str| {
        let l = l.trim_start_matches("remote:").trim_start();
        l.starts_with("error:") || l.starts_with("fatal:")
    };
    let errors: Vec<&str> = lines.iter().copied().filter(|l| said(l)).collect();
    let chosen = if errors.is_empty() { &lines[..] } else { &errors[..] };
    let start = chosen.len().saturating_sub(4);
    let text = chosen[start..].join("; ");
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
        let outcome = run_in(dir.path(), &args, Duration::from_millis(300), None);
        assert!(matches!(outcome, Err(RunError::TimedOut(_))), "{outcome:?}");
        let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("did not finish within 0.3s"), "{message}");
    }

    #[test]
    fn every_variable_the_installed_git_calls_local_is_cleared() {
        let out = Command::new("git").args(["rev-parse", "--local-env-vars"]).output();
        let listed = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        assert!(listed.contains("GIT_DIR"), "git rev-parse --local-env-vars: {listed:?}");
        for var in listed.lines().map(str::trim).filter(|v| !v.is_empty()) {
            assert!(local_env_vars().iter().any(|v| v == var), "{var} is not cleared");
        }
    }

    #[test]
    fn the_tail_of_stderr_keeps_the_last_lines_that_say_something() {
        assert_eq!(tail("a\n\nb\nc\nd\ne\n"), "b; c; d; e");
        assert_eq!(tail(""), "git gave no reason");
        assert_eq!(tail("remote: \nremote:   \n"), "git gave no reason");
    }

    #[test]
    fn the_tail_of_stderr_prefers_what_git_calls_errors_over_its_advice() {
        let stderr = "remote: error: cannot lock ref 'refs/x': Unable to create 'x.lock': File exists.\n\
                      remote: \n\
                      remote: Another git process seems to be running in this repository, e.g.\n\
                      remote: remove the file manually to continue.        \n\
                      To git://h/r.git\n\
                      error: failed to push some refs to 'git://h/r.git'\n";
        assert_eq!(
            tail(stderr),
            "remote: error: cannot lock ref 'refs/x': Unable to create 'x.lock': File exists.; \
             error: failed to push some refs to 'git://h/r.git'"
        );
    }
}
