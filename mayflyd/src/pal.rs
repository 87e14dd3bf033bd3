//! The activity log (PAL): every event goes to `tracing` and to subscribers.
//!
//! The driver owns the [`Pal`], so emitting takes no lock: the event is
//! logged, kept in a bounded ring (what `mayflyctl events` shows), and sent
//! on a broadcast channel. A subscriber that falls behind loses the oldest
//! events and is told how many (tokio's broadcast never makes the sender
//! wait), so a slow reader never slows the daemon.

use std::collections::VecDeque;

use mayfly_protocol::{Activity, ActivityRecord, Timestamp};
use tokio::sync::broadcast;

/// How many recent events `events` shows, and how far a follower may lag
/// before it misses some.
pub const RING_CAPACITY: usize = 1024;

/// The activity log.
#[derive(Debug)]
pub struct Pal {
    /// The most recent events, oldest first.
    ring: VecDeque<ActivityRecord>,
    /// The next sequence number.
    next_seq: u64,
    /// Live followers.
    tx: broadcast::Sender<ActivityRecord>,
}

impl Default for Pal {
    fn default() -> Self {
        Self::new()
    }
}

impl Pal {
    /// An empty log.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(RING_CAPACITY);
        Self {
            ring: VecDeque::with_capacity(RING_CAPACITY),
            next_seq: 1,
            tx,
        }
    }

    /// Records an event: to tracing, the ring and every follower.
    pub fn emit(&mut self, event: Activity) {
        let record = ActivityRecord {
            seq: self.next_seq,
            at: Timestamp::now(),
            event,
        };
        self.next_seq += 1;
        if tracing::enabled!(tracing::Level::INFO) {
            let fields = mayfly_protocol::json::activity_json_string(&record);
            tracing::info!(target: "mayflyd::pal", event = record.event.name(), %fields);
        }
        if self.ring.len() == RING_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(record.clone());
        // No followers is not an error.
        let _ = self.tx.send(record);
    }

    /// The recent events and a receiver for every later one, with nothing
    /// lost or repeated between the two.
    pub fn subscribe(&self) -> (Vec<ActivityRecord>, broadcast::Receiver<ActivityRecord>) {
        (self.ring.iter().cloned().collect(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dummy event.
    fn ev(n: u32) -> Activity {
        Activity::SystemTaskStart {
            name: format!("t{n}"),
            priority: 0,
        }
    }

    #[test]
    fn ring_keeps_the_most_recent_and_sequence_numbers_grow() {
        let mut pal = Pal::new();
        for n in 0..(RING_CAPACITY as u32 + 10) {
            pal.emit(ev(n));
        }
        let (recent, _) = pal.subscribe();
        assert_eq!(recent.len(), RING_CAPACITY);
        assert_eq!(recent[0].seq, 11);
        assert_eq!(recent.last().unwrap().seq, RING_CAPACITY as u64 + 10);
    }

    #[test]
    fn a_slow_follower_is_told_what_it_missed_and_never_blocks_emit() {
        let mut pal = Pal::new();
        let (_, mut rx) = pal.subscribe();
        for n in 0..(RING_CAPACITY as u32 + 5) {
            pal.emit(ev(n));
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(missed)) => assert_eq!(missed, 5),
            other => panic!("expected a lag report, got {other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap().seq, 6);
    }

    #[test]
    fn subscribe_then_emit_reaches_the_follower_once() {
        let mut pal = Pal::new();
        pal.emit(ev(1));
        let (recent, mut rx) = pal.subscribe();
        pal.emit(ev(2));
        assert_eq!(recent.len(), 1);
        assert_eq!(rx.try_recv().unwrap().seq, 2);
        assert!(rx.try_recv().is_err());
    }
}
