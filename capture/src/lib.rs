//! `capture`: passive capture for oltrace. Packets in, per-connection byte
//! streams out, sans-IO like `wire` (time is an argument); and streams back
//! out as packets.
//!
//! # Layout
//!
//! - [`capture_file`]: the frames of a `.pcap`/`.pcapng` file (pure Rust,
//!   the pcap-file crate: importing needs no libpcap).
//! - [`frame`]: one frame to a TCP segment, by link type (Ethernet with
//!   VLANs, Linux SLL and SLL2, loopback, raw IP; IPv4 and IPv6), with
//!   etherparse's lax slicing for frames the snap length cut.
//! - [`reassembly`]: the [`Reassembler`]: segments to ordered byte streams
//!   per connection and direction, with gaps reported exactly.
//! - [`pcap_export`]: streams back out as synthetic TCP/IP packets in a
//!   pcap (`oltrace export --format pcap`).
//!
//! The tracer's `import` feeds what the reassembler emits into the same
//! recorder the proxy uses (decoding with `wire`, records with `convert`).
//! See docs/capture.md.

pub mod capture_file;
pub mod frame;
pub mod pcap_export;
pub mod reassembly;

pub use capture_file::{CaptureFile, CaptureFileError, Frame};
pub use reassembly::{CloseCause, Counters, Flags, GapCause, Limits, Reassembler, Segment, StreamEvent};
