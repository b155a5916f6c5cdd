//! Requests to one broker leave in the order their batches were taken from the queues, though
//! each is sent from its own task: with several batches of a partition in flight, a later one
//! must never reach the wire first.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Turns {
    lines: Mutex<HashMap<i32, Line>>,
    changed: Notify,
}

/// One broker's queue of tickets.
#[derive(Default)]
struct Line {
    next: u64,
    serving: u64,
    /// Tickets given up before their turn came (their task stopped): skipped when reached.
    given_up: BTreeSet<u64>,
}

/// A place in a broker's line; ends (letting the next one go) when done or dropped.
pub struct Turn {
    turns: Arc<Turns>,
    broker: i32,
    ticket: u64,
    ended: bool,
}

impl Turns {
    /// The next place in `broker`'s line. Take places in the order the requests must go.
    pub fn take(self: &Arc<Self>, broker: i32) -> Turn {
        let mut lines = self.lines.lock().unwrap();
        let line = lines.entry(broker).or_default();
        let ticket = line.next;
        line.next += 1;
        Turn {
            turns: self.clone(),
            broker,
            ticket,
            ended: false,
        }
    }

    fn serving(&self, broker: i32) -> u64 {
        self.lines
            .lock()
            .unwrap()
            .get(&broker)
            .map_or(0, |l| l.serving)
    }
}

impl Turn {
    /// Waits until every earlier place in the line has ended.
    pub async fn wait(&self) {
        loop {
            let changed = self.turns.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.turns.serving(self.broker) == self.ticket {
                return;
            }
            changed.await;
        }
    }

    /// The request is written (or will not be): the next one may go.
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut lines = self.turns.lines.lock().unwrap();
        let line = lines.entry(self.broker).or_default();
        if line.serving == self.ticket {
            line.serving += 1;
            while line.given_up.remove(&line.serving) {
                line.serving += 1;
            }
        } else {
            line.given_up.insert(self.ticket);
        }
        drop(lines);
        self.turns.changed.notify_waiters();
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn places_go_in_order_and_a_dropped_one_is_skipped() {
        crate::kafka::runtime::block_on(async {
            let turns = Arc::new(Turns::default());
            let (a, b, c) = (turns.take(1), turns.take(1), turns.take(1));
            let other = turns.take(2);
            let order = Arc::new(Mutex::new(Vec::new()));
            let wait_c = {
                let order = order.clone();
                tokio::spawn(async move {
                    c.wait().await;
                    order.lock().unwrap().push('c');
                    c.end();
                })
            };
            // Another broker's line does not wait for this one.
            tokio::time::timeout(Duration::from_secs(1), other.wait())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(order.lock().unwrap().is_empty(), "c waits for a and b");
            drop(b); // given up before its turn
            assert!(order.lock().unwrap().is_empty());
            a.wait().await;
            order.lock().unwrap().push('a');
            a.end();
            wait_c.await.unwrap();
            assert_eq!(*order.lock().unwrap(), ['a', 'c']);
        });
    }
}
