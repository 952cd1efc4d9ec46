//! A git remote as the shared log and the shared authority (`dlog remote`).
//!
//! When a repository is bound to a remote (`dlog.remote` in its git config),
//! the remote's `refs/dlog/spaces/<space>` is the truth and every append is a
//! compare-and-swap on it, made by `git push --force-with-lease`: the server's
//! `receive-pack` checks the old value under its own ref lock, so two
//! machines can never both move a head from the same value. The pieces:
//!
//! - `transport.rs`: the system `git`, bounded in time, never prompting;
//! - [`RemoteBackend`] (`refs.rs`): the storage a bound log uses: objects
//!   stay local (written durably before they travel), the space refs are
//!   read from the remote-tracking refs and moved by push;
//! - [`RemoteLeases`] (`lease.rs`): the lease as a ref on the remote, granted
//!   by the same push compare-and-swap;
//! - `config.rs`: binding and unbinding (`dlog remote add/remove/show`).
//!
//! Where refs live in the local repository:
//!
//! | ref | what |
//! |---|---|
//! | `refs/remotes/<name>/dlog/spaces/<space>` | the remote's head as last seen (what appends build on) |
//! | `refs/remotes/<name>/dlog/leases/<space>` | the remote's lease as last seen (a commit holding `lease.json`) |
//! | `refs/remotes/<name>/dlog-staged/…` | the commit being pushed, so its objects are durable here first |
//! | `refs/dlog/spaces/<space>` | a local mirror, moved after every fetch and accepted push |

mod config;
mod lease;
mod refs;
pub(crate) mod transport;

use std::time::Duration;

pub use config::{BindReport, SpaceState, bind, status, unbind};
pub use lease::RemoteLeases;
pub use refs::RemoteBackend;

use crate::backend::{GitBackend, ObjectId, StorageError};
use crate::error::Error;
use transport::{Git, Ran, RunError, tail};

/// The git config key naming the remote a repository's spaces are bound to.
pub const CONFIG_KEY: &str = "dlog.remote";

/// How long one `git` run against a remote may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the remote keeps the space heads.
pub(crate) const SPACES: &str = "refs/dlog/spaces/";
/// Where the remote keeps the leases.
pub(crate) const LEASES: &str = "refs/dlog/leases/";

/// A git remote, by name and URL, and how to reach it.
#[derive(Clone, Debug)]
pub struct Remote {
    name: String,
    url: String,
    git: Git,
}

/// What the server said to a compare-and-swap push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The ref now holds the new value on the server.
    Accepted,
    /// The server did not move the ref, for a reason that usually means
    /// someone else moved it first; nothing changed. The text is git's
    /// reason. The caller checks the head: one still at the expected value
    /// means something else refused it ([`Remote::not_a_race`]).
    Refused(String),
}

/// The `-c` options of every git run that writes to this repository (fetch,
/// push): objects and refs fsynced as they land (git 2.36 and newer; an
/// older git ignores the setting), and no background gc or maintenance that
/// would outlive the run's deadline. A push writes here too: it moves the
/// remote-tracking ref of what it pushed.
const WRITING: [&str; 8] = [
    "-c",
    "core.fsync=committed",
    "-c",
    "core.fsyncMethod=fsync",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
];

/// How many times a push refused while the server's ref still holds the
/// expected value is tried: a lost race on the server's ref lock looks like
/// that for a moment (the winner is still writing); more is not a race.
pub(crate) const NOT_A_RACE_TRIES: u32 = 3;

impl Remote {
    /// The remote the repository of `git` is bound to, if any.
    pub fn bound(git: &GitBackend) -> Result<Option<Remote>, Error> {
        let Some(name) = git.config_string(CONFIG_KEY) else {
            return Ok(None);
        };
        let Some(url) = git.config_string(&format!("remote.{name}.url")) else {
            // `dlog remote add` would refuse (already bound): unbinding is
            // the one way on, and it keeps every space as last fetched.
            return Err(Error::Storage(format!(
                "this repository is bound to remote {name:?} (git config {CONFIG_KEY}), which has no URL; \
                 run `dlog remote remove {name}`, then bind it again if you want"
            )));
        };
        Ok(Some(Remote::new(git, &name, &url)?))
    }

