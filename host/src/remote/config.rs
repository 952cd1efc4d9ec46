//! Binding a repository to a remote, and unbinding it: git config, so that
//! plain `git fetch` moves the log too, and `git config -l` shows it all.
//!
//! - `remote.<name>.url` (set when the remote is new; an existing one, such
//!   as a clone's `origin`, is used as it is);
//! - `remote.<name>.fetch += +refs/dlog/*:refs/remotes/<name>/dlog/*`;
//! - when dlog created the remote, also `remote.<name>.push =
//!   refs/dlog/spaces/*:refs/dlog/spaces/*` (a remote that already existed
//!   keeps its push behaviour: adding a push refspec would change what a
//!   plain `git push` sends) and `remote.<name>.dlog = true`, so that
//!   `dlog remote remove` removes what it made and nothing else;
//! - `dlog.remote = <name>`, last: a repository is bound only once its
//!   spaces are on the remote.

use std::path::Path;
use std::time::Duration;

use super::transport::{run_in, tail};
use super::{CONFIG_KEY, Remote, SPACES};
use crate::backend::{Backend, GitBackend, StorageError};
use crate::clock::{Clock, SystemClock};
use crate::durable::{Fs, RealFs};
use crate::error::Error;
use crate::lease::{FileLeases, LeaseCell, check_space};

/// What `bind` did, space by space.
#[derive(Clone, Debug, Default)]
pub struct BindReport {
    /// Spaces this repository had that the remote now has too.
    pub pushed: Vec<String>,
    /// Spaces the remote had (now tracked here).
    pub fetched: Vec<String>,
}

/// One space's head here and on the remote.
#[derive(Clone, Debug)]
pub struct SpaceState {
    /// The space.
    pub space: String,
    /// The remote's head as last fetched (what appends build on).
    pub tracked: Option<String>,
    /// The remote's head now.
    pub remote: Option<String>,
}

/// Run `git <args>` on the repository's config, then make the change
/// durable: git writes `config` by a rename it does not fsync, and a
/// binding that a power loss could undo would send appends to the wrong
/// place.
fn git_config_run(git: &GitBackend, args: &[&str], what: &str) -> Result<super::Ran, Error> {
    let ran = run_in(git.git_dir(), args, Duration::from_secs(30), None)
        .map_err(|e| Error::Storage(format!("{what}: {e}")))?;
    sync_config(git.git_dir()).map_err(storage)?;
    Ok(ran)
}

/// fsync the repository's `config` and its directory.
fn sync_config(git_dir: &Path) -> Result<(), StorageError> {
    let config = git_dir.join("config");
    RealFs
        .sync_file(&config)
        .map_err(|e| StorageError::io(format!("cannot sync {}", config.display()), e))?;
    RealFs.sync_dir(git_dir).map_err(|e| StorageError::io(format!("cannot sync {}", git_dir.display()), e))
}

fn git_config(git: &GitBackend, args: &[&str]) -> Result<super::Ran, Error> {
    let mut full = vec!["config"];
    full.extend_from_slice(args);
    git_config_run(git, &full, "cannot change the git config")
}

fn git_config_ok(git: &GitBackend, args: &[&str]) -> Result<(), Error> {
    let ran = git_config(git, args)?;
    if ran.ok() {
        Ok(())
    } else {
        Err(Error::Storage(format!("git config {}: {}", args.join(" "), tail(&ran.stderr))))
    }
}

/// Whether `name` is a remote name `bind` accepts: letters, digits, `-`
/// and `_`, not starting with `-` (it would read as an option). Narrower
/// than git's rule, so that the name is also safe in every ref and config
/// key built from it.
fn usable_remote_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Refuse while a local writer holds a space's lease in this repository
/// (`<git-dir>/dlog/leases/`): a `dlog serve` started before the binding
/// keeps appending to the local refs, which the remote would never see.
fn refuse_live_local_leases(git: &GitBackend) -> Result<(), Error> {
    let dir = git.git_dir().join("dlog/leases");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut spaces: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .filter(|space| check_space(space).is_ok())
        .collect();
    spaces.sort();
    let leases = FileLeases::open(git.git_dir())?;
    let now = SystemClock.now_ms();
    for space in spaces {
        if let Some(lease) = leases.read(&space)?.filter(|l| l.expires_at_ms > now) {
            return Err(Error::NotHolder { space, holder: Some(lease) });
        }
    }
    Ok(())
}

fn fetch_refspec(name: &str) -> String {
    format!("+refs/dlog/*:refs/remotes/{name}/dlog/*")
}

fn storage(e: StorageError) -> Error {
    Error::Storage(e.to_string())
}

