//! A ledger of what group members received and committed, with times, for the check that no
//! record is received again after a commit covered it (at-least-once, nothing skipped).

use std::collections::HashMap;

use serde_json::Value as Json;

/// What every member received and committed, with times, for the at-least-once check.
#[derive(Default)]
pub struct Ledger {
    /// (partition, offset, a time no later than the receipt, who)
    pub receipts: Vec<(i64, i64, f64, String)>,
    /// (partition, next offset, a time no earlier than the commit took effect, who)
    pub commits: Vec<(i64, i64, f64, String)>,
}

impl Ledger {
    pub fn add_peer(&mut self, events: &[Json], who: &str) {
        for e in events {
            let Some(t) = e["t"].as_f64() else { continue };
            if e["event"] == "record" {
                let (p, o) = (
                    e["partition"].as_i64().unwrap(),
                    e["offset"].as_i64().unwrap(),
                );
                self.receipts.push((p, o, t, who.into()));
            } else if e["event"] == "committed" {
                for c in e["offsets"].as_array().unwrap() {
                    let (p, next) = (c[1].as_i64().unwrap(), c[2].as_i64().unwrap());
                    self.commits.push((p, next, t, who.into()));
                }
            }
        }
    }

    /// A commit that covered a record and took effect before the record was received means the
    /// record was received again after being committed, or committed before anyone received it.
    /// Generation fencing makes a previous owner's successful commit precede the next owner's
    /// start, so this cannot flag a legitimate redelivery of an uncommitted record.
    pub fn check(&self) -> usize {
        let mut first_covering: HashMap<i64, Vec<(f64, i64, &str)>> = HashMap::new();
        for (p, next, t, who) in &self.commits {
            first_covering.entry(*p).or_default().push((*t, *next, who));
        }
        for v in first_covering.values_mut() {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        let mut times: HashMap<(i64, i64), usize> = HashMap::new();
        for (p, o, t, who) in &self.receipts {
            *times.entry((*p, *o)).or_default() += 1;
            let covering = first_covering
                .get(p)
                .into_iter()
                .flatten()
                .take_while(|(ct, _, _)| ct < t)
                .find(|(_, next, _)| next > o);
            assert!(
                covering.is_none(),
                "partition {p} offset {o} received by {who} at {t:.3} after a commit covered it: {covering:?}"
            );
        }
        times.values().filter(|n| **n > 1).count()
    }
}
