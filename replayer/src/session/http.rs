//! HTTP requests as re-sent: the recorded bytes, with `Host` (and an
//! absolute-form target's authority) rewritten when the route has a
//! `--target`.

use crate::target::Target;
use std::borrow::Cow;

/// The bytes to send for a recorded request message.
pub fn request_bytes<'a>(recorded: &'a [u8], target: &Target) -> Cow<'a, [u8]> {
    match &target.host_header {
        Some(host) => match wire::http::rewrite_host(recorded, host) {
            Some(b) => Cow::Owned(b),
            // Not a request head (a body continuation): as recorded.
            None => Cow::Borrowed(recorded),
        },
        None => Cow::Borrowed(recorded),
    }
}
