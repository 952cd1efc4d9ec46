//! `dlog mcp` spoken to as raw JSON-RPC lines over stdio, without any SDK:
//! the handshake, the tool table, and a conflict answered as a tool error.
//! (The full client-side tests are in tests/mcp, on the official TypeScript SDK.)

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};

use serde_json::{Value, json};

use crate::cli::Repo;

const DLOG: &str = env!("CARGO_BIN_EXE_dlog");

fn send(stdin: &mut ChildStdin, message: Value) {
    writeln!(stdin, "{message}").unwrap();
    stdin.flush().unwrap();
}

fn answer(lines: &mut impl Iterator<Item = std::io::Result<String>>, id: u64) -> Value {
    for line in lines {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == id {
            return v;
        }
    }
    panic!("dlog mcp closed stdout before answering request {id}");
}

#[test]
fn dlog_mcp_speaks_json_rpc_on_stdio_and_answers_a_conflict_with_a_tool_error() {
    let repo = Repo::new();
    let mut child = Command::new(DLOG)
        .args(["mcp", "--repo", repo.path.to_str().unwrap()])
        .env("DLOG_ACTOR", "raw-agent")
        .env_remove("DLOG_REPO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    let init = answer(&mut lines, 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "decision-log");
    assert_eq!(init["result"]["capabilities"]["resources"]["subscribe"], true);
    assert!(init["result"]["instructions"].as_str().unwrap().contains("supersedes"));
    send(&mut stdin, json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    send(&mut stdin, json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let tools = answer(&mut lines, 2);
    let mut names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["accept", "decide", "events", "fold", "propose", "reject", "retract", "search", "show", "spaces"]
    );

    let decide = |id: u64, supersedes: Option<&str>| {
        let mut args = json!({"space": "team", "key": "db", "choice": "pg", "rationale": "r"});
        if let Some(s) = supersedes {
            args["supersedes"] = json!(s);
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "decide", "arguments": args}})
    };
    send(&mut stdin, decide(3, None));
    let first = answer(&mut lines, 3);
    assert_eq!(first["result"]["isError"], false, "{first}");
    let id = first["result"]["structuredContent"]["event"]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["result"]["structuredContent"]["event"]["actor"], "raw-agent");

    send(&mut stdin, decide(4, Some("not-the-one")));
    let conflict = answer(&mut lines, 4);
    assert!(conflict.get("error").is_none(), "a conflict is not a protocol error: {conflict}");
    assert_eq!(conflict["result"]["isError"], true);
    assert_eq!(conflict["result"]["structuredContent"]["error"], "decision-conflict");
    assert_eq!(conflict["result"]["structuredContent"]["in_force"]["id"], id.as_str());

    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "dlog mcp exits cleanly when its client closes stdin: {status}");
    let events = repo.ok(&["events", "team", "--json"]);
    assert_eq!(events.lines().count(), 1);
}
