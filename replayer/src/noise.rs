//! Noise rules: differences that are expected between runs (timestamps,
//! generated ids, `Date` headers) and must not fail a regression run.
//!
//! A rules file is TOML (documented in `docs/replay.md`):
//!
//! ```toml
//! # Headers compared besides the status and the body (default: content-type).
//! headers = ["content-type", "cache-control"]
//! # The built-in rules (BUILTIN_FIELDS) apply unless this is false.
//! defaults = true
//!
//! [[ignore]]
//! field = "body $.items[*].updated_at"   # a field, `[*]` any index, `*` any name
//! [[ignore]]
//! column = "created_at"                  # a PostgreSQL column, in any row
//! [[ignore]]
//! pattern = '^\d{4}-\d\d-\d\dT'          # both values match this regex
//! key = "GET /orders"                    # only for this key (or route, lambda)
//! ```
//!
//! A rule matches a difference when every condition it gives holds: its
//! `field` names the difference's field or a parent of it (`body $.meta`
//! covers `body $.meta.ts`; a `stmt[n].` prefix is optional), its `column`
//! is the row value's column, both values match its `pattern`, and the
//! exchange has its `key`, `route` and `lambda`. [`NoiseRules::learn`]
//! writes the rules for what differed between two replays against the
//! same baseline.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::model::{Difference, Replayed};

/// The fields ignored unless a rules file says `defaults = false`: HTTP
/// headers that change on every response (they matter only when listed in
/// `headers`).
pub const BUILTIN_FIELDS: &[&str] = &[
    "header date",
    "header expires",
    "header last-modified",
    "header age",
    "header set-cookie",
    "header server-timing",
    "header x-request-id",
    "header x-amzn-requestid",
    "header x-amzn-trace-id",
    "header traceparent",
];

/// The headers compared when a rules file does not say.
pub const DEFAULT_HEADERS: &[&str] = &["content-type"];

/// One rule as written in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<String>,
    /// Why (free text; [`NoiseRules::learn`] says what it saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The file's shape.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    defaults: Option<bool>,
    #[serde(default, rename = "ignore", skip_serializing_if = "Vec::is_empty")]
    ignore: Vec<Rule>,
}

/// Where a difference was seen, for scoped rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    pub key: Option<&'a str>,
    pub route: Option<&'a str>,
    pub lambda: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn of(ex: &'a Replayed) -> Scope<'a> {
        Scope { key: Some(&ex.key), route: Some(&ex.route), lambda: ex.lambda.as_deref() }
    }
}

#[derive(Clone, Debug)]
struct Compiled {
    rule: Rule,
    field: Option<Regex>,
    pattern: Option<Regex>,
}

impl Compiled {
    fn new(rule: Rule) -> anyhow::Result<Compiled> {
        if rule.field.is_none() && rule.column.is_none() && rule.pattern.is_none() {
            bail!("a rule needs a `field`, a `column` or a `pattern` (it has {rule:?})");
        }
        if rule.field.is_some() && rule.column.is_some() {
            bail!("a rule has either a `field` or a `column`, not both (field {:?}, column {:?})", rule.field, rule.column);
        }
        let field = match (&rule.field, &rule.column) {
            (Some(f), _) => Some(field_regex(f)),
            (_, Some(c)) => Some(Regex::new(&format!(r"^(?:stmt\[\d+\]\.)?row\[\d+\]\.{}$", regex::escape(c))).expect("escaped")),
            _ => None,
        };
        let pattern = match &rule.pattern {
            Some(p) => Some(Regex::new(p).with_context(|| format!("pattern {p:?} is not a valid regular expression"))?),
            None => None,
        };
        Ok(Compiled { rule, field, pattern })
    }

    fn matches(&self, field: &str, rec: &str, rep: &str, scope: &Scope) -> bool {
        let r = &self.rule;
        let scoped = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        scoped(&r.key, scope.key)
            && scoped(&r.route, scope.route)
            && scoped(&r.lambda, scope.lambda)
            && self.field.as_ref().is_none_or(|f| f.is_match(field))
            && self.pattern.as_ref().is_none_or(|p| p.is_match(rec) && p.is_match(rep))
    }
}

