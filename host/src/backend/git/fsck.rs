//! What `git fsck --strict` checks of a single object, applied to the
//! untrusted bytes the guest writes before they are buffered: an object git
//! would refuse must never reach the repository.

use std::collections::HashSet;

use gix::bstr::{BStr, ByteSlice};
use gix::validate::path::component;

use super::ObjectKind;

/// Check that `data` is a well-formed object of `kind`: it parses (gix), and
/// it passes what `git fsck --strict` checks of a single object.
pub(super) fn validate(kind: ObjectKind, data: &[u8]) -> Result<(), String> {
    match kind {
        ObjectKind::Blob => Ok(()),
        ObjectKind::Tree => {
            gix::objs::TreeRef::from_bytes(data, gix::hash::Kind::Sha1).map_err(|e| format!("{e:#}"))?;
            check_tree(data)
        }
        ObjectKind::Commit => {
            let commit = gix::objs::CommitRef::from_bytes(data, gix::hash::Kind::Sha1)
                .map_err(|e| format!("{e:#}"))?;
            check_commit(data, &commit)
        }
    }
}

/// `git fsck --strict` rules for trees: canonical modes, safe names, no null
/// ids, entries in git's order without duplicates.
fn check_tree(data: &[u8]) -> Result<(), String> {
    let mut rest = data;
    let mut previous: Option<(&[u8], bool)> = None;
    let mut names = HashSet::new();
    while !rest.is_empty() {
        let space = rest.find_byte(b' ').ok_or("entry without a mode")?;
        let (mode, tail) = (&rest[..space], &rest[space + 1..]);
        let nul = tail.find_byte(0).ok_or("entry without a name terminator")?;
        let (name, tail) = (&tail[..nul], &tail[nul + 1..]);
        if tail.len() < 20 {
            return Err("truncated entry id".into());
        }
        let (id, tail) = tail.split_at(20);
        rest = tail;

        let shown = name.as_bstr();
        let (is_dir, is_link) = match mode {
            b"100644" | b"100755" | b"160000" => (false, false),
            b"120000" => (false, true),
            b"40000" => (true, false),
            _ => return Err(format!("entry {shown:?} has mode {:?}", mode.as_bstr())),
        };
        check_entry_name(name, is_link).map_err(|why| format!("entry {shown:?} {why}"))?;
        if id.iter().all(|&b| b == 0) {
            return Err(format!("entry {shown:?} has the null id"));
        }
        if let Some((before, before_is_dir)) = previous
            && tree_order(before, before_is_dir, name, is_dir) != std::cmp::Ordering::Less
        {
            return Err(format!("entries are not in git's order at {shown:?}"));
        }
        if !names.insert(name) {
            return Err(format!("entry {shown:?} appears twice"));
        }
        previous = Some((name, is_dir));
    }
    Ok(())
}

/// Git's tree order: names compared bytewise, a directory as if followed by `/`.
fn tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let a_key = a.iter().copied().chain(a_dir.then_some(b'/'));
    let b_key = b.iter().copied().chain(b_dir.then_some(b'/'));
    a_key.cmp(b_key)
}

/// The name rules of `git fsck` for one entry, as gix implements git's
/// (`gix::validate::path::component`): not empty, no `/`, not `.` or `..`,
/// and not `.git` as HFS+ (ignoring the code points it ignores) or NTFS
/// (trailing dots and spaces, `:` streams, the `git~1` short name) would
/// read it, each filesystem on its own as git does: a name that needs both
/// to look like `.git` is `.git` on neither. gix's Windows rules (`\`, `:`,
/// device names such as `nul`, trailing dots) stay off: git's fsck does not
/// apply them to trees, and the names they refuse are valid elsewhere.
fn check_entry_name(name: &[u8], is_link: bool) -> Result<(), &'static str> {
    let options = component::Options { protect_windows: false, protect_hfs: true, protect_ntfs: true };
    // Asked as if every entry were a symlink: gix then refuses every name
    // that HFS+ or NTFS reads as `.gitmodules`, which git parses as
    // submodule configuration whatever its mode, so it is refused for any.
    match component(name.as_bstr(), Some(component::Mode::Symlink), options) {
        Ok(_) => {}
        Err(component::Error::Empty) => return Err("has an empty name"),
        Err(component::Error::PathSeparator) => return Err("has a '/' in its name"),
        Err(component::Error::Relative) => return Err("is named '.' or '..'"),
        Err(component::Error::DotGitDir) => return Err("is (a disguise of) .git"),
        Err(component::Error::SymlinkedGitModules) => {
            return Err("is .gitmodules, which git checks specially");
        }
        // Only the Windows rules, which are off, report anything else.
        Err(_) => return Err("is not a valid name"),
    }
    // gix has no rule for these, so they stay hand-written: git's fsck flags
    // symlinks by these names (git reads the files from the work tree, where
    // a symlink could lead out of it).
    if is_link && [&b".gitattributes"[..], b".gitignore", b".mailmap"].contains(&fold_name(name).as_slice()) {
        return Err("is a symlink git refuses");
    }
    Ok(())
}

