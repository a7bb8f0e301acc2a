//! Which invocation a log line belongs to (`oltrace logs`, and the `logs`
//! of every export).
//!
//! A log line holds no invocation id: the worker wrote it. It is tied to
//! an invocation of the same source (worker), in this order:
//!
//! 1. **request id**: the line holds the request id of an invocation in
//!    flight (or just ended): found with a user regex whose first capture
//!    group is the id (`--request-id-regex`), or, by default, as a whole
//!    word anywhere in the line;
//! 2. **window**: the line was read while exactly one invocation was in
//!    flight on that worker.
//!
//! Otherwise it belongs to none: with two invocations in flight and no id
//! in the line, we do not guess. Memory: the invocations started within
//! the last few seconds (plus those still open).

// An invocation whose end never comes is taken as over MAX_OPEN_NS after
// its start (as unanswered), so memory stays bounded.
use format::view::MAX_OPEN_NS;
use format::view::{InvocationRef, Seen};
use format::{Body, LogLine, Record};
use regex::Regex;
use std::collections::VecDeque;

/// How long after its end an invocation can still claim a line by its
/// request id (output is read a little after it is written).
const AFTER_END_NS: u64 = 2_000_000_000;

/// How a log line was tied to its invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogMethod {
    RequestId,
    Window,
}

