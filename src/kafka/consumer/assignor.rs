//! Partition assignors the group leader runs: range and roundrobin, with the Java client's
//! results for the same members and subscriptions.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::config::Assignor;

/// A member's subscription as the leader sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub topics: Vec<String>,
}

/// member id → topic → partitions.
pub type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// Assigns `partitions` (topic → partition count) among `members`.
pub fn assign(
    kind: Assignor,
    members: &[Member],
    partitions: &BTreeMap<String, i32>,
) -> Assignment {
    let mut out: Assignment = members
        .iter()
        .map(|m| (m.id.clone(), BTreeMap::new()))
        .collect();
    match kind {
        Assignor::Range => {
            for (topic, &count) in partitions {
                let mut subscribers: Vec<&str> = members
                    .iter()
                    .filter(|m| m.topics.iter().any(|t| t == topic))
                    .map(|m| m.id.as_str())
                    .collect();
                subscribers.sort();
                if subscribers.is_empty() {
                    continue;
                }
                let per = count as usize / subscribers.len();
                let extra = count as usize % subscribers.len();
                for (i, id) in subscribers.iter().enumerate() {
                    let start = i * per + i.min(extra);
                    let len = per + usize::from(i < extra);
                    let parts: Vec<i32> = (start..start + len).map(|p| p as i32).collect();
                    if !parts.is_empty() {
                        out.get_mut(*id).unwrap().insert(topic.clone(), parts);
                    }
                }
            }
        }
        Assignor::RoundRobin => {
            let mut ids: Vec<&Member> = members.iter().collect();
            ids.sort_by(|a, b| a.id.cmp(&b.id));
            let mut next = 0usize;
            for (topic, &count) in partitions {
                for p in 0..count {
                    // The next member in circular order that subscribes to this topic.
                    for step in 0..ids.len() {
                        let m = ids[(next + step) % ids.len()];
                        if m.topics.iter().any(|t| t == topic) {
                            out.get_mut(&m.id)
                                .unwrap()
                                .entry(topic.clone())
                                .or_default()
                                .push(p);
                            next = (next + step + 1) % ids.len();
                            break;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Every topic any member subscribes to.
pub fn all_topics(members: &[Member]) -> Vec<String> {
    let set: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    set.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, topics: &[&str]) -> Member {
        Member {
            id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn parts(a: &Assignment, id: &str, t: &str) -> Vec<i32> {
        a[id].get(t).cloned().unwrap_or_default()
    }

    #[test]
    fn range_like_java() {
        let members = [m("c1", &["t1", "t2"]), m("c0", &["t1", "t2"])];
        let p = BTreeMap::from([("t1".to_string(), 3), ("t2".to_string(), 3)]);
        let a = assign(Assignor::Range, &members, &p);
        assert_eq!(parts(&a, "c0", "t1"), [0, 1]);
        assert_eq!(parts(&a, "c1", "t1"), [2]);
        assert_eq!(parts(&a, "c0", "t2"), [0, 1]);
        assert_eq!(parts(&a, "c1", "t2"), [2]);
    }

    #[test]
    fn roundrobin_like_java() {
        let members = [m("c0", &["t1", "t2"]), m("c1", &["t1", "t2"])];
        let p = BTreeMap::from([("t1".to_string(), 3), ("t2".to_string(), 3)]);
        let a = assign(Assignor::RoundRobin, &members, &p);
        assert_eq!(parts(&a, "c0", "t1"), [0, 2]);
        assert_eq!(parts(&a, "c1", "t1"), [1]);
        assert_eq!(parts(&a, "c0", "t2"), [1]);
        assert_eq!(parts(&a, "c1", "t2"), [0, 2]);
    }

    #[test]
    fn every_partition_exactly_once_with_uneven_subscriptions() {
        let members = [m("a", &["x"]), m("b", &["x", "y"]), m("c", &["y"])];
        let p = BTreeMap::from([("x".to_string(), 7), ("y".to_string(), 5)]);
        for kind in [Assignor::Range, Assignor::RoundRobin] {
            let a = assign(kind, &members, &p);
            for (topic, count) in &p {
                let mut seen: Vec<i32> = a
                    .values()
                    .flat_map(|t| t.get(topic).cloned().unwrap_or_default())
                    .collect();
                seen.sort();
                assert_eq!(seen, (0..*count).collect::<Vec<_>>(), "{kind:?} {topic}");
            }
            assert!(
                !a["a"].contains_key("y") && !a["c"].contains_key("x"),
                "{kind:?}"
            );
        }
    }
}