    /// A remote of the repository of `git` (bound or not). Fails when the
    /// timeout the user set (`DLOG_REMOTE_TIMEOUT`, else git config
    /// `dlog.remoteTimeout`) is not a duration: silently using the default
    /// would hide a typo until a slow network stops writers.
    pub(crate) fn new(git: &GitBackend, name: &str, url: &str) -> Result<Remote, Error> {
        let timeout = match std::env::var("DLOG_REMOTE_TIMEOUT").ok().filter(|s| !s.trim().is_empty()) {
            Some(text) => parse_timeout(&text).map_err(|why| {
                Error::Invalid(format!("DLOG_REMOTE_TIMEOUT={text:?} is not usable: {why}"))
            })?,
            None => match git.config_string("dlog.remoteTimeout") {
                Some(text) => parse_timeout(&text).map_err(|why| {
                    Error::Invalid(format!("git config dlog.remoteTimeout={text:?} is not usable: {why}"))
                })?,
                None => DEFAULT_TIMEOUT,
            },
        };
        // BatchMode: a passphrase or host-key prompt would hang a writer
        // with no terminal. Only when the user chose no ssh command of
        // their own, which then is theirs to make non-interactive.
        let user_ssh = std::env::var_os("GIT_SSH_COMMAND").is_some()
            || std::env::var_os("GIT_SSH").is_some()
            || git.config_string("core.sshCommand").is_some();
        let connect = timeout.as_secs().clamp(1, 30);
        let ssh_command = (!user_ssh)
            .then(|| format!("ssh -o BatchMode=yes -o ConnectTimeout={connect} -o ServerAliveInterval=5"));
        let git = Git { git_dir: git.git_dir().to_path_buf(), timeout, ssh_command };
        Ok(Remote { name: name.to_owned(), url: url.to_owned(), git })
    }

    /// The remote's name in git's config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long one `git` run may take.
    pub fn timeout(&self) -> Duration {
        self.git.timeout
    }

    /// `<doing> on remote "<name>" (<url>)`: how every error starts.
    fn what(&self, doing: &str) -> String {
        format!("{doing} on remote {:?} ({})", self.name, self.url)
    }

    fn failed(&self, doing: &str, ran: &Ran) -> StorageError {
        StorageError::io(self.what(doing), format!("git exited with {}: {}", code(ran), tail(&ran.stderr)))
    }

    /// Where this remote's view of `<kind>/<space>` is kept locally.
    pub(crate) fn tracking(&self, kind: &str, space: &str) -> String {
        format!("refs/remotes/{}/dlog/{kind}/{space}", self.name)
    }

    /// Where a commit waits, durable, while it is pushed.
    pub(crate) fn staged(&self, kind: &str, space: &str) -> String {
        format!("refs/remotes/{}/dlog-staged/{kind}/{space}", self.name)
    }