impl LogMethod {
    pub fn name(self) -> &'static str {
        match self {
            LogMethod::RequestId => "request_id",
            LogMethod::Window => "window",
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogAttribution {
    pub invocation: InvocationRef,
    pub method: LogMethod,
}

struct Live {
    inv: InvocationRef,
    /// Its response's last byte, once its exchange was seen.
    end: Option<u64>,
}

pub struct LogJoin {
    regex: Option<Regex>,
    /// By start time.
    live: VecDeque<Live>,
}

impl LogJoin {
    /// `regex`: where the request id is in a line (capture group 1, or the
    /// whole match); `None` looks for any live invocation's id as a word.
    pub fn new(regex: Option<Regex>) -> LogJoin {
        LogJoin { regex, live: VecDeque::new() }
    }

    /// Learns invocations and their ends from the record stream.
    pub fn observe(&mut self, record: &Record, seen: &Seen<'_>) {
        match &record.body {
            Body::Invocation(_) => {
                if let Some(j) = &seen.invocation {
                    self.live.push_back(Live { inv: j.invocation.clone(), end: None });
                }
            }
            Body::Exchange(e) => {
                if let Some(j) = seen.invocation.as_ref().filter(|j| j.method.is_none()) {
                    let end = e.response_last.unwrap_or(e.request_last).max(record.ts);
                    if let Some(l) = self.live.iter_mut().rev().find(|l| l.inv.src == j.invocation.src && l.inv.id == j.invocation.id) {
                        l.end = Some(end);
                    }
                }
            }
            _ => {}
        }
        self.forget_before(record.ts);
    }

    fn forget_before(&mut self, now: u64) {
        // Only from the front (oldest start): an old open invocation keeps
        // newer ended ones a while, which costs memory, not correctness.
        while let Some(l) = self.live.front() {
            let done = match l.end {
                Some(end) => end.saturating_add(AFTER_END_NS) < now,
                None => l.inv.ts.saturating_add(MAX_OPEN_NS) < now,
            };
            if !done {
                break;
            }
            self.live.pop_front();
        }
    }

    /// The invocation `line` (a record of source `record.src` at
    /// `record.ts`) belongs to, if it can be told.
    pub fn attribute(&self, record: &Record, line: &LogLine) -> Option<LogAttribution> {
        let mine = || self.live.iter().filter(|l| l.inv.src == record.src);
        let by_id: Vec<&Live> = match &self.regex {
            Some(re) => match re.captures(&line.text) {
                Some(c) => {
                    let id = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
                    mine().filter(|l| l.inv.request_id.as_deref() == Some(id)).collect()
                }
                None => Vec::new(),
            },
            None => mine().filter(|l| l.inv.request_id.as_deref().is_some_and(|id| contains_word(&line.text, id))).collect(),
        };
        if let Some(l) = by_id.last() {
            // Ids are meant to be unique; if one was reused, the latest wins.
            return Some(LogAttribution { invocation: l.inv.clone(), method: LogMethod::RequestId });
        }
        let mut in_flight = mine().filter(|l| l.inv.ts <= record.ts && l.end.is_none_or(|end| record.ts <= end));
        match (in_flight.next(), in_flight.next()) {
            (Some(l), None) => Some(LogAttribution { invocation: l.inv.clone(), method: LogMethod::Window }),
            _ => None,
        }
    }
}

/// True when `word` occurs in `text` not as part of a longer id (the
/// characters around it are not letters, digits, `-` or `_`).
fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_id = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_id) && !after.is_some_and(is_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use format::view::View;
    use format::{Exchange, ExchangeStatus, ExchangeSummary, HttpExchange, Invocation, LogStream};

    /// Feeds records to a view and a join, as `oltrace logs` does, and
    /// says where each log line goes: `(invocation id, method)`.
    struct Feed {
        view: View,
        join: LogJoin,
    }

    impl Feed {
        fn new(regex: Option<&str>) -> Feed {
            Feed { view: View::default(), join: LogJoin::new(regex.map(|r| Regex::new(r).unwrap())) }
        }

        fn push(&mut self, src: u16, ts: u64, body: Body) {
            let record = Record { ts, src, body };
            let seen = self.view.observe(&record);
            self.join.observe(&record, &seen);
        }

        /// Invocation `id` (request id `rid`) of source `src` starts at `ts`
        /// on connection `id`.
        fn start(&mut self, src: u16, ts: u64, id: u64, rid: &str) {
            let i = Invocation { id, conn: id, lambda: "blog".into(), platform: "openlambda".into(), request_id: Some(rid.into()), trace_id: None };
            self.push(src, ts, Body::Invocation(i));
        }

        /// Its exchange (seen when it ends; stamped with its start).
        fn end(&mut self, src: u16, start: u64, id: u64, end: u64) {
            let e = Exchange {
                conn: id,
                request_last: start,
                response_first: Some(end),
                response_last: Some(end),
                request_bytes: 1,
                response_bytes: 1,
                status: ExchangeStatus::Complete,
                summary: ExchangeSummary::Http(HttpExchange::default()),
                attribution: None,
            };
            self.push(src, start, Body::Exchange(e));
        }

        fn line(&mut self, src: u16, ts: u64, text: &str) -> Option<(u64, LogMethod)> {
            let line = LogLine { origin: "worker".into(), stream: LogStream::Stdout, text: text.into(), redacted: false };
            self.push(src, ts, Body::Log(line.clone()));
            let record = Record { ts, src, body: Body::Log(line.clone()) };
            self.join.attribute(&record, &line).map(|a| (a.invocation.id, a.method))
        }
    }

    #[test]
    fn window_attribution() {
        let mut f = Feed::new(None);
        assert_eq!(f.line(0, 5, "before anything"), None);
        // #1 on source 0 from 10 to 100, alone at first.
        f.start(0, 10, 1, "r-1");
        assert_eq!(f.line(0, 20, "no id here"), Some((1, LogMethod::Window)));
        // Another worker's line is not #1's, whatever the time.
        assert_eq!(f.line(1, 20, "no id here"), None);
        // #2 starts at 50: two in flight, and no guessing.
        f.start(0, 50, 2, "r-2");
        assert_eq!(f.line(0, 60, "no id here"), None);
        // #1 ends at 100 (its exchange, stamped 10, comes at its end): from
        // then on #2 is alone.
        f.end(0, 10, 1, 100);
        assert_eq!(f.line(0, 100, "no id here"), None, "#1 is in flight up to its last byte");
        assert_eq!(f.line(0, 120, "no id here"), Some((2, LogMethod::Window)));
        // An id in the line wins over the window, even for an ended one.
        assert_eq!(f.line(0, 130, "done r-1"), Some((1, LogMethod::RequestId)));
        f.end(0, 50, 2, 150);
        // None in flight.
        assert_eq!(f.line(0, 200, "no id here"), None);
        // Long after its end, an id claims nothing.
        assert_eq!(f.line(0, 150 + AFTER_END_NS + 1, "late r-2"), None);
    }

    #[test]
    fn request_id_regex() {
        // Two in flight; the line names #1 as its request and #2 (started
        // later) as something else.
        let text = "req[r-1] parent=r-2";
        let run = |regex: Option<&str>, text: &str| {
            let mut f = Feed::new(regex);
            f.start(0, 10, 1, "r-1");
            f.start(0, 20, 2, "r-2");
            f.line(0, 30, text)
        };
        // By default any live id as a word counts, and the latest wins.
        assert_eq!(run(None, text), Some((2, LogMethod::RequestId)));
        // The regex's group 1 says which is the request id.
        assert_eq!(run(Some(r"req\[([\w-]+)\]"), text), Some((1, LogMethod::RequestId)));
        assert_eq!(run(Some(r"parent=(\S+)"), text), Some((2, LogMethod::RequestId)));
        // Without a group, the whole match is the id.
        assert_eq!(run(Some(r"r-\d"), text), Some((1, LogMethod::RequestId)));
        // Only where the regex says: an id elsewhere in the line is not
        // taken, and with two in flight the line is no one's.
        assert_eq!(run(Some(r"req\[([\w-]+)\]"), "parent=r-2 only"), None);
        // A match that is no live invocation's id is no one's either.
        assert_eq!(run(Some(r"req\[([\w-]+)\]"), "req[r-9] parent=r-2"), None);
    }

    #[test]
    fn words() {
        assert!(contains_word("invocation x request=seq-1 tp", "seq-1"));
        assert!(!contains_word("request=seq-10", "seq-1"));
        assert!(!contains_word("request=pair-seq-1", "seq-1"));
        assert!(contains_word("seq-1", "seq-1"));
        assert!(!contains_word("anything", ""));
    }
}
