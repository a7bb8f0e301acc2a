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

    #[test]
    fn words() {
        assert!(contains_word("invocation x request=seq-1 tp", "seq-1"));
        assert!(!contains_word("request=seq-10", "seq-1"));
        assert!(!contains_word("request=pair-seq-1", "seq-1"));
        assert!(contains_word("seq-1", "seq-1"));
        assert!(!contains_word("anything", ""));
    }
}
