//! Errors that stop reading or writing a trace. Damage inside a readable
//! trace is not an error: see [`crate::Damage`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Stream(#[from] std::io::Error),
    #[error("not an oltrace trace file (the first 8 bytes are not the trace magic); is it a pcap or another file?")]
    NotATrace,
    #[error("trace format {found_major}.{found_minor} is newer than this build reads ({FORMAT_MAJOR}.x); upgrade oltrace to read it")]
    NewerMajor { found_major: u16, found_minor: u16 },
    #[error("trace header is damaged: {0}; the file cannot be read")]
    BadHeader(String),
    #[error("cannot encode record: {0}")]
    Encode(String),
}

use crate::header::FORMAT_MAJOR;