/// The name as NTFS and HFS+ would compare it: ASCII case folded, the
/// code points HFS+ ignores removed, and (NTFS) anything from a `:` on and
/// trailing dots and spaces dropped. Only for the symlink names gix does
/// not check.
fn fold_name(name: &[u8]) -> Vec<u8> {
    let mut folded: Vec<u8> = match std::str::from_utf8(name) {
        Ok(text) => text
            .chars()
            .filter(|c| !matches!(*c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff))
            .collect::<String>()
            .into_bytes(),
        Err(_) => name.to_vec(),
    };
    folded.make_ascii_lowercase();
    if let Some(colon) = folded.find_byte(b':') {
        folded.truncate(colon);
    }
    while folded.last().is_some_and(|&b| b == b'.' || b == b' ') {
        folded.pop();
    }
    folded
}

/// `git fsck --strict` rules for commits beyond parsing: well-formed author
/// and committer, no NUL in the header.
fn check_commit(data: &[u8], commit: &gix::objs::CommitRef<'_>) -> Result<(), String> {
    check_ident(commit.author).map_err(|why| format!("author {:?}: {why}", commit.author))?;
    check_ident(commit.committer).map_err(|why| format!("committer {:?}: {why}", commit.committer))?;
    let header_end = data.find(b"\n\n").unwrap_or(data.len());
    if data[..header_end].contains(&0) {
        return Err("NUL byte in the header".into());
    }
    Ok(())
}

/// Git's `fsck_ident`: `name <email> seconds +hhmm`.
fn check_ident(ident: &BStr) -> Result<(), &'static str> {
    let s: &[u8] = ident;
    if s.first() == Some(&b'<') {
        return Err("no name before the email");
    }
    let lt = s.find_byteset(b"<>").ok_or("no email")?;
    if s[lt] == b'>' {
        return Err("bad name");
    }
    if lt == 0 || s[lt - 1] != b' ' {
        return Err("no space before the email");
    }
    let after = &s[lt + 1..];
    let gt = after.find_byteset(b"<>").ok_or("bad email")?;
    if after[gt] != b'>' {
        return Err("bad email");
    }
    let rest = after[gt + 1..].strip_prefix(b" ").ok_or("no space before the date")?;
    let space = rest.find_byte(b' ').ok_or("bad date")?;
    let (date, zone) = (&rest[..space], &rest[space + 1..]);
    if date.is_empty() || !date.iter().all(u8::is_ascii_digit) {
        return Err("bad date");
    }
    if date.len() > 1 && date[0] == b'0' {
        return Err("zero-padded date");
    }
    let seconds: u64 = std::str::from_utf8(date).ok().and_then(|d| d.parse().ok()).ok_or("date overflows")?;
    if seconds > i64::MAX as u64 {
        return Err("date overflows");
    }
    let zone_ok =
        zone.len() == 5 && matches!(zone[0], b'+' | b'-') && zone[1..].iter().all(u8::is_ascii_digit);
    if !zone_ok {
        return Err("bad time zone");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_the_guest_writes_are_accepted() {
        let names = [
            "event.json",
            "state.json",
            "head.json",
            "pages",
            "fences",
            "index",
            "ids",
            "meta",
            "000000000001.txt",
            "00-000000000001-000000000512",
            "p000000",
        ];
        for name in names {
            assert_eq!(check_entry_name(name.as_bytes(), false), Ok(()), "{name}");
        }
    }

    #[test]
    fn git_and_its_disguises_are_refused() {
        for name in ["", ".", "..", "a/b", ".git", ".GIT", ".git. ", ".git:x", "git~1", ".g\u{200c}it"] {
            assert!(check_entry_name(name.as_bytes(), false).is_err(), "{name:?}");
        }
    }

    #[test]
    fn every_name_git_reads_as_gitmodules_is_refused_whatever_its_mode() {
        // git parses a blob by any of these names as submodule configuration.
        for name in [".gitmodules", ".GitModules.", "gitmod~1", "gitmod~2", "gi7eba~1", ".g\u{200c}itmodules"]
        {
            for is_link in [false, true] {
                assert_eq!(
                    check_entry_name(name.as_bytes(), is_link),
                    Err("is .gitmodules, which git checks specially"),
                    "{name:?}"
                );
            }
        }
    }

    #[test]
    fn some_special_files_may_not_be_symlinks() {
        for name in [".gitattributes", ".gitignore", ".mailmap", ".MailMap.", ".git\u{200c}ignore"] {
            assert_eq!(check_entry_name(name.as_bytes(), false), Ok(()), "{name:?}");
            assert_eq!(check_entry_name(name.as_bytes(), true), Err("is a symlink git refuses"), "{name:?}");
        }
    }

    #[test]
    fn names_only_windows_refuses_are_accepted_as_git_fsck_does() {
        for name in ["nul", "con.json", "a:b", "a\\b", "a.", "a ", "a?"] {
            assert_eq!(check_entry_name(name.as_bytes(), false), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn an_hfs_disguise_with_ntfs_decorations_is_no_disguise_on_either() {
        // HFS+ ignores U+200C but keeps the trailing dot; NTFS drops the dot
        // but keeps U+200C. git's fsck accepts these, and so does gix.
        for name in [".g\u{200c}it.", "git~1\u{200c}"] {
            assert_eq!(check_entry_name(name.as_bytes(), false), Ok(()), "{name:?}");
        }
    }
}
