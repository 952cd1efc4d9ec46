//! One client connection of `serve`, and the limits that keep a bad client
//! from starving the others: how long a line may be, how many bytes all
//! unfinished requests may hold together, how long a client may stay
//! silent, and how many may be connected at once.
//!
//! A request is acted on only once its whole line has arrived, so a client
//! that stops halfway, hangs up or sends too much never causes a partial
//! write: its bytes are dropped and, where it still listens, it is told why.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::coalesce::Coalescer;
use crate::error::Error;
use crate::log::Log;
use crate::wire::{self, Answer, Request};

/// The longest request line: far above any batch of intents (a body is at
/// most 64 KiB) and an import of some 100,000 events. A larger import is run
/// while no `serve` holds the space, or in parts.
pub(super) const MAX_LINE: usize = 32 << 20;

/// Bytes that all connections together may hold in unfinished request
/// lines: what bounds `serve`'s memory however many clients send at once.
const BUDGET: usize = 128 << 20;

/// A client that sends nothing for this long is disconnected.
pub(super) const IDLE: Duration = Duration::from_secs(60);

/// Clients connected at once; one more is told the server is busy.
pub(super) const MAX_CONNECTIONS: usize = 1024;

/// What every connection shares: the log, group commit, and the budgets.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) log: Log,
    pub(super) coalescer: Coalescer,
    pub(super) holder: String,
    /// Bytes held in unfinished request lines, all connections together.
    pub(super) buffered: Arc<AtomicUsize>,
    /// Connections open now.
    pub(super) connections: Arc<AtomicUsize>,
}

/// Counts a connection for as long as it lives.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bytes reserved from the shared budget, given back when dropped.
struct Reserved<'a> {
    budget: &'a AtomicUsize,
    bytes: usize,
}

impl Reserved<'_> {
    /// Take `more` bytes from the budget, or say no.
    fn grow(&mut self, more: usize) -> bool {
        let mut now = self.budget.load(Ordering::SeqCst);
        loop {
            if now + more > BUDGET {
                return false;
            }
            match self.budget.compare_exchange(now, now + more, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.bytes += more;
                    return true;
                }
                Err(actual) => now = actual,
            }
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Why a request line could not be read whole.
enum LineError {
    /// End of input, or the client went silent or away: close quietly.
    Gone,
    /// Too long, or the server's budget is spent: answer, then close.
    Refused(Error),
}

/// Read one line (without its newline) into `line`, within the limits. The
/// bytes stay reserved until the returned reservation drops: the caller
/// holds it while the request is answered.
fn read_line<'a>(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    budget: &'a AtomicUsize,
) -> Result<Reserved<'a>, LineError> {
    let mut reserved = Reserved { budget, bytes: 0 };
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => return Err(LineError::Gone),
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(LineError::Gone),
        };
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at, true),
            None => (chunk.len(), false),
        };
        if line.len() + take > MAX_LINE {
            return Err(LineError::Refused(Error::Invalid(format!(
                "the request is longer than {} MiB; split it (an import can run while no serve holds the space)",
                MAX_LINE >> 20
            ))));
        }
        if !reserved.grow(take) {
            return Err(LineError::Refused(Error::Storage(
                "the server is holding too many unfinished requests; try again".into(),
            )));
        }
        line.extend_from_slice(&chunk[..take]);
        reader.consume(take + usize::from(done));
        if done {
            return Ok(reserved);
        }
    }
}

/// Whether another connection may open; when yes, it is counted until the
/// returned guard drops.
pub(super) fn admit(shared: &Shared) -> Option<impl Drop + use<>> {
    let open = shared.connections.fetch_add(1, Ordering::SeqCst);
    let counted = Counted(shared.connections.clone());
    (open < MAX_CONNECTIONS).then_some(counted)
}

