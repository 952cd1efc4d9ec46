//! `dlog site`: the web page as a static site.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::output::print;
use super::{Context, exit};
use crate::Error;

#[derive(Debug, Args)]
#[command(after_help = "\
Writes index.html, spaces/<space>/index.html (the decisions in force and
withdrawn, with filters) and spaces/<space>/decisions/<key>.html (each key's
history), with relative links: open it from file:// or publish it on any
static host (e.g. GitHub Pages). It is a snapshot: `dlog serve --http` serves
the same pages live.

  dlog site team platform --out public/")]
pub(crate) struct SiteArgs {
    /// The spaces to write.
    #[arg(required = true)]
    spaces: Vec<String>,
    /// The directory to write into (created if missing; files are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(crate) fn run(context: &Context, args: SiteArgs) -> Result<u8, Error> {
    let log = context.open()?;
    let report = crate::web::write_site(&log, &args.spaces, &args.out)?;
    if context.json {
        print(
            &json!({"out": args.out, "spaces": report.spaces, "decisions": report.decisions, "files": report.files})
                .to_string(),
        )?;
    } else {
        print(&format!(
            "wrote {} spaces, {} decision pages ({} files) to {}",
            report.spaces,
            report.decisions,
            report.files,
            args.out.display()
        ))?;
    }
    Ok(exit::OK)
}