    /// The options every `git fetch` gets: those of every run that writes
    /// here ([`WRITING`]), no tags, no FETCH_HEAD (two fetches at once would
    /// race on it).
    fn fetch_args<'a>(&'a self, refspecs: &[&'a str]) -> Vec<&'a str> {
        let mut args = WRITING.to_vec();
        args.extend_from_slice(&[
            "-c",
            "fetch.showForcedUpdates=false",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-recurse-submodules",
            self.name.as_str(),
        ]);
        args.extend_from_slice(refspecs);
        args
    }

    /// Fetch every space head into the remote-tracking refs.
    pub(crate) fn fetch_spaces(&self) -> Result<(), StorageError> {
        let refspec = format!("+{SPACES}*:refs/remotes/{}/dlog/spaces/*", self.name);
        self.fetch(&[&refspec], "cannot fetch the space heads")
    }

    /// Fetch the objects of one ref without storing the ref (a lease read
    /// knows its id from `ls-remote` already).
    pub(crate) fn fetch_objects(&self, name: &str) -> Result<(), StorageError> {
        self.fetch(&[name], &format!("cannot fetch {name}"))
    }

    fn fetch(&self, refspecs: &[&str], doing: &str) -> Result<(), StorageError> {
        // Two local processes fetching at once can collide on a ref's lock
        // file; the loser tries again, briefly.
        let mut attempt = 0;
        loop {
            let ran = self.git.run(&self.fetch_args(refspecs), &self.what(doing))?;
            if ran.ok() {
                return Ok(());
            }
            attempt += 1;
            let lock_race =
                ran.stderr.contains("cannot lock ref") || ran.stderr.contains(".lock': File exists");
            if !lock_race || attempt >= 20 {
                return Err(self.failed(doing, &ran));
            }
            std::thread::sleep(Duration::from_millis(5 * attempt));
        }
    }

    /// The remote's refs under `prefix` (`git ls-remote`), by full name.
    pub(crate) fn ls_remote(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, StorageError> {
        let pattern = format!("{prefix}*");
        let doing = format!("cannot list {prefix}*");
        let ran = self.git.run(&["ls-remote", "--refs", self.name.as_str(), &pattern], &self.what(&doing))?;
        if !ran.ok() {
            return Err(self.failed(&doing, &ran));
        }
        let mut refs = Vec::new();
        for line in ran.stdout.lines() {
            let Some((id, name)) = line.split_once('\t') else { continue };
            if name.starts_with(prefix) {
                refs.push((name.to_owned(), ObjectId::from_hex(id)?));
            }
        }
        refs.sort();
        Ok(refs)
    }

    /// The remote's value of exactly `name`.
    pub(crate) fn ls_remote_one(&self, name: &str) -> Result<Option<ObjectId>, StorageError> {
        Ok(self.ls_remote(name)?.into_iter().find(|(n, _)| n == name).map(|(_, id)| id))
    }

    /// Push `new` to `name` iff the server's `name` holds `expected` (none:
    /// must not exist): `git push --atomic --force-with-lease=name:expected`.
    /// The server checks the old value under its ref lock, so this is a
    /// compare-and-swap on the server, not a client-side guess.
    pub(crate) fn push(
        &self,
        name: &str,
        expected: Option<&ObjectId>,
        new: &ObjectId,
    ) -> Result<Pushed, StorageError> {
        let lease =
            format!("--force-with-lease={name}:{}", expected.map(ObjectId::to_hex).unwrap_or_default());
        let refspec = format!("{new}:{name}");
        let doing = format!("cannot push {name}");
        let mut args = WRITING.to_vec();
        args.extend_from_slice(&[
            "-c",
            "push.negotiate=false",
            "-c",
            "push.useBitmaps=false",
            "push",
            "--porcelain",
            "--atomic",
            "--no-verify",
            "--no-recurse-submodules",
            &lease,
            self.name.as_str(),
            &refspec,
        ]);
        let ran = match self.git.try_run(&args) {
            Ok(ran) => ran,
            // The server may have taken the push and its answer been lost:
            // only its head can tell, and a retry with the same intent ids
            // is safe either way (it finds them in the log, or appends them).
            Err(timed_out @ RunError::TimedOut(_)) => {
                return Err(StorageError::io(
                    self.what(&doing),
                    format!(
                        "{timed_out}; whether the server applied the push is unknown: \
                         run `dlog sync` and check, or retry with the same --id"
                    ),
                ));
            }
            Err(e) => return Err(StorageError::io(self.what(&doing), e)),
        };
        // `--porcelain`: `<flag>\t<from>:<to>\t<summary> (<reason>)` per ref.
        let line = ran.stdout.lines().find_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let flag = fields.next()?;
            let spec = fields.next()?;
            (spec.rsplit_once(':').map(|(_, to)| to) == Some(name))
                .then(|| (flag.to_owned(), fields.next().unwrap_or("").to_owned()))
        });
        match line {
            Some((flag, _)) if ran.ok() && matches!(flag.as_str(), " " | "*" | "+" | "=") => {
                Ok(Pushed::Accepted)
            }
            Some((flag, summary))
                if flag == "!" && (refused_by_race(&summary) || refused_by_race(&ran.stderr)) =>
            {
                Ok(Pushed::Refused(format!("{summary}; {}", tail(&ran.stderr))))
            }
            Some((_, summary)) => Err(StorageError::io(
                self.what(&doing),
                format!("the server refused it: {summary}; {}", tail(&ran.stderr)),
            )),
            None => Err(self.failed(&doing, &ran)),
        }
    }

