//! The forwarding protocol between a writer and the holder of a space's
//! lease (`dlog serve`): JSON Lines over a Unix socket or loopback TCP.
//!
//! One request line is answered by one line. Both are serde-derived from
//! [`Request`] and [`Answer`], so any language with a socket and a JSON
//! library can speak it:
//!
//! ```text
//! → {"op":"append","space":"team","batch":false,"intents":[{"id":"…","actor":"…","kind":"decide","body":"{…}","expect_seq":null}]}
//! ← {"ok":[{"event":{"space":"team","seq":3,…,"canonical":"…","commit":"…"},"created":true}]}
//! ← {"error":{"kind":"not-holder","detail":{"space":"team","holder":{…}},"message":"not holder: …"}}
//! → {"op":"import","space":"team","events":["{…}","{…}"]}
//! ← {"imported":{"total":2,"skipped":0,"written":2,"head":{…}}}
//! → {"op":"ping"}   ← {"pong":{"holder":"serve@host:123#abcd"}}
//! ```
//!
//! Errors are [`Error`] as serde writes it (`kind`, and `detail` for the
//! fields of that kind) plus its `message` for people. Intents keep their
//! ids, so a client that times out and resends gets the original event back.
//!
//! Both the client ([`forward`], used by routing) and the server (`serve`)
//! use this module; it depends only on the crate's types.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::types::{Appended, ImportReport, Intent};

/// How long a client waits for the holder's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Request {
    /// Append intents to a space the server holds.
    Append {
        /// The space.
        space: String,
        /// All-or-nothing (one ref update) rather than one append per intent.
        #[serde(default)]
        batch: bool,
        /// The intents, each with its id.
        intents: Vec<Intent>,
    },
    /// Import exported events (canonical JSON, one per element) into a
    /// space the server holds: all or nothing, as `dlog import`.
    Import {
        /// The space.
        space: String,
        /// The exported events, oldest first.
        events: Vec<String>,
    },
    /// Is anyone there, and who?
    Ping,
}

/// One answer line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Answer {
    /// The appended (or already present) events, one per intent.
    Ok(Vec<Appended>),
    /// The outcome of an import.
    Imported(ImportReport),
    /// The answer to a ping.
    Pong {
        /// The server's identity, as its leases name it.
        holder: String,
    },
    /// The request failed; nothing was appended.
    Error(Failure),
}

/// An error as it crosses the wire: the error itself, and its text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// The error, tagged by its kind.
    #[serde(flatten)]
    pub error: Error,
    /// The error's message, for people and for clients that do not know its kind.
    pub message: String,
}

impl Answer {
    /// The answer to an append.
    pub fn from_result(result: Result<Vec<Appended>, Error>) -> Answer {
        match result {
            Ok(appended) => Answer::Ok(appended),
            Err(error) => Answer::failure(error),
        }
    }

    /// A failed request.
    pub fn failure(error: Error) -> Answer {
        Answer::Error(Failure { message: error.to_string(), error })
    }

    /// The line to send, without its newline.
    pub fn to_line(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Read a request line; what is not a request is an `invalid` error naming why.
pub fn parse_request(line: &str) -> Result<Request, Error> {
    serde_json::from_str(line).map_err(|e| {
        Error::Invalid(format!(
            "the request is not a valid forwarding request ({e}); expected \
             {{\"op\":\"append\",\"space\":…,\"intents\":[…]}} or {{\"op\":\"ping\"}}"
        ))
    })
}

/// A byte stream both ways.
pub trait ReadWrite: std::io::Read + Write + Send {}
impl<T: std::io::Read + Write + Send> ReadWrite for T {}

/// Connect to an endpoint as recorded in a lease: `unix:<path>` or `tcp:<ip>:<port>`.
pub fn connect(endpoint: &str) -> std::io::Result<Box<dyn ReadWrite>> {
    if let Some(path) = endpoint.strip_prefix("unix:") {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        Ok(Box::new(stream))
    } else if let Some(addr) = endpoint.strip_prefix("tcp:") {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Box::new(stream))
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("unknown endpoint {endpoint:?}")))
    }
}