/// A field name as written in a rule to the regex it matches: `[*]` any
/// index, `*` any member name, the field itself or anything under it, an
/// optional `stmt[n].` prefix; header names ignore case.
fn field_regex(f: &str) -> Regex {
    let f = f.trim();
    let mut re = String::from(r"^(?:stmt\[\d+\]\.)?");
    if f.len() >= 7 && f[..7].eq_ignore_ascii_case("header ") {
        re.insert_str(1, "(?i)");
    }
    let mut rest = f;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            re.push_str(r"\[\d+\]");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            re.push_str(r#"[^.\[\]{} ]*"#);
            rest = r;
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            re.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
            rest = &rest[ch.len_utf8()..];
        }
    }
    re.push_str(r"(?:$|[.\[{# ])");
    Regex::new(&re).expect("built from escaped parts")
}

/// A set of rules, and the headers to compare.
#[derive(Clone, Debug)]
pub struct NoiseRules {
    rules: Vec<Compiled>,
    headers: Vec<String>,
    /// Whether [`BUILTIN_FIELDS`] are part of `rules`.
    defaults: bool,
}

impl Default for NoiseRules {
    /// The built-in rules, `content-type` compared.
    fn default() -> NoiseRules {
        NoiseRules::from_parts(true, None, Vec::new()).expect("built-in rules are valid")
    }
}

impl NoiseRules {
    /// No rules at all (every difference counts), `content-type` compared.
    pub fn none() -> NoiseRules {
        NoiseRules::from_parts(false, None, Vec::new()).expect("no rules")
    }

    fn from_parts(defaults: bool, headers: Option<Vec<String>>, rules: Vec<Rule>) -> anyhow::Result<NoiseRules> {
        let mut compiled = Vec::new();
        if defaults {
            for f in BUILTIN_FIELDS {
                compiled.push(Compiled::new(Rule { field: Some((*f).into()), reason: Some("built-in".into()), ..Rule::default() })?);
            }
        }
        for (i, r) in rules.into_iter().enumerate() {
            compiled.push(Compiled::new(r).with_context(|| format!("rule {} ([[ignore]] number {})", i + 1, i + 1))?);
        }
        let headers = headers.unwrap_or_else(|| DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect());
        Ok(NoiseRules { rules: compiled, headers: headers.into_iter().map(|h| h.trim().to_ascii_lowercase()).collect(), defaults })
    }

    /// These rules without the built-in ones (`--no-default-noise`).
    pub fn without_defaults(mut self) -> NoiseRules {
        if self.defaults {
            self.rules.drain(..BUILTIN_FIELDS.len());
            self.defaults = false;
        }
        self
    }