    /// The error for a push of `name` refused while the server still holds
    /// `head`, the value it expected: nobody moved it first, so retrying the
    /// append would only be refused again (a hook, permissions, a full disk
    /// on the server). `why` is git's reason.
    pub(crate) fn not_a_race(&self, name: &str, head: Option<&ObjectId>, why: &str) -> StorageError {
        let head = head.map_or_else(|| "absent".to_owned(), ObjectId::to_hex);
        StorageError::io(
            self.what(&format!("cannot push {name}")),
            format!(
                "the server refused it {NOT_A_RACE_TRIES} times although {name} there is still {head}, \
                 as expected, so this is not another writer's race: {why}"
            ),
        )
    }

    /// Whether commit `ancestor` is `descendant` or one of its ancestors, by
    /// the local objects.
    pub(crate) fn is_ancestor(
        &self,
        ancestor: &ObjectId,
        descendant: &ObjectId,
    ) -> Result<bool, StorageError> {
        is_ancestor(&self.git.git_dir, ancestor, descendant)
    }
}

/// Whether commit `ancestor` is `descendant` or one of its ancestors in the
/// repository at `git_dir` (`git merge-base --is-ancestor`).
pub(crate) fn is_ancestor(
    git_dir: &std::path::Path,
    ancestor: &ObjectId,
    descendant: &ObjectId,
) -> Result<bool, StorageError> {
    let (a, d) = (ancestor.to_hex(), descendant.to_hex());
    let doing = "cannot compare histories";
    let ran = transport::run_in(git_dir, &["merge-base", "--is-ancestor", &a, &d], DEFAULT_TIMEOUT, None)
        .map_err(|e| StorageError::io(doing, e))?;
    match ran.code {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(StorageError::io(doing, tail(&ran.stderr))),
    }
}

/// A rejection that means "someone else moved the ref first": the lease's
/// expectation was stale (checked by the client against the advertisement),
/// or the server found another value under its lock.
fn refused_by_race(summary: &str) -> bool {
    [
        "stale info",
        "fetch first",
        "non-fast-forward",
        "failed to update ref",
        "cannot lock ref",
        "but expected",
    ]
    .iter()
    .any(|reason| summary.contains(reason))
}

fn code(ran: &Ran) -> String {
    ran.code.map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"))
}

/// A timeout as `--wait` reads it (`30s`, `1m`, `500ms`, `1m 30s`:
/// humantime), or a bare number of seconds (`30`, `1.5`); above zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => return Err("it must be a positive number of seconds".into()),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{e}; write a duration such as 30s, 2m or 500ms"))?,
    };
    if duration.is_zero() { Err("it must be longer than zero".into()) } else { Ok(duration) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_durations_or_seconds_and_anything_else_is_an_error() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_timeout(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        for bad in ["-1", "0", "0s", "soon", "30 seconds please", "", "inf", "NaN"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn only_a_lost_race_counts_as_a_refusal_to_retry() {
        assert!(refused_by_race("[rejected] (stale info)"));
        assert!(refused_by_race("[remote rejected] (failed to update ref)"));
        assert!(!refused_by_race("[remote rejected] (pre-receive hook declined)"));
        assert!(!refused_by_race("[remote rejected] (permission denied)"));
    }
}
