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

use std::time::Duration;

use super::transport::{run_in, tail};
use super::{CONFIG_KEY, Pushed, Remote, SPACES};
use crate::backend::{Backend, GitBackend, StorageError};
use crate::error::Error;

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

fn git_config(git: &GitBackend, args: &[&str]) -> Result<super::Ran, Error> {
    let mut full = vec!["config"];
    full.extend_from_slice(args);
    run_in(git.git_dir(), &full, Duration::from_secs(30), None, "cannot change the git config")
        .map_err(|e| Error::Storage(e.to_string()))
}

fn git_config_ok(git: &GitBackend, args: &[&str]) -> Result<(), Error> {
    let ran = git_config(git, args)?;
    if ran.ok() {
        Ok(())
    } else {
        Err(Error::Storage(format!("git config {}: {}", args.join(" "), tail(&ran.stderr))))
    }
}

fn fetch_refspec(name: &str) -> String {
    format!("+refs/dlog/*:refs/remotes/{name}/dlog/*")
}

fn storage(e: StorageError) -> Error {
    Error::Storage(e.to_string())
}

/// Bind the repository of `git` to remote `name` at `url`: configure it,
/// fetch the remote's spaces, push the ones this repository has that the
/// remote lacks (or is behind on), and refuse when a space has diverged.
pub fn bind(git: &GitBackend, name: &str, url: &str) -> Result<BindReport, Error> {
    if name.is_empty() || name.contains(['/', ' ', '.', ':']) || name.starts_with('-') {
        return Err(Error::Invalid(format!(
            "remote name {name:?} is not usable: use letters, digits, '-' and '_' (e.g. origin)"
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
        if created {
            git_config_ok(git, &[&url_key, url])?;
            git_config_ok(
                git,
                &["--add", &format!("remote.{name}.push"), "refs/dlog/spaces/*:refs/dlog/spaces/*"],
            )?;
            git_config_ok(git, &[&format!("remote.{name}.dlog"), "true"])?;
        }
        git_config_ok(git, &["--add", &format!("remote.{name}.fetch"), &refspec])?;
        let remote = Remote::new(git, name, url);
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
    for (name, local) in git.list_refs(SPACES).map_err(storage)? {
        let space = name[SPACES.len()..].to_owned();
        let tracking = remote.tracking("spaces", &space);
        let theirs = git.read_ref(&tracking).map_err(storage)?;
        match theirs {
            Some(theirs) if theirs == local => continue,
            Some(theirs) if remote.is_ancestor(&local, &theirs).map_err(storage)? => {
                super::refs::set(git, &name, &theirs).map_err(storage)?;
                continue;
            }
            Some(theirs) if !remote.is_ancestor(&theirs, &local).map_err(storage)? => {
                return Err(Error::Storage(format!(
                    "space {space:?} has diverged: this repository's head {local} and remote {:?}'s \
                     head {theirs} each have events the other lacks; export one (`dlog export`) and \
                     import it into the other, or bind a fresh repository (`git clone`)",
                    remote.name()
                )));
            }
            _ => {}
        }
        match remote.push(&name, theirs.as_ref(), &local).map_err(storage)? {
            Pushed::Accepted => {
                super::refs::set(git, &tracking, &local).map_err(storage)?;
                report.pushed.push(space);
            }
            Pushed::Refused(why) => {
                return Err(Error::Storage(format!(
                    "space {space:?} moved on remote {:?} while it was being bound ({why}); try again",
                    remote.name()
                )));
            }
        }
    }
    Ok(report)
}

fn undo(git: &GitBackend, name: &str, created: bool) -> Result<(), Error> {
    if created {
        let ran =
            run_in(git.git_dir(), &["remote", "remove", name], Duration::from_secs(30), None, "git remote")
                .map_err(storage)?;
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
/// fetched (the local `refs/dlog/spaces/*`), with local leases again.
pub fn unbind(git: &GitBackend, name: &str) -> Result<(), Error> {
    match git.config_string(CONFIG_KEY) {
        Some(bound) if bound == name => {}
        Some(bound) => {
            return Err(Error::Invalid(format!(
                "this repository is bound to remote {bound:?}, not {name:?}"
            )));
        }
        None => return Err(Error::Invalid("this repository is not bound to a remote".into())),
    }
    // The local mirror takes over as the log: bring it to the last head seen.
    let tracking_prefix = format!("refs/remotes/{name}/dlog/spaces/");
    for (tracked, id) in git.list_refs(&tracking_prefix).map_err(storage)? {
        let space = &tracked[tracking_prefix.len()..];
        super::refs::set(git, &format!("{SPACES}{space}"), &id).map_err(storage)?;
    }
    git_config_ok(git, &["--unset", CONFIG_KEY])?;
    let created = git.config_string(&format!("remote.{name}.dlog")).is_some_and(|v| v == "true");
    undo(git, name, created)
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