    /// Reads rules from a file.
    pub fn load(path: &Path) -> anyhow::Result<NoiseRules> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the noise rules file {}", path.display()))?;
        NoiseRules::parse(&text).with_context(|| format!("noise rules file {}: fix it or pass another (see docs/replay.md)", path.display()))
    }

    /// The rules of `--noise` files: the first file's `headers` and
    /// `defaults` apply, the others add their rules; none gives the
    /// built-in rules. `builtin` false leaves those out
    /// (`--no-default-noise`).
    pub fn from_files(paths: &[std::path::PathBuf], builtin: bool) -> anyhow::Result<NoiseRules> {
        let load = |p: &std::path::PathBuf| NoiseRules::load(p).map_err(|e| anyhow::anyhow!("--noise {}: {e:#}", p.display()));
        let mut noise = match paths.first() {
            Some(p) => load(p)?,
            None => NoiseRules::default(),
        };
        for p in paths.iter().skip(1) {
            noise.extend(load(p)?.rules().cloned())?;
        }
        Ok(if builtin { noise } else { noise.without_defaults() })
    }

    /// Rules from the text of a rules file.
    pub fn parse(text: &str) -> anyhow::Result<NoiseRules> {
        let file: RulesFile = toml::from_str(text).context("not a valid rules file")?;
        NoiseRules::from_parts(file.defaults.unwrap_or(true), file.headers, file.ignore)
    }

    /// The rules file text for these rules (built-in rules not repeated).
    pub fn to_toml(&self) -> String {
        let file = RulesFile {
            headers: (self.headers != DEFAULT_HEADERS).then(|| self.headers.clone()),
            defaults: (!self.defaults).then_some(false),
            ignore: self.rules().cloned().collect(),
        };
        let body = toml::to_string_pretty(&file).unwrap_or_default();
        format!("# olreplay noise rules (docs/replay.md)\n{body}")
    }

    /// Writes the rules file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_toml()).with_context(|| format!("cannot write the noise rules file {}", path.display()))
    }

    /// The rules, built-in ones left out.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().skip(if self.defaults { BUILTIN_FIELDS.len() } else { 0 }).map(|c| &c.rule)
    }

    /// Adds rules (compiled; an invalid pattern is an error).
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Rule>) -> anyhow::Result<()> {
        for r in rules {
            if !self.rules.iter().any(|c| c.rule == r) {
                self.rules.push(Compiled::new(r)?);
            }
        }
        Ok(())
    }

    /// The HTTP headers compared (lower case).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Whether `diff` is expected noise, with no scope (rules naming a key,
    /// route or lambda do not apply). A JSON string value shown quoted is
    /// matched without its quotes.
    pub fn is_noise(&self, diff: &Difference) -> bool {
        let unquote = |s: &str| match serde_json::from_str::<String>(s) {
            Ok(t) if s.starts_with('"') => t,
            _ => s.to_owned(),
        };
        self.is_noise_raw(&diff.field, &unquote(&diff.recorded), &unquote(&diff.replayed), &Scope::default())
    }

    /// Whether a difference at `field` between the raw values `rec` and
    /// `rep`, seen in `scope`, is noise.
    pub fn is_noise_raw(&self, field: &str, rec: &str, rep: &str, scope: &Scope) -> bool {
        self.rules.iter().any(|c| c.matches(field, rec, rep, scope))
    }

    /// The rules for what differed between two replays of the same trace
    /// against the same baseline: `first[i]` and `second[i]` are the same
    /// recorded exchange. The replayed sides are compared with each other
    /// (no rules), every field that differed becomes a rule scoped to the
    /// exchange's key, with array and row indices generalised to `[*]`.
    /// Differences in whether an exchange completed are not learned (that
    /// is a failure, not noise). The headers compared are `headers`.
    pub fn learn(first: &[Replayed], second: &[Replayed], headers: &[String]) -> NoiseRules {
        let probe = NoiseRules { headers: headers.to_vec(), ..NoiseRules::none() };
        let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
        for (a, b) in first.iter().zip(second) {
            if (a.src, a.conn, &a.key) != (b.src, b.conn, &b.key) {
                continue;
            }
            let (Ok(x), Ok(y)) = (&a.replayed, &b.replayed) else { continue };
            *per_key.entry(a.key.clone()).or_default() += 1;
            let mut fields: Vec<String> = crate::compare::compare(a.protocol, x, y, &probe)
                .into_iter()
                .filter(|d| d.field != "exchange.status" && d.field != "more")
                .map(|d| generalise(&d.field))
                .collect();
            fields.sort();
            fields.dedup();
            for f in fields {
                *seen.entry((a.key.clone(), f)).or_default() += 1;
            }
        }
        let rules = seen
            .into_iter()
            .map(|((key, field), n)| Rule {
                reason: Some(format!("learned: differed between two replays in {n} of {} exchanges", per_key.get(&key).copied().unwrap_or(0))),
                field: Some(field),
                key: Some(key),
                ..Rule::default()
            })
            .collect();
        NoiseRules::from_parts(true, Some(headers.to_vec()), rules).expect("learned fields are literal")
    }
}