/// Tell a client that was not admitted why, and close.
pub(super) fn refuse(mut stream: Box<dyn wire::ReadWrite>) {
    let busy = Error::Storage(format!("serve has {MAX_CONNECTIONS} clients connected already; try again"));
    let _ = writeln!(stream, "{}", Answer::failure(busy).to_line());
}

/// Answer one connection: one JSON line in, one JSON line out, until the
/// client hangs up, goes silent for [`IDLE`], or breaks a limit.
pub(super) fn handle(shared: &Shared, stream: Box<dyn wire::ReadWrite>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        // A large request's buffer is not kept for the rest of the connection.
        if line.capacity() > 1 << 20 {
            line = Vec::new();
        }
        line.clear();
        let (answer, _reserved) = match read_line(&mut reader, &mut line, &shared.buffered) {
            Ok(reserved) => (answer(shared, &line), reserved),
            Err(LineError::Gone) => return,
            Err(LineError::Refused(e)) => {
                // What is left of the line is never read: answer and close.
                let _ = writeln!(reader.get_mut(), "{}", Answer::failure(e).to_line());
                drain(reader.get_mut());
                return;
            }
        };
        let stream = reader.get_mut();
        let mut out = answer.to_line();
        out.push('\n');
        if stream.write_all(out.as_bytes()).and_then(|()| stream.flush()).is_err() {
            return;
        }
    }
}

fn answer(shared: &Shared, line: &[u8]) -> Answer {
    let Ok(line) = std::str::from_utf8(line) else {
        return Answer::failure(Error::Invalid("the request is not UTF-8".into()));
    };
    match wire::parse_request(line) {
        Ok(Request::Append { space, batch, intents }) => {
            Answer::from_result(shared.coalescer.append(&space, intents, batch))
        }
        Ok(Request::Import { space, events }) => match shared.log.space(&space).import_here(&events) {
            Ok(report) => Answer::Imported(report),
            Err(e) => Answer::failure(e),
        },
        Ok(Request::Ping) => Answer::Pong { holder: shared.holder.clone() },
        Err(e) => Answer::failure(e),
    }
}

/// Read and drop a little of what a refused client still sends, so its
/// socket closes cleanly (a close with unread data resets the connection,
/// and the client may lose the answer); a bounded amount, then close.
fn drain(stream: &mut dyn wire::ReadWrite) {
    let mut sink = [0u8; 64 << 10];
    let mut left = 1usize << 20;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_whole_and_a_cut_one_is_never_acted_on() {
        let budget = AtomicUsize::new(0);
        let mut input = &b"{\"op\":\"ping\"}\n{\"op\":\"pi"[..];
        let mut line = Vec::new();
        assert!(read_line(&mut input, &mut line, &budget).is_ok());
        assert_eq!(line, b"{\"op\":\"ping\"}");
        line.clear();
        assert!(matches!(read_line(&mut input, &mut line, &budget), Err(LineError::Gone)));
        assert_eq!(budget.load(Ordering::SeqCst), 0, "every reserved byte is given back");
    }

    #[test]
    fn a_line_over_the_limit_or_the_budget_is_refused_with_a_reason() {
        let budget = AtomicUsize::new(0);
        let long = vec![b'a'; MAX_LINE + 1];
        let mut line = Vec::new();
        match read_line(&mut &long[..], &mut line, &budget) {
            Err(LineError::Refused(Error::Invalid(m))) => assert!(m.contains("longer than"), "{m}"),
            _ => panic!("a line over the limit was taken"),
        }
        let spent = AtomicUsize::new(BUDGET - 4);
        let mut line = Vec::new();
        match read_line(&mut &b"0123456789\n"[..], &mut line, &spent) {
            Err(LineError::Refused(Error::Storage(m))) => assert!(m.contains("too many unfinished"), "{m}"),
            _ => panic!("a line over the budget was taken"),
        }
        assert_eq!(spent.load(Ordering::SeqCst), BUDGET - 4);
    }
}
