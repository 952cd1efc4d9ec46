//! Richer records through the binary: the append flags of every kind,
//! `dlog adr import`, `dlog adr export` and `dlog find` on ADR collections
//! written for these tests (tests/fixtures/adr), through the real binary on
//! a real repository, checked with the real `git`.

use std::path::PathBuf;

use serde_json::Value;

use crate::cli::Repo;
use crate::git_cli::git;

fn fixtures(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/adr")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn fold(repo: &Repo, space: &str) -> Value {
    repo.json(&["fold", space])
}

/// Every JSON line of `find --json` with these filters.
fn find(repo: &Repo, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["--json", "find"];
    full.extend_from_slice(args);
    repo.ok(&full).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn keys(hits: &[Value]) -> Vec<String> {
    hits.iter().map(|h| format!("{}/{}", h["space"].as_str().unwrap(), h["key"].as_str().unwrap())).collect()
}

#[test]
fn a_madr_4_collection_keeps_every_record_with_its_choice_options_status_and_supersession() {
    let repo = Repo::new();
    let report = repo.ok(&["adr", "import", "team", &fixtures("madr4")]);
    assert!(report.contains("skipped adr-template.md: a template"), "{report}");
    assert!(report.contains("skipped index.md"), "{report}");
    let f = fold(&repo, "team");
    let d = &f["decisions"]["0001-use-markdown-architectural-decision-records"];
    assert_eq!(d["choice"], "MADR 4.0.0");
    assert!(d["rationale"].as_str().unwrap().contains("Implicit assumptions should be made explicit."));
    assert_eq!(d["deciders"], serde_json::json!(["Alice Liddell", "Bob Dylan"]));
    assert_eq!(d["consulted"], serde_json::json!(["Carol Danvers"]));
    let rejected = d["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0]["option"], "Michael Nygard's template");
    assert_eq!(rejected[0]["why"], "it has no place for the considered options\nit has no front matter");
    assert!(d["consequences"].as_str().unwrap().contains("everyone knows where to look"));
    // What no field holds is kept, by section, in meta.adr.
    let sections: Vec<&str> = d["meta"]["adr"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["heading"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["Confirmation", "More Information"]);
    assert_eq!(d["meta"]["adr"]["date"], "2023-05-02");
    // 0004 supersedes 0002 on 0002's key; 0002's status and options stay in the history.
    let pg = &f["decisions"]["0002-use-postgres"];
    assert_eq!(pg["choice"], "PostgreSQL 16 with Citus");
    assert_eq!(pg["id"], "adr:0004-use-postgres-16-with-citus");
    assert_eq!(pg["revision"], 2);
    let shown = repo.json(&["show", "team", "0002-use-postgres"]);
    let first = &shown["history"][0]["body"];
    assert_eq!(first["choice"], "PostgreSQL");
    assert_eq!(
        first["rejected"][0],
        serde_json::json!({"option": "MongoDB", "why": "no joins\nanother engine to run"})
    );
    assert!(first["meta"]["adr"]["status"].as_str().unwrap().starts_with("superseded by"));
    // Proposed and rejected records are proposals, not decisions in force.
    assert_eq!(f["proposals"]["0003-message-queue"]["adr:0003-message-queue"]["status"], "proposed");
    let graphql = &f["proposals"]["0005-rejected-graphql"]["adr:0005-rejected-graphql"];
    assert_eq!(graphql["status"], "rejected");
    assert_eq!(graphql["choice"], "GraphQL");
    assert!(f["decisions"].get("0005-rejected-graphql").is_none());
    git(&repo.path, &["fsck", "--strict"]);
}

#[test]
fn nygard_records_follow_their_supersede_chain_and_keep_amendments_as_links() {
    let repo = Repo::new();
    repo.ok(&["adr", "import", "tools", &fixtures("nygard")]);
    let f = fold(&repo, "tools");
    let d = &f["decisions"]["0001-record-architecture-decisions"];
    assert!(d["choice"].as_str().unwrap().starts_with("We will use Architecture Decision Records"));
    assert_eq!(d["title"], "Record architecture decisions");
    assert_eq!(d["meta"]["adr"]["date"], "2016-02-12");
    let chain = &f["decisions"]["0002-implement-as-shell-scripts"];
    assert_eq!(chain["choice"], "The tool is rewritten in Python 3.");
    assert_eq!(chain["id"], "adr:0003-implement-in-python");
    let history = repo.json(&["show", "tools", "0002-implement-as-shell-scripts"]);
    let old = &history["history"][0]["body"];
    assert_eq!(old["choice"], "The tool is written in Bash.");
    assert_eq!(old["rationale"], "Bash is on every Unix machine, and the tool is small.");
    assert!(
        old["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["rel"] == "amended by" && l["id"] == "adr:0004-keep-a-windows-port")
    );
    assert_eq!(
        f["proposals"]["0004-keep-a-windows-port"]["adr:0004-keep-a-windows-port"]["status"],
        "proposed"
    );
    assert!(
        repo.ok(&["adr", "import", "tools", &fixtures("nygard"), "--dry-run"]).contains("skipped README.md")
    );
}

#[test]
fn madr_2_and_log4brains_records_without_front_matter_status_date_or_title_are_kept() {
    let repo = Repo::new();
    repo.ok(&["adr", "import", "two", &fixtures("madr2")]);
    repo.ok(&["adr", "import", "l4b", &fixtures("log4brains")]);
    let two = fold(&repo, "two");
    let first = &two["decisions"]["0001-record-decisions"];
    assert_eq!(first["deciders"], serde_json::json!(["Ann", "Ben"]));
    assert_eq!(
        first["rejected"][0],
        serde_json::json!({"option": "Wiki pages", "why": "no history next to the code"})
    );
    assert!(first["consequences"].as_str().unwrap().contains("Positive Consequences"));
    assert_eq!(two["retracted"]["0002-logging"]["status"], "deprecated");
    assert_eq!(two["decisions"]["0003-no-status"]["choice"], "UTC");
    let l4b = fold(&repo, "l4b");
    let tools = &l4b["decisions"]["20200916-use-log4brains-to-manage-the-adrs"];
    assert_eq!(tools["tags"], serde_json::json!(["dev-tools", "doc"]));
    assert_eq!(tools["meta"]["adr"]["date"], "2020-09-16");
    let options: Vec<&str> =
        tools["rejected"].as_array().unwrap().iter().map(|r| r["option"].as_str().unwrap()).collect();
    assert_eq!(options, ["ADR Tools: command-line to create ADRs", "Git Wiki"]);
    let hold = &l4b["proposals"]["20201002-on-hold-plugin-system"]["adr:20201002-on-hold-plugin-system"];
    assert_eq!(hold["status"], "on hold");
    assert!(
        hold["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["url"] == "https://docusaurus.io/docs/using-plugins")
    );
}

#[test]
fn importing_again_appends_nothing_even_as_another_actor_and_a_dry_run_appends_nothing() {
    let repo = Repo::new();
    let dry = repo.ok(&["adr", "import", "team", &fixtures("madr4"), "--dry-run"]);
    assert!(dry.contains("would append 6"), "{dry}");
    assert!(repo.run(&["fold", "team"]).status.success());
    assert_eq!(fold(&repo, "team")["seq"], 0, "a dry run writes nothing");
    repo.ok(&["adr", "import", "team", &fixtures("madr4")]);
    let head = repo.head("team");
    let again = repo.ok(&["adr", "import", "team", &fixtures("madr4"), "--actor", "someone else"]);
    assert!(again.contains("appended 0") && again.contains("6 already there"), "{again}");
    assert_eq!(repo.head("team"), head);
}

#[test]
fn a_record_changed_after_its_import_is_refused_naming_the_file_and_nothing_is_written() {
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixtures("nygard")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    repo.ok(&["adr", "import", "t", dir.path().to_str().unwrap()]);
    let head = repo.head("t");
    let file = dir.path().join("0001-record-architecture-decisions.md");
    let text = std::fs::read_to_string(&file).unwrap().replace("We will use", "We shall use");
    std::fs::write(&file, text).unwrap();
    let out = repo.run(&["adr", "import", "t", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0001-record-architecture-decisions.md changed"));
    assert_eq!(repo.head("t"), head);
    std::fs::write(dir.path().join("0009-broken.md"), "---\nstatus: [\n---\n# X\n").unwrap();
    let out = repo.run(&["adr", "import", "u", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0009-broken.md: front matter is not YAML"));
}

fn in_force(f: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (key, d) in f["decisions"].as_object().unwrap() {
        let mut d = d.as_object().unwrap().clone();
        for volatile in ["actor", "at_ms", "seq", "revision", "accepted"] {
            d.remove(volatile);
        }
        out.insert(key.clone(), Value::Object(d));
    }
    Value::Object(out)
}

#[test]
fn export_then_import_gives_back_the_same_decisions_in_force_in_both_formats() {
    let repo = Repo::new();
    for fixture in ["madr4", "nygard", "madr2", "log4brains"] {
        repo.ok(&["adr", "import", fixture, &fixtures(fixture)]);
        for format in ["madr", "nygard"] {
            let out = tempfile::tempdir().unwrap();
            repo.ok(&["adr", "export", fixture, "--out", out.path().to_str().unwrap(), "--format", format]);
            let index = std::fs::read_to_string(out.path().join("index.md")).unwrap();
            assert!(index.contains("| # | Title | Status | Date |"), "{index}");
            let copy = format!("{fixture}-{format}");
            repo.ok(&["adr", "import", &copy, out.path().to_str().unwrap()]);
            assert_eq!(
                in_force(&fold(&repo, &copy)),
                in_force(&fold(&repo, fixture)),
                "{fixture} via {format}"
            );
        }
    }
    // Files are numbered by seq, so numbers never collide.
    let out = tempfile::tempdir().unwrap();
    repo.ok(&["adr", "export", "madr4", "--out", out.path().to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names[0], "0001-use-markdown-architectural-decision-records.md");
    assert!(names.contains(&"0004-use-postgresql-16-with-citus.md".to_owned()), "{names:?}");
    let superseded =
        std::fs::read_to_string(out.path().join("0002-use-postgresql-for-persistence.md")).unwrap();
    assert!(superseded.contains("status: \"superseded\""), "{superseded}");
    assert!(
        superseded
            .contains("Superseded by [Use PostgreSQL 16 with Citus](0004-use-postgresql-16-with-citus.md)")
    );
}

#[test]
fn find_answers_each_filter_across_spaces_with_json() {
    let repo = Repo::new();
    repo.ok(&["adr", "import", "team", &fixtures("madr4")]);
    repo.ok(&["adr", "import", "l4b", &fixtures("log4brains")]);
    assert_eq!(keys(&find(&repo, &["--tag", "storage"])), ["team/0002-use-postgres"]);
    assert_eq!(keys(&find(&repo, &["--status", "on hold"])), ["l4b/20201002-on-hold-plugin-system"]);
    assert_eq!(keys(&find(&repo, &["--status", "rejected"])), ["team/0005-rejected-graphql"]);
    assert_eq!(keys(&find(&repo, &["--actor", "alice liddell", "--space", "team"])).len(), 2);
    assert_eq!(keys(&find(&repo, &["--key", "0003*"])), ["team/0003-message-queue"]);
    assert_eq!(
        keys(&find(&repo, &["cluster", "volume"])),
        ["team/0003-message-queue"],
        "why-not text is searched"
    );
    assert_eq!(keys(&find(&repo, &["--space", "l4b", "static site"])).len(), 1);
    assert!(find(&repo, &["--since", "2999-01-01"]).is_empty());
    assert_eq!(find(&repo, &["--until", "2999-01-01"]).len(), 6);
    assert_eq!(find(&repo, &["--limit", "2"]).len(), 2);
    let hit = &find(&repo, &["--key", "0002-use-postgres"])[0];
    assert_eq!(
        (hit["status"].as_str(), hit["record"]["choice"].as_str()),
        (Some("accepted"), Some("PostgreSQL 16 with Citus"))
    );
    let bad = repo.run(&["find", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since \"yesterday\" is not a time"));
}

#[test]
fn the_append_flags_build_every_record_kind_and_refuse_what_does_not_apply() {
    let repo = Repo::new();
    repo.ok(&[
        "append",
        "team",
        "--key",
        "db",
        "--choice",
        "pg",
        "--why",
        "mature",
        "--title",
        "Use PostgreSQL",
        "--tag",
        "storage",
        "--decider",
        "alice",
        "--consulted",
        "bob",
        "--informed",
        "ops",
        "--context",
        "We need SQL.",
        "--consequences",
        "Ops learns pg.",
        "--link",
        "refines=d-0",
        "--link",
        "https://e.x/rfc",
        "--meta",
        r#"{"b":1,"a":[2.50]}"#,
        "--id",
        "d-1",
    ]);
    repo.ok(&[
        "append",
        "team",
        "--kind",
        "propose",
        "--key",
        "db",
        "--choice",
        "mysql",
        "--why",
        "cheaper",
        "--status",
        "on hold",
        "--supersedes",
        "d-1",
        "--id",
        "p-1",
    ]);
    repo.ok(&["append", "team", "--kind", "accept", "--key", "db", "--proposal", "p-1", "--why", "agreed"]);
    repo.ok(&[
        "append",
        "team",
        "--kind",
        "retract",
        "--key",
        "db",
        "--why",
        "gone",
        "--status",
        "deprecated",
    ]);
    let f = fold(&repo, "team");
    let r = &f["retracted"]["db"];
    assert_eq!(
        (r["status"].as_str(), r["choice"].as_str(), r["decision"].as_str()),
        (Some("deprecated"), Some("mysql"), Some("p-1"))
    );
    let first = &repo.json(&["show", "team", "db"])["history"][0];
    assert_eq!(first["v"], 2);
    assert_eq!(first["body"]["meta"], serde_json::json!({"a": [2.5], "b": 1}));
    assert_eq!(
        first["body"]["links"],
        serde_json::json!([{"id": "d-0", "rel": "refines"}, {"url": "https://e.x/rfc"}])
    );
    assert_eq!(first["body"]["deciders"], serde_json::json!(["alice"]));
    for (args, want) in [
        (vec!["--kind", "accept", "--key", "db"], "--proposal is required"),
        (vec!["--kind", "reject", "--key", "db", "--proposal", "p"], "--why is required"),
        (vec!["--kind", "retract", "--key", "db", "--why", "w", "--tag", "x"], "--tag do(es) not apply"),
        (vec!["--key", "db", "--choice", "c", "--why", "w", "--status", "draft"], "use --kind propose"),
        (vec!["--key", "db", "--choice", "c", "--why", "w", "--meta", "{"], "--meta is not JSON"),
        (vec!["--kind", "vote", "--key", "db"], "the flags build"),
    ] {
        let mut full = vec!["append", "team"];
        full.extend(args.iter().copied());
        let out = repo.run(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn odd_file_names_missing_titles_and_number_only_supersede_chains_are_imported() {
    let repo = Repo::new();
    let report = repo.ok(&["adr", "import", "odd", &fixtures("odd")]);
    for skipped in
        ["_sidebar.md: hidden or partial", ".hidden.md: hidden or partial", "notes.txt: not a Markdown file"]
    {
        assert!(report.contains(&format!("skipped {skipped}")), "{skipped}: {report}");
    }
    let f = fold(&repo, "odd");
    let untitled = &f["decisions"]["decision without title"];
    assert_eq!(untitled["title"], "decision without title");
    assert_eq!(untitled["choice"], "Keep the defaults.");
    assert_eq!(untitled["id"], "adr:decision_without_title");
    let unicode = &f["decisions"]["0010_Ünïcode names & spaces"];
    assert_eq!(unicode["choice"], "Allow them");
    assert_eq!(unicode["id"], "adr:0010_%C3%9Cn%C3%AFcode_names_&_spaces");
    // 11 ← 12 ← 13, written as "Superseded by ADR-0012" without links: one key, three revisions.
    let cache = &f["decisions"]["0011-cache-in-process"];
    assert_eq!((cache["id"].as_str(), cache["revision"].as_u64()), (Some("adr:0013-no-cache"), Some(3)));
    let history = repo.json(&["show", "odd", "0011-cache-in-process"])["history"].clone();
    let supersedes: Vec<&str> =
        history.as_array().unwrap().iter().map(|e| e["body"]["supersedes"].as_str().unwrap_or("-")).collect();
    assert_eq!(supersedes, ["-", "adr:0011-cache-in-process", "adr:0012-cache-in-redis"]);
    assert_eq!(f["decisions"].as_object().unwrap().len(), 3);
}

#[test]
fn an_event_of_a_newer_format_is_refused_naming_the_version_it_needs() {
    let repo = Repo::new();
    let event = r#"{"actor":"a","at_ms":1,"body":{"key":"k","choice":"c","rationale":"r"},"epoch":1,"id":"i","kind":"decide","seq":1,"space":"s","v":3}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("newer.jsonl");
    std::fs::write(&file, format!("{event}\n")).unwrap();
    let out = repo.run(&["import", "s", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("event format v3 is not supported") && err.contains("upgrade to one that reads v3"),
        "{err}"
    );
    assert!(repo.run(&["events", "s"]).status.success());
    assert_eq!(fold(&repo, "s")["seq"], 0, "nothing was written");
}

#[test]
fn exporting_an_empty_space_and_importing_a_directory_without_records_fail_clearly() {
    let repo = Repo::new();
    let out = tempfile::tempdir().unwrap();
    let export = repo.run(&["adr", "export", "none", "--out", out.path().to_str().unwrap()]);
    assert_eq!(export.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&export.stderr).contains("space \"none\" has no events"));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing is written");
    std::fs::write(out.path().join("index.md"), "# Decisions\n").unwrap();
    let import = repo.run(&["adr", "import", "team", out.path().to_str().unwrap()]);
    assert_eq!(import.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&import.stderr).contains("holds no ADR files"));
    let missing = repo.run(&["adr", "import", "team", "/no/such/dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the ADR directory /no/such/dir"));
}
