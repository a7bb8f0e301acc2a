//! Platform profiles: which HTTP requests to a worker are invocations of a
//! lambda, and the lambda's name, read from the request target.
//!
//! | profile | invocation target |
//! | --- | --- |
//! | `openlambda` | `/run/<name>` |
//! | `openwhisk` | `/api/v1/namespaces/<ns>/actions/<name>` (`<name>` may be `pkg/action`) |
//! | `aws` | `/2015-03-31/functions/<name>/invocations` |
//! | `azure` | `/api/<name>` |
//! | `auto` | the first of the above that matches, in that order |
//! | `NAME=REGEX` | a user pattern: the first capture group (or the group named `lambda`) is the name |
//!
//! Matching looks at the path only: an absolute-form target is reduced to
//! its path, and the query string is ignored. Everything here is a pure
//! function of the request, so it is tested without sockets.

use regex::Regex;

/// How requests to a worker are named.
#[derive(Clone, Debug)]
pub enum Profile {
    OpenLambda,
    OpenWhisk,
    Aws,
    Azure,
    /// Tries each built-in profile in turn.
    Auto,
    /// `NAME=REGEX`: the platform's name for the trace, and its pattern.
    User { name: String, pattern: Regex },
}

impl PartialEq for Profile {
    fn eq(&self, other: &Profile) -> bool {
        match (self, other) {
            (Profile::User { name: a, pattern: p }, Profile::User { name: b, pattern: q }) => a == b && p.as_str() == q.as_str(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// An invocation as its profile names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub lambda: String,
    /// The profile that matched (`openlambda`, ..., or the user pattern's name).
    pub platform: String,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(text: &str) -> Result<Profile, String> {
        Ok(match text {
            "openlambda" => Profile::OpenLambda,
            "openwhisk" => Profile::OpenWhisk,
            "aws" => Profile::Aws,
            "azure" => Profile::Azure,
            "auto" => Profile::Auto,
            _ => {
                let usage = "use openlambda, openwhisk, aws, azure, auto, or NAME=REGEX with a capture group for the lambda's name, e.g. 'myplatform=^/invoke/([^/]+)'";
                let (name, pattern) = text.split_once('=').ok_or_else(|| format!("unknown invocation profile '{text}': {usage}"))?;
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(format!("invocation profile '{text}': the NAME before '=' must be a non-empty word; {usage}"));
                }
                let pattern = Regex::new(pattern).map_err(|e| format!("invocation profile '{text}': bad regular expression: {e}"))?;
                if pattern.captures_len() < 2 {
                    return Err(format!("invocation profile '{text}': the pattern has no capture group for the lambda's name; {usage}"));
                }
                Profile::User { name: name.to_string(), pattern }
            }
        })
    }
}

impl Profile {
    /// The profile's name as given on the command line.
    pub fn name(&self) -> &str {
        match self {
            Profile::OpenLambda => "openlambda",
            Profile::OpenWhisk => "openwhisk",
            Profile::Aws => "aws",
            Profile::Azure => "azure",
            Profile::Auto => "auto",
            Profile::User { name, .. } => name,
        }
    }

    /// Names the invocation a request with this target is, if it is one.
    pub fn match_target(&self, target: &str) -> Option<Named> {
        let path = path_of(target);
        let named = |lambda: Option<&str>, platform: &str| {
            lambda.filter(|l| !l.is_empty()).map(|l| Named { lambda: l.to_string(), platform: platform.to_string() })
        };
        match self {
            Profile::OpenLambda => named(openlambda(path), "openlambda"),
            Profile::OpenWhisk => named(openwhisk(path), "openwhisk"),
            Profile::Aws => named(aws(path), "aws"),
            Profile::Azure => named(azure(path), "azure"),
            Profile::Auto => [Profile::OpenLambda, Profile::OpenWhisk, Profile::Aws, Profile::Azure].iter().find_map(|p| p.match_target(target)),
            Profile::User { name, pattern } => {
                let caps = pattern.captures(path)?;
                let lambda = caps.name("lambda").or_else(|| caps.iter().skip(1).flatten().next())?;
                named(Some(lambda.as_str()), name)
            }
        }
    }
}

/// The path of a request target: origin-form up to `?` or `#`, or the path
/// part of an absolute-form target (`http://host/path`).
fn path_of(target: &str) -> &str {
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => target,
    };
    let end = target.find(['?', '#']).unwrap_or(target.len());
    &target[..end]
}

/// `/run/<name>[/...]`
fn openlambda(path: &str) -> Option<&str> {
    first_segment(path.strip_prefix("/run/")?)
}

/// `/api/v1/namespaces/<ns>/actions/<name>` where the name may be
/// `package/action`.
fn openwhisk(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    let name = rest.strip_prefix("actions/")?.trim_end_matches('/');
    (!ns.is_empty()).then_some(name)
}

/// `/2015-03-31/functions/<name>/invocations`
fn aws(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/2015-03-31/functions/")?;
    let name = rest.strip_suffix("/invocations")?;
    (!name.contains('/')).then_some(name)
}

/// `/api/<name>[/...]`
fn azure(path: &str) -> Option<&str> {
    first_segment(path.strip_prefix("/api/")?)
}

fn first_segment(rest: &str) -> Option<&str> {
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(profile: &str, target: &str) -> Option<(String, String)> {
        profile.parse::<Profile>().unwrap().match_target(target).map(|n| (n.lambda, n.platform))
    }

    fn some(lambda: &str, platform: &str) -> Option<(String, String)> {
        Some((lambda.to_string(), platform.to_string()))
    }

    #[test]
    fn built_in_profiles() {
        assert_eq!(name("openlambda", "/run/echo"), some("echo", "openlambda"));
        assert_eq!(name("openlambda", "/run/echo/?x=1"), some("echo", "openlambda"));
        assert_eq!(name("openlambda", "/run/"), None);
        assert_eq!(name("openlambda", "/status"), None);
        assert_eq!(name("openwhisk", "/api/v1/namespaces/_/actions/hello?blocking=true"), some("hello", "openwhisk"));
        assert_eq!(name("openwhisk", "/api/v1/namespaces/guest/actions/pkg/hello"), some("pkg/hello", "openwhisk"));
        assert_eq!(name("openwhisk", "/api/v1/namespaces/guest/triggers/t"), None);
        assert_eq!(name("aws", "/2015-03-31/functions/my-fn/invocations"), some("my-fn", "aws"));
        assert_eq!(name("aws", "/2015-03-31/functions/my-fn/configuration"), None);
        assert_eq!(name("azure", "/api/HttpTrigger?name=x"), some("HttpTrigger", "azure"));
        assert_eq!(name("azure", "/run/x"), None);
        // Absolute-form targets are reduced to their path.
        assert_eq!(name("openlambda", "http://worker:8080/run/echo"), some("echo", "openlambda"));
    }

    #[test]
    fn auto_tries_openwhisk_before_azure() {
        assert_eq!(name("auto", "/run/a"), some("a", "openlambda"));
        assert_eq!(name("auto", "/api/v1/namespaces/_/actions/b"), some("b", "openwhisk"));
        assert_eq!(name("auto", "/2015-03-31/functions/c/invocations"), some("c", "aws"));
        assert_eq!(name("auto", "/api/d"), some("d", "azure"));
        assert_eq!(name("auto", "/healthz"), None);
    }

    #[test]
    fn user_patterns() {
        assert_eq!(name("knative=^/fn/([a-z-]+)$", "/fn/resize-image?w=3"), some("resize-image", "knative"));
        assert_eq!(name("knative=^/fn/([a-z-]+)$", "/fn/Resize"), None);
        assert_eq!(name("x=^/(v[0-9])/(?P<lambda>[^/]+)", "/v2/thumb"), some("thumb", "x"));
        assert!("x=^/fn/.*".parse::<Profile>().unwrap_err().contains("capture group"));
        assert!("x=(".parse::<Profile>().unwrap_err().contains("regular expression"));
        assert!("lambda".parse::<Profile>().unwrap_err().contains("openlambda, openwhisk"));
        assert!("=^/(x)".parse::<Profile>().unwrap_err().contains("NAME"));
    }
}