/// Send intents to the holder at `endpoint`. The outer error is a transport
/// failure (retry, or report the holder unreachable); the inner result is
/// the holder's own answer.
pub fn forward(
    endpoint: &str,
    space: &str,
    intents: &[Intent],
    batch: bool,
) -> std::io::Result<Result<Vec<Appended>, Error>> {
    let request = Request::Append { space: space.to_owned(), batch, intents: intents.to_vec() };
    match exchange(endpoint, &request)? {
        Answer::Ok(appended) => Ok(Ok(appended)),
        Answer::Error(failure) => Ok(Err(failure.error)),
        _ => Err(invalid_data("the holder answered an append with something else".into())),
    }
}

/// Send an import to the holder at `endpoint`; errors as [`forward`]'s.
pub fn forward_import(
    endpoint: &str,
    space: &str,
    events: &[String],
) -> std::io::Result<Result<ImportReport, Error>> {
    let request = Request::Import { space: space.to_owned(), events: events.to_vec() };
    match exchange(endpoint, &request)? {
        Answer::Imported(report) => Ok(Ok(report)),
        Answer::Error(failure) => Ok(Err(failure.error)),
        _ => Err(invalid_data("the holder answered an import with something else".into())),
    }
}

/// Ask who serves `endpoint`.
pub fn ping(endpoint: &str) -> std::io::Result<String> {
    match exchange(endpoint, &Request::Ping)? {
        Answer::Pong { holder } => Ok(holder),
        Answer::Error(failure) => Err(invalid_data(failure.message)),
        _ => Err(invalid_data("the holder answered a ping with something else".into())),
    }
}

fn exchange(endpoint: &str, request: &Request) -> std::io::Result<Answer> {
    let mut stream = connect(endpoint)?;
    let mut line = serde_json::to_string(request).map_err(|e| invalid_data(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    stream.flush()?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the holder closed the connection without answering",
        ));
    }
    serde_json::from_str(&answer).map_err(|e| invalid_data(format!("the holder's answer is malformed: {e}")))
}

fn invalid_data(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Event, Lease};

    #[test]
    fn an_append_request_reads_back_as_written_and_batch_defaults_to_false() {
        let line = r#"{"op":"append","space":"team","intents":[{"id":"d1","actor":"a","kind":"decide","body":"{}","expect_seq":3}]}"#;
        let Request::Append { space, batch, intents } = parse_request(line).unwrap() else {
            panic!("not an append");
        };
        assert_eq!((space.as_str(), batch), ("team", false));
        assert_eq!(intents, [Intent::new("a", "decide", "{}").with_id("d1").expecting(3)]);
        assert_eq!(parse_request(r#"{"op":"ping"}"#).unwrap(), Request::Ping);
    }

    #[test]
    fn a_request_that_is_not_one_is_an_invalid_error_naming_the_problem() {
        for line in ["not json", r#"{"op":"delete"}"#, r#"{"op":"append","space":"team"}"#] {
            match parse_request(line) {
                Err(Error::Invalid(m)) => assert!(m.contains("expected"), "{m}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn answers_keep_events_and_errors_with_their_fields() {
        let event = Event {
            space: "team".into(),
            seq: 3,
            epoch: 1,
            id: "d1".into(),
            actor: "a".into(),
            at_ms: 5,
            kind: "decide".into(),
            body: "{}".into(),
            canonical: "{…}".into(),
            commit: "c".repeat(40),
        };
        let ok = Answer::Ok(vec![Appended { event: event.clone(), created: true }]);
        let Answer::Ok(back) = serde_json::from_str(&ok.to_line()).unwrap() else { panic!("not ok") };
        assert_eq!(back, [Appended { event, created: true }]);

        let holder = Lease { holder: "serve@h:1#ab".into(), epoch: 4, expires_at_ms: 9, endpoint: None };
        let error = Error::NotHolder { space: "team".into(), holder: Some(holder.clone()) };
        let line = Answer::failure(error.clone()).to_line();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["error"]["kind"], "not-holder");
        assert_eq!(json["error"]["message"], error.to_string());
        match serde_json::from_str(&line).unwrap() {
            Answer::Error(Failure { error: Error::NotHolder { space, holder: Some(h) }, .. }) => {
                assert_eq!((space.as_str(), h), ("team", holder));
            }
            other => panic!("{other:?}"),
        }
    }
}
