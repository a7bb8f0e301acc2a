//! What the analyzer takes from a PostgreSQL statement's text: its class
//! key (the fingerprint), whether it writes and the tables it names,
//! worked out once per distinct text and once per fingerprint rather than
//! once per call (this string work bounded olanalyze's speed).
//!
//! Two caches, both bounded ([`MAX_CACHED`] entries each, emptied when
//! full, so memory does not grow with the trace):
//! - by text: with the extended protocol a statement's text repeats on
//!   every call (its values travel in Bind), as do `BEGIN` and `COMMIT`;
//!   a hit costs one hash of the text.
//! - by fingerprint: with the simple protocol the literals are in the text,
//!   so texts rarely repeat; the fingerprint is computed, and the write
//!   flag and tables come from the class's first call.
//!
//! The write flag and tables are read from the fingerprint, not the raw
//! text: it has no comments, its literals are `?`, so a string literal
//! holding `from x` or `insert` does not name a table or make a write.

use crate::call::tables;
use convert::classify::sql_writes;
use convert::fingerprint::fingerprint;
// foldhash, not SipHash: a lookup per call (see docs/analysis.md).
use foldhash::HashMap;
use std::sync::Arc;

/// Entries kept per cache before it is emptied.
pub const MAX_CACHED: usize = 4096;

/// One statement's class, shared by every call of it.
#[derive(Debug)]
pub struct Statement {
    /// Its fingerprint ([`convert::fingerprint`]).
    pub key: Arc<str>,
    /// It modifies data ([`convert::classify::sql_writes`]).
    pub write: bool,
    /// Tables it names, in order, lower case ([`tables`]).
    pub tables: Vec<String>,
}

/// The two caches.
pub struct Statements {
    by_text: HashMap<Box<str>, Arc<Statement>>,
    by_fingerprint: HashMap<Arc<str>, Arc<Statement>>,
    /// The key of an exchange with no statement (startup, sync):
    /// `(session)`, as [`convert::call_key::report_key`] names it.
    pub session: Arc<str>,
}

impl Default for Statements {
    fn default() -> Statements {
        Statements { by_text: HashMap::default(), by_fingerprint: HashMap::default(), session: "(session)".into() }
    }
}

impl Statements {
    /// The class of statement `sql`.
    pub fn get(&mut self, sql: &str) -> Arc<Statement> {
        if let Some(s) = self.by_text.get(sql) {
            return s.clone();
        }
        let key = fingerprint(sql);
        let s = match self.by_fingerprint.get(key.as_str()) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Statement { write: sql_writes(&key), tables: tables(&key), key: key.into() });
                bounded_insert(&mut self.by_fingerprint, s.key.clone(), s.clone());
                s
            }
        };
        bounded_insert(&mut self.by_text, sql.into(), s.clone());
        s
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(k, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_shared_and_read_from_the_fingerprint() {
        let mut s = Statements::default();
        let a = s.get("UPDATE pgbench_tellers SET tbalance = tbalance + 4 WHERE tid = 8;");
        let b = s.get("update pgbench_tellers set tbalance = tbalance + -17 where tid = 2");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a.key, "update pgbench_tellers set tbalance = tbalance + ? where tid = ?");
        assert!(a.write);
        assert_eq!(a.tables, ["pgbench_tellers"]);
        // Literals name no table and make no write.
        let c = s.get("/* from x */ SELECT 'insert into y' FROM t");
        assert_eq!((c.write, c.tables.as_slice()), (false, ["t".to_owned()].as_slice()));
        assert!(Arc::ptr_eq(&c, &s.get("/* from x */ SELECT 'insert into y' FROM t")));
    }

    #[test]
    fn caches_stay_bounded() {
        let mut s = Statements::default();
        for i in 0..3 * MAX_CACHED {
            s.get(&format!("select * from t{i}"));
        }
        assert!(s.by_text.len() <= MAX_CACHED && s.by_fingerprint.len() <= MAX_CACHED);
    }
}
