//! The web page: HTML rendered on the server from the fold and the history,
//! with a little embedded CSS and JavaScript (no CDN, nothing fetched). The
//! same renderers serve `/` under `dlog serve --http` and write the static
//! site of `dlog site`, so both show the same pages, with the same relative
//! links: `index.html`, `spaces/<space>/index.html`,
//! `spaces/<space>/decisions/<key>.html`, `assets/…`.
//!
//! Pages render the decision fields they know and the optional ones when
//! present (`title`, `status`, `tags`); anything else is ignored.

mod pages;
mod site;

pub use pages::{SpaceSummary, decision_page, index_page, space_page};
pub use site::{SiteReport, write_site};

/// The embedded assets: path under `assets/`, content type, bytes.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
];

/// Escape text for HTML content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The file name of a key's page: letters, digits, `_` and `-` kept, every
/// other byte as `~XX`, so any key is a safe file name and a link that
/// works the same from `file://`, a static host and the server (`%` escapes
/// would be decoded by the browser into other paths).
pub fn key_file(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 5);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out.push_str(".html");
    out
}

/// The key a page's file name stands for; none if it is not one [`key_file`] writes.
pub fn key_from_file(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".html")?;
    let mut bytes = Vec::with_capacity(stem.len());
    let mut rest = stem.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'~' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let key = String::from_utf8(bytes).ok()?;
    (!key.is_empty() && key_file(&key) == file).then_some(key)
}

/// Milliseconds since 1970 as `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn time(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    format!("{} {h:02}:{m:02} UTC", crate::find::civil_date(at_ms))
}

/// A whole page around `main`; `root` is the relative path back to the
/// site's top (`""`, `"../../"`…), `live` whether the page may subscribe
/// to the server's event stream.
pub(crate) fn layout(title: &str, root: &str, live: bool, crumbs: &str, data: &str, main: &str) -> String {
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · decision-log</title>
<link rel="stylesheet" href="{root}assets/app.css">
</head>
<body data-root="{root}" data-live="{live}"{data}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Breadcrumb"><a href="{root}index.html">decision-log</a>{crumbs}</nav>
</header>
<main id="main" tabindex="-1">
{main}
</main>
<footer class="bottom"><p>{footer}</p></footer>
<script src="{root}assets/app.js" defer></script>
</body>
</html>
"##,
        title = escape(title),
        footer = if live {
            "Served live by <code>dlog serve --http</code>: new decisions appear as they are appended."
        } else {
            "A static snapshot written by <code>dlog site</code>."
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_safe_file_name_that_reads_back() {
        for key in ["db", "a/b", "../x", "ümlaut key", "~tilde", "CAPS_and-dash", "a.b"] {
            let file = key_file(key);
            assert!(file.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-~.".contains(&b)), "{file}");
            assert!(!file.starts_with('.'), "{file}");
            assert_eq!(key_from_file(&file).as_deref(), Some(key), "{file}");
        }
        assert_eq!(key_from_file("a~2fb.html"), None, "only the spelling key_file writes is accepted");
        assert_eq!(key_from_file("db.txt"), None);
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