/// Bind the repository of `git` to remote `name` at `url`: configure it,
/// fetch the remote's spaces, push the ones this repository has that the
/// remote lacks (or is behind on), and refuse when a space has diverged or
/// a local writer holds a space's lease.
pub fn bind(git: &GitBackend, name: &str, url: &str) -> Result<BindReport, Error> {
    if !usable_remote_name(name) {
        return Err(Error::Invalid(format!(
            "remote name {name:?} is not usable: use letters, digits, '-' and '_', not starting with '-' \
             (e.g. origin)"
        )));
    }
    if url.trim().is_empty() {
        return Err(Error::Invalid("the remote's URL is empty".into()));
    }
    if let Some(bound) = git.config_string(CONFIG_KEY) {
        return Err(Error::Invalid(format!(
            "this repository is already bound to remote {bound:?}; run `dlog remote remove {bound}` first"
        )));
    }
    refuse_live_local_leases(git)?;
    let url_key = format!("remote.{name}.url");
    let created = match git.config_string(&url_key) {
        Some(existing) if existing != url => {
            return Err(Error::Invalid(format!(
                "git remote {name:?} already points at {existing}, not {url}; \
                 pick another name, or bind it with `dlog remote add {name} {existing}`"
            )));
        }
        Some(_) => false,
        None => true,
    };
    let refspec = fetch_refspec(name);
    let setup = || -> Result<BindReport, Error> {
        // Read the timeout settings before anything is written: a typo
        // there must not leave a half-made remote behind.
        let remote = Remote::new(git, name, url)?;
        if created {
            git_config_ok(git, &[&url_key, url])?;
            git_config_ok(
                git,
                &["--add", &format!("remote.{name}.push"), "refs/dlog/spaces/*:refs/dlog/spaces/*"],
            )?;
            git_config_ok(git, &[&format!("remote.{name}.dlog"), "true"])?;
        }
        git_config_ok(git, &["--add", &format!("remote.{name}.fetch"), &refspec])?;
        let report = reconcile(git, &remote)?;
        git_config_ok(git, &[CONFIG_KEY, name])?;
        Ok(report)
    };
    setup().inspect_err(|_| {
        let _ = undo(git, name, created);
    })
}

/// Fetch the remote's spaces; push the local spaces it lacks or is behind on.
fn reconcile(git: &GitBackend, remote: &Remote) -> Result<BindReport, Error> {
    remote.fetch_spaces().map_err(storage)?;
    let mut report = BindReport::default();
    let tracking_prefix = format!("refs/remotes/{}/dlog/spaces/", remote.name());
    for (tracked, _) in git.list_refs(&tracking_prefix).map_err(storage)? {
        report.fetched.push(tracked[tracking_prefix.len()..].to_owned());
    }
    report.pushed = super::refs::publish(git, remote)?;
    Ok(report)
}

fn undo(git: &GitBackend, name: &str, created: bool) -> Result<(), Error> {
    if created {
        let ran = git_config_run(git, &["remote", "remove", name], "git remote remove")?;
        if !ran.ok() {
            return Err(Error::Storage(format!("git remote remove {name}: {}", tail(&ran.stderr))));
        }
    } else {
        let _ = git_config(
            git,
            &["--fixed-value", "--unset-all", &format!("remote.{name}.fetch"), &fetch_refspec(name)],
        );
    }
    Ok(())
}

/// Unbind the repository from remote `name`. Its spaces stay here, as last
/// fetched (the local `refs/dlog/spaces/*`), with local leases again. A
/// local head with events the remote's lacks is kept as it is, not moved
/// back; those spaces are returned, so the caller can say so.
pub fn unbind(git: &GitBackend, name: &str) -> Result<Vec<String>, Error> {
    match git.config_string(CONFIG_KEY) {
        Some(bound) if bound == name => {}
        Some(bound) => {
            return Err(Error::Invalid(format!(
                "this repository is bound to remote {bound:?}, not {name:?}"
            )));
        }
        None => return Err(Error::Invalid("this repository is not bound to a remote".into())),
    }
    // The local mirror takes over as the log: bring it to the last head
    // seen, by fast-forward only.
    let tracking_prefix = format!("refs/remotes/{name}/dlog/spaces/");
    let mut kept = Vec::new();
    for (tracked, id) in git.list_refs(&tracking_prefix).map_err(storage)? {
        let space = &tracked[tracking_prefix.len()..];
        if super::refs::fast_forward(git, space, &id).map_err(storage)?.is_some() {
            kept.push(space.to_owned());
        }
    }
    git_config_ok(git, &["--unset", CONFIG_KEY])?;
    let created = git.config_string(&format!("remote.{name}.dlog")).is_some_and(|v| v == "true");
    undo(git, name, created)?;
    Ok(kept)
}

/// The bound remote, and each space's head as tracked here and on the
/// remote now; none when the repository is not bound.
pub fn status(git: &GitBackend) -> Result<Option<(Remote, Vec<SpaceState>)>, Error> {
    let Some(remote) = Remote::bound(git)? else {
        return Ok(None);
    };
    let theirs = remote.ls_remote(SPACES).map_err(storage)?;
    let tracking_prefix = format!("refs/remotes/{}/dlog/spaces/", remote.name());
    let mut states: Vec<SpaceState> = Vec::new();
    for (name, id) in git.list_refs(&tracking_prefix).map_err(storage)? {
        let space = name[tracking_prefix.len()..].to_owned();
        states.push(SpaceState { space, tracked: Some(id.to_hex()), remote: None });
    }
    for (name, id) in theirs {
        let space = name[SPACES.len()..].to_owned();
        match states.iter_mut().find(|s| s.space == space) {
            Some(state) => state.remote = Some(id.to_hex()),
            None => states.push(SpaceState { space, tracked: None, remote: Some(id.to_hex()) }),
        }
    }
    states.sort_by(|a, b| a.space.cmp(&b.space));
    Ok(Some((remote, states)))
}
