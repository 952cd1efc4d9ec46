//! `dlog remote` and `dlog sync`: one log shared by many machines through a
//! git remote (docs/TEAMS.md).

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::print;
use super::{Context, exit};
use crate::Error;
use crate::backend::GitBackend;

#[derive(Debug, Args)]
#[command(after_help = "\
Binds this repository's spaces to a git remote: any URL your own `git push`
reaches (ssh, https, git://, a path). Then every append is pushed to it as a
compare-and-swap and acknowledged only once the server accepted it; leases live
on it too, so writers on different machines share one linear log.

Examples:
  dlog remote add origin git@github.com:acme/decisions.git
  dlog remote add origin ssh://git.example.com/srv/decisions.git
  dlog remote show
  dlog remote remove origin

Network failures exit with code 5 and name the remote; each git run is stopped
after dlog.remoteTimeout (git config) or DLOG_REMOTE_TIMEOUT, default 30s.")]
pub(crate) struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
enum RemoteCommand {
    /// Bind the spaces to remote NAME at URL: push the ones it lacks, fetch the ones it has.
    Add {
        /// The git remote's name (an existing one, e.g. a clone's origin, is reused).
        name: String,
        /// Where it is: ssh://…, git@host:path, https://…, git://…, or a path.
        url: String,
    },
    /// Unbind: the spaces stay here as last fetched, with local leases again.
    Remove {
        /// The remote's name.
        name: String,
    },
    /// The bound remote, and each space's head as fetched and on the remote now.
    Show,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Fetches every space's head from the bound remote, so that reads (fold, show,
events, find) see what other machines appended. Every read command also takes
--fetch to do this first. A space whose local head has events the remote lacks
(appended by a process that opened this repository before it was bound) is
pushed when it extends the remote's log; one whose history diverged from the
remote's is left alone and exits 3.

Examples:
  dlog sync && dlog fold team
  dlog --fetch show team db")]
pub(crate) struct SyncArgs {}

fn git(context: &Context) -> Result<GitBackend, Error> {
    Ok(GitBackend::discover(&context.start()?)?)
}

pub(crate) fn remote(context: &Context, args: RemoteArgs) -> Result<u8, Error> {
    let git = git(context)?;
    match args.command {
        RemoteCommand::Add { name, url } => {
            let report = match crate::remote::bind(&git, &name, &url) {
                Err(Error::NotHolder { space, holder: Some(lease) }) => {
                    // A live local lease: say what to do, in one sentence.
                    return Err(Error::NotHolder { space, holder: Some(lease) }).inspect_err(|_| {
                        if !context.json {
                            eprintln!(
                                "dlog: a local writer holds a space's lease; stop it (e.g. its `dlog serve`) \
                                 or wait until the lease expires, then run `dlog remote add` again"
                            );
                        }
                    });
                }
                other => other?,
            };
            if context.json {
                print(
                    &json!({"remote": name, "url": url, "pushed": report.pushed, "fetched": report.fetched})
                        .to_string(),
                )?;
            } else {
                print(&format!(
                    "bound to remote {name} ({url}): {} space(s) pushed{}, {} on the remote",
                    report.pushed.len(),
                    if report.pushed.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", report.pushed.join(", "))
                    },
                    report.fetched.len()
                ))?;
            }
        }
        RemoteCommand::Remove { name } => {
            let kept = crate::remote::unbind(&git, &name)?;
            for space in &kept {
                eprintln!(
                    "dlog: warning: space {space:?} keeps this repository's own head, which has events \
                     remote {name:?} lacks; the remote's newer events, if any, are not in it"
                );
            }
            if context.json {
                print(&json!({"removed": name, "kept_local": kept}).to_string())?;
            } else {
                print(&format!("unbound from remote {name}; the spaces stay here as last fetched"))?;
            }
        }
        RemoteCommand::Show => match crate::remote::status(&git)? {
            None => {
                if context.json {
                    print(&json!({"remote": null}).to_string())?;
                } else {
                    print("not bound to a remote (dlog remote add NAME URL)")?;
                }
            }
            Some((remote, states)) => {
                if context.json {
                    let spaces: Vec<_> = states
                        .iter()
                        .map(|s| json!({"space": s.space, "fetched": s.tracked, "remote": s.remote}))
                        .collect();
                    print(
                        &json!({"remote": remote.name(), "url": remote.url(), "spaces": spaces}).to_string(),
                    )?;
                } else {
                    print(&format!("remote {} ({})", remote.name(), remote.url()))?;
                    for s in states {
                        let short =
                            |id: &Option<String>| id.as_deref().map_or("none", |h| &h[..12]).to_owned();
                        let state = if s.tracked == s.remote { "up to date" } else { "behind: dlog sync" };
                        print(&format!(
                            "  {}: remote {} fetched {} ({state})",
                            s.space,
                            short(&s.remote),
                            short(&s.tracked)
                        ))?;
                    }
                }
            }
        },
    }
    Ok(exit::OK)
}

pub(crate) fn sync(context: &Context, _args: SyncArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let Some(pushed) = log.sync()? else {
        return Err(Error::Invalid(
            "this repository is not bound to a remote (dlog remote add NAME URL)".into(),
        ));
    };
    let spaces = log.spaces()?;
    if context.json {
        print(&json!({"fetched": spaces, "pushed": pushed}).to_string())?;
    } else if let Some(remote) = log.remote() {
        print(&format!(
            "fetched {} space(s) from remote {} ({}){}",
            spaces.len(),
            remote.name(),
            remote.url(),
            if pushed.is_empty() {
                String::new()
            } else {
                format!("; pushed this repository's newer events of {}", pushed.join(", "))
            }
        ))?;
    }
    Ok(exit::OK)
}