/// `row[3].x` to `row[*].x`, `body $.items[2]` to `body $.items[*]`.
pub fn generalise(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(']') {
            out.push('*');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(field: &str, a: &str, b: &str) -> Difference {
        Difference { field: field.into(), recorded: a.into(), replayed: b.into() }
    }

    #[test]
    fn field_rules_match_the_field_and_what_is_under_it() {
        let r = NoiseRules::parse("[[ignore]]\nfield = \"body $.items[*].updated_at\"\n[[ignore]]\nfield = \"body $.meta\"\n").unwrap();
        assert!(r.is_noise(&d("body $.items[2].updated_at", "1", "2")));
        assert!(r.is_noise(&d("body $.items[10].updated_at.nanos", "1", "2")));
        assert!(!r.is_noise(&d("body $.items[2].updated", "1", "2")));
        assert!(!r.is_noise(&d("body $.items.updated_at", "1", "2")));
        assert!(!r.is_noise(&d("body $.items[2].updated_at_x", "1", "2")));
        assert!(r.is_noise(&d("body $.meta", "1", "2")));
        assert!(r.is_noise(&d("body $.meta.ts", "1", "2")));
        assert!(!r.is_noise(&d("body $.metadata", "1", "2")));
        assert!(!r.is_noise(&d("status", "200", "500")));
    }

    #[test]
    fn star_matches_one_member_name() {
        let r = NoiseRules::parse("[[ignore]]\nfield = \"body $.*.id\"\n").unwrap();
        assert!(r.is_noise(&d("body $.user.id", "1", "2")));
        assert!(!r.is_noise(&d("body $.user.x.id", "1", "2")));
    }

    #[test]
    fn column_rules_match_that_column_in_any_row_and_statement() {
        let r = NoiseRules::parse("[[ignore]]\ncolumn = \"created_at\"\n").unwrap();
        assert!(r.is_noise(&d("row[0].created_at", "a", "b")));
        assert!(r.is_noise(&d("stmt[1].row[7].created_at", "a", "b")));
        assert!(!r.is_noise(&d("row[0].created", "a", "b")));
        assert!(!r.is_noise(&d("column[0]", "created_at int4", "x int4")));
    }

    #[test]
    fn pattern_rules_need_both_values_to_match() {
        let r = NoiseRules::parse("[[ignore]]\npattern = '^\\d{4}-\\d\\d-\\d\\dT'\n").unwrap();
        assert!(r.is_noise(&d("body $.at", "\"2024-01-01T00:00:00Z\"", "\"2025-02-02T10:00:00Z\"")));
        assert!(!r.is_noise(&d("body $.at", "\"2024-01-01T00:00:00Z\"", "null")));
        let both = NoiseRules::parse("[[ignore]]\nfield = \"row[*].v\"\npattern = '^\\d+$'\n").unwrap();
        assert!(both.is_noise(&d("row[1].v", "12", "13")));
        assert!(!both.is_noise(&d("row[1].w", "12", "13")));
        assert!(!both.is_noise(&d("row[1].v", "12", "x")));
    }

    #[test]
    fn scoped_rules_apply_only_in_their_scope() {
        let r = NoiseRules::parse("[[ignore]]\nfield = \"body $.id\"\nkey = \"POST /orders\"\nlambda = \"orders\"\n").unwrap();
        let here = Scope { key: Some("POST /orders"), route: Some("api"), lambda: Some("orders") };
        let other = Scope { key: Some("POST /users"), route: Some("api"), lambda: Some("orders") };
        assert!(r.is_noise_raw("body $.id", "1", "2", &here));
        assert!(!r.is_noise_raw("body $.id", "1", "2", &other));
        assert!(!r.is_noise_raw("body $.id", "1", "2", &Scope::default()));
    }

    #[test]
    fn builtin_rules_and_headers() {
        let r = NoiseRules::default();
        assert!(r.is_noise(&d("header date", "Mon", "Tue")));
        assert!(r.is_noise(&d("header Date", "Mon", "Tue")));
        assert!(!r.is_noise(&d("header content-type", "a", "b")));
        assert_eq!(r.headers(), ["content-type"]);
        let off = NoiseRules::parse("defaults = false\nheaders = [\"Content-Type\", \"Date\"]\n").unwrap();
        assert!(!off.is_noise(&d("header date", "Mon", "Tue")));
        assert_eq!(off.headers(), ["content-type", "date"]);
        assert!(!NoiseRules::none().is_noise(&d("header date", "Mon", "Tue")));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = format!("{:#}", NoiseRules::parse("[[ignore]]\npattern = '('\n").unwrap_err());
        assert!(e.contains("rule 1") && e.contains("not a valid regular expression"), "{e}");
        let e = format!("{:#}", NoiseRules::parse("[[ignore]]\nfeild = \"x\"\n").unwrap_err());
        assert!(e.contains("feild"), "{e}");
        let e = format!("{:#}", NoiseRules::parse("[[ignore]]\nkey = \"x\"\n").unwrap_err());
        assert!(e.contains("needs a `field`"), "{e}");
    }

    #[test]
    fn rules_survive_save_and_load() {
        let mut r = NoiseRules::parse("headers = [\"content-type\", \"etag\"]\n[[ignore]]\nfield = \"body $.id\"\nreason = \"uuid\"\n").unwrap();
        r.extend([Rule { column: Some("ts".into()), key: Some("select ?".into()), ..Rule::default() }]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("noise.toml");
        r.save(&p).unwrap();
        let back = NoiseRules::load(&p).unwrap();
        assert_eq!(back.rules().collect::<Vec<_>>(), r.rules().collect::<Vec<_>>());
        assert_eq!(back.headers(), ["content-type", "etag"]);
        assert_eq!(back.rules().count(), 2);
    }

    #[test]
    fn generalise_replaces_indices() {
        assert_eq!(generalise("stmt[1].row[30].x"), "stmt[*].row[*].x");
        assert_eq!(generalise("body $.a[2][0].b"), "body $.a[*][*].b");
        assert_eq!(generalise("body $[\"k[1]\"]"), "body $[\"k[*]\"]");
        assert_eq!(generalise("reply#1"), "reply#1");
    }
}
