//! The commit pipeline: group commit, without I/O.
//!
//! The driver applies a batch of events and hands their records to the
//! journal as one *group*, with everything that must wait for them: the
//! replies to the clients who asked (held until the group is durable), what
//! the activity log will tell, and the core's actions (spawns, signals).
//! This module keeps the books of that: which groups are out, which ticket
//! each write has, which facts are not yet durable, when a snapshot is due.
//! It does no I/O: [`Pipeline::commit`] returns the [`Write`] for the caller
//! to send, and the groups the caller may now release; acknowledgements come
//! back through [`Pipeline::on_ack`]. So it is tested like the core, by its
//! own unit tests, with no journal and no runtime.
//!
//! The rules (see `docs/durability.md`):
//! - groups are released strictly in order;
//! - a group holding a client's change asks for an fsync and is released
//!   only once the journal acknowledges it (*pipelined*: the driver goes on
//!   with the next batch meanwhile);
//! - a group of the daemon's own facts is written without an fsync and
//!   released as soon as the groups before it are (*eager* release);
//! - a group of facts whose held replies tell of them (a `wait` told of a
//!   job's end) asks for an fsync for those replies alone: its effects and
//!   activity go out as a fact group's do, its replies once it is durable
//!   (*split* release). So a waiting client never delays the next start by
//!   an fsync;
//! - after a failed write, every group not yet released fails; the facts
//!   already acted on since the last fsync are handed back to be applied and
//!   logged again ([`Pipeline::fail`]).

use std::collections::VecDeque;

use mayfly_protocol::Activity;

use crate::core::{Action, Event};
use crate::journal::AckInfo;
use crate::service::ServiceError;

/// How a held reply learns what became of its group.
pub enum Delivery<'a> {
    /// The group is durable (or needed no fsync): send what was prepared.
    Durable,
    /// The group's write failed: a reply that acknowledges a change sends
    /// this error instead; a reply that only reports sends what it has.
    Failed(&'a ServiceError),
}

/// A reply held until its group is released: called once, with the
/// group's fate.
pub struct Held(Box<dyn FnOnce(Delivery<'_>) + Send>);

impl Held {
    /// A reply that `deliver` sends once the group's fate is known.
    pub fn new(deliver: impl FnOnce(Delivery<'_>) + Send + 'static) -> Self {
        Self(Box::new(deliver))
    }

    /// Sends the reply.
    pub fn deliver(self, delivery: Delivery<'_>) {
        (self.0)(delivery);
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

/// One write for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Echoed in the acknowledgement.
    pub ticket: u64,
    /// The encoded events.
    pub records: Vec<Vec<u8>>,
    /// Whether the journal must fsync (and acknowledge).
    pub sync: bool,
    /// With `sync`: whether the fsync may wait a little to be shared
    /// (`crate::journal::SYNC_SOON`): only replies wait for it.
    pub soon: bool,
}

impl Write {
    /// The journal command that carries it out.
    pub fn into_cmd(self) -> crate::journal::WalCmd {
        crate::journal::WalCmd::Write {
            ticket: self.ticket,
            records: self.records,
            sync: self.sync,
            soon: self.soon,
        }
    }
}

/// One commit group: a batch's records and everything waiting on them.
///
/// What [`Pipeline`] hands back for release is a group too, or a part of
/// one: a group released in two steps (see the module documentation)
/// comes back first with its activity and actions, then with its replies.
#[derive(Debug)]
pub struct Group {
    /// The journal ticket, or `None` when the group wrote nothing.
    ticket: Option<u64>,
    /// True while the group waits for its fsync to be acknowledged.
    awaits_ack: bool,
    /// True when its effects and activity wait for the fsync too (a
    /// client's change), not only its replies.
    gated: bool,
    /// True once its effects and activity were handed out.
    effects_out: bool,
    /// The events it logged.
    pub events: Vec<Event>,
    /// Replies to release.
    pub held: Vec<Held>,
    /// Effects to carry out.
    pub actions: Vec<Action>,
    /// What the activity log tells of its events.
    pub activity: Vec<Activity>,
}

/// What an acknowledgement changed.
#[derive(Debug)]
pub enum Acked {
    /// Nothing: it belonged to writes a storage failure accounted for.
    Stale,
    /// A snapshot was written (`Ok`) or not (`Err` with the reason).
    Snapshot(Result<(), String>),
    /// A write is durable; these groups may now be released, in order.
    Released(Vec<Group>),
    /// A write failed: call [`Pipeline::fail`].
    Failed(String),
}

/// What a storage failure leaves to the caller.
#[derive(Debug)]
pub struct Failure {
    /// Facts of released groups that were not yet durable: they happened
    /// (and were told) and must be applied and logged again.
    pub told: Vec<Event>,
    /// The groups that were not released: their clients hear of the
    /// failure; the facts among their events happened too, untold.
    pub failed: Vec<Group>,
}

/// The pipeline's state: see the module documentation.
#[derive(Debug, Default)]
pub struct Pipeline {
    /// This batch's events, applied but not yet handed over.
    batch_events: Vec<Event>,
    /// Their records.
    batch_records: Vec<Vec<u8>>,
    /// True when a client waits on this batch: it must be fsynced.
    batch_sync: bool,
    /// True when the batch's effects wait for that fsync too.
    batch_gated: bool,
    /// Replies held for this batch.
    batch_held: Vec<Held>,
    /// What this batch's events will tell the activity log.
    batch_activity: Vec<Activity>,
    /// Groups handed over and not yet released, oldest first.
    groups: VecDeque<Group>,
    /// The next journal ticket.
    next_ticket: u64,
    /// Events of released groups not yet durable, by ticket (ascending).
    since_durable: VecDeque<(u64, Vec<Event>)>,
    /// The latest write sent without an fsync, until one covers it.
    last_unsynced: Option<u64>,
    /// Acknowledgements of tickets below this are stale.
    failed_before: u64,
    /// The ticket of the snapshot being written, if one is.
    snapshot_ticket: Option<u64>,
    /// Log bytes since the last snapshot, as last reported.
    bytes_since_snapshot: u64,
    /// The size of the last snapshot.
    last_snapshot_bytes: u64,
}

impl Pipeline {
    /// A pipeline after a recovery whose last snapshot was `snapshot_bytes`
    /// big, with `log_bytes` of log replayed after it.
    pub fn new(snapshot_bytes: u64, log_bytes: u64) -> Self {
        Self {
            last_snapshot_bytes: snapshot_bytes,
            bytes_since_snapshot: log_bytes,
            ..Self::default()
        }
    }

    /// Adds an applied event and its record to the batch.
    pub fn record(&mut self, event: Event, record: Vec<u8>) {
        self.batch_records.push(record);
        self.batch_events.push(event);
    }

    /// Marks the batch as one a client waits on: it will be fsynced, and
    /// nothing of it (reply, activity, action) is released before that.
    pub fn needs_sync(&mut self) {
        self.batch_sync = true;
        self.batch_gated = true;
    }

    /// Marks the batch as one whose held replies tell of its facts (a job's
    /// end, told to a `wait`): it will be fsynced and those replies held
    /// until then, while its activity and actions are released as a fact
    /// group's are. Only for what would otherwise be released eagerly: the
    /// daemon's own facts and what the core decides from them, on which it
    /// acts before they are durable anyway.
    pub fn needs_sync_for_replies(&mut self) {
        self.batch_sync = true;
    }

    /// Holds a reply until the batch is released.
    pub fn hold(&mut self, held: Held) {
        self.batch_held.push(held);
    }

    /// Adds what the activity log tells once the batch is released.
    pub fn tell(&mut self, activity: Activity) {
        self.batch_activity.push(activity);
    }

    /// True when the batch has nothing in it.
    pub fn batch_is_empty(&self) -> bool {
        self.batch_events.is_empty() && self.batch_held.is_empty()
    }

    /// Closes the batch as a group with `actions`: returns the write to
    /// send (if the group wrote anything or must be synced) and the groups
    /// now ready for release, in order.
    pub fn commit(&mut self, actions: Vec<Action>) -> (Option<Write>, Vec<Group>) {
        if self.batch_is_empty() && actions.is_empty() && self.batch_activity.is_empty() {
            return (None, Vec::new());
        }
        let events = std::mem::take(&mut self.batch_events);
        let records = std::mem::take(&mut self.batch_records);
        let sync = std::mem::take(&mut self.batch_sync);
        let gated = std::mem::take(&mut self.batch_gated);
        let mut write = (!records.is_empty() || sync).then(|| self.write(records, sync));
        if let Some(write) = &mut write {
            write.soon = sync && !gated;
        }
        self.groups.push_back(Group {
            ticket: write.as_ref().map(|w| w.ticket),
            awaits_ack: sync,
            gated,
            effects_out: false,
            events,
            held: std::mem::take(&mut self.batch_held),
            actions,
            activity: std::mem::take(&mut self.batch_activity),
        });
        (write, self.take_ready())
    }

    /// A write of `records` under the next ticket.
    fn write(&mut self, records: Vec<Vec<u8>>, sync: bool) -> Write {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if !sync {
            self.last_unsynced = Some(ticket);
        }
        Write {
            ticket,
            records,
            sync,
            soon: false,
        }
    }

    /// The WAL flusher's tick: an fsync if something written is not yet
    /// durable.
    pub fn flush(&mut self) -> Option<Write> {
        self.last_unsynced
            .is_some()
            .then(|| self.write(Vec::new(), true))
    }

    /// Takes what may be released now, in order: first the activity and
    /// actions of every group up to the first one whose effects wait for
    /// its fsync (noting their events as acted on and not yet durable),
    /// then the replies of the groups at the front that wait for nothing.
    fn take_ready(&mut self) -> Vec<Group> {
        let mut ready = Vec::new();
        for group in &mut self.groups {
            if group.effects_out {
                continue;
            }
            if group.awaits_ack && group.gated {
                break;
            }
            group.effects_out = true;
            let events = std::mem::take(&mut group.events);
            if let Some(ticket) = group.ticket
                && !events.is_empty()
            {
                self.since_durable.push_back((ticket, events));
            }
            ready.push(Group {
                ticket: group.ticket,
                awaits_ack: false,
                gated: false,
                effects_out: true,
                events: Vec::new(),
                held: Vec::new(),
                actions: std::mem::take(&mut group.actions),
                activity: std::mem::take(&mut group.activity),
            });
        }
        while self
            .groups
            .front()
            .is_some_and(|g| g.effects_out && !g.awaits_ack)
        {
            if let Some(group) = self.groups.pop_front()
                && !group.held.is_empty()
            {
                ready.push(group);
            }
        }
        ready
    }

    /// Forgets the acted-on events that tickets up to `ticket` wrote.
    fn durable_through(&mut self, ticket: u64) {
        while self
            .since_durable
            .front()
            .is_some_and(|(t, _)| *t <= ticket)
        {
            self.since_durable.pop_front();
        }
        if self.last_unsynced.is_some_and(|t| t <= ticket) {
            self.last_unsynced = None;
        }
    }

    /// Takes the journal's answer to `ticket`.
    pub fn on_ack(&mut self, ticket: u64, result: Result<AckInfo, String>) -> Acked {
        if ticket < self.failed_before {
            return Acked::Stale;
        }
        if self.snapshot_ticket == Some(ticket) {
            self.snapshot_ticket = None;
            return Acked::Snapshot(result.map(|info| {
                // Everything sent before the snapshot is covered by it.
                if let Some(before) = ticket.checked_sub(1) {
                    self.durable_through(before);
                }
                self.bytes_since_snapshot = info.bytes_since_snapshot;
                self.last_snapshot_bytes = info.snapshot_bytes;
            }));
        }
        match result {
            Ok(info) => {
                // Acks come in ticket order, and every group before the
                // acknowledged one was released or acknowledged already.
                if let Some(group) = self.groups.iter_mut().find(|g| g.ticket == Some(ticket)) {
                    group.awaits_ack = false;
                }
                let ready = self.take_ready();
                if info.synced {
                    self.durable_through(ticket);
                }
                self.bytes_since_snapshot = info.bytes_since_snapshot;
                Acked::Released(ready)
            }
            Err(e) => Acked::Failed(e),
        }
    }

    /// True when a snapshot is due: none is being written, no applied event
    /// waits to be handed over (it would be in the snapshot *and* logged
    /// after it), and the log has grown past `min_bytes` or the last
    /// snapshot's size, whichever is larger (so the cost of snapshots per
    /// logged byte stays constant however many jobs are held).
    pub fn snapshot_due(&self, min_bytes: u64) -> bool {
        self.snapshot_ticket.is_none()
            && self.batch_events.is_empty()
            && self.bytes_since_snapshot >= min_bytes.max(self.last_snapshot_bytes)
    }

    /// Takes a ticket for a snapshot being sent; until it is acknowledged
    /// no other one starts.
    pub fn start_snapshot(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.snapshot_ticket = Some(ticket);
        self.bytes_since_snapshot = 0;
        ticket
    }

    /// A write failed: every write sent so far was dropped or is accounted
    /// for here. Returns the facts to apply again and the groups that fail.
    pub fn fail(&mut self) -> Failure {
        self.failed_before = self.next_ticket;
        self.snapshot_ticket = None;
        let told = std::mem::take(&mut self.since_durable)
            .into_iter()
            .flat_map(|(_, events)| events)
            .collect();
        Failure {
            told,
            failed: self.groups.drain(..).collect(),
        }
    }

    /// After a storage failure whose rebuild could not even re-read the log:
    /// keeps `facts` under the next ticket, so that only a later fsync
    /// (which the journal refuses until a rebuild works) clears them.
    pub fn keep_facts(&mut self, facts: Vec<Event>) {
        self.since_durable.push_back((self.next_ticket, facts));
    }

    /// Sends the facts applied again after a rebuild: a write without an
    /// fsync, tracked like any acted-on events.
    pub fn relog(&mut self, facts: Vec<Event>, records: Vec<Vec<u8>>) -> Write {
        let write = self.write(records, false);
        self.since_durable.push_back((write.ticket, facts));
        write
    }

    /// Groups handed over and not yet released.
    pub fn groups_out(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use mayfly_protocol::{ErrorKind, JobId, Timestamp};

    use super::*;

    /// An event for job `n`.
    fn ev(n: u64) -> Event {
        Event::Cancelled {
            id: JobId(n),
            at: Timestamp(n),
        }
    }

    /// A successful acknowledgement.
    fn ok(synced: bool) -> Result<AckInfo, String> {
        Ok(AckInfo {
            synced,
            bytes_since_snapshot: 10,
            fsync: None,
            snapshot_bytes: 0,
        })
    }

    /// A held reply that writes what it was told into `log`.
    fn held(log: &Arc<Mutex<Vec<String>>>, name: &'static str) -> Held {
        let log = log.clone();
        Held::new(move |d: Delivery<'_>| {
            let said = match d {
                Delivery::Durable => format!("{name}: ok"),
                Delivery::Failed(e) => format!("{name}: {}", e.message),
            };
            log.lock().unwrap().push(said);
        })
    }

    /// Releases `groups`: delivers their held replies as durable.
    fn release(groups: Vec<Group>) -> usize {
        let n = groups.len();
        for g in groups {
            for h in g.held {
                h.deliver(Delivery::Durable);
            }
        }
        n
    }

    #[test]
    fn a_client_change_waits_for_its_fsync_and_the_facts_behind_it_wait_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        p.record(ev(1), vec![1]);
        p.needs_sync();
        p.hold(held(&log, "submit"));
        let (write, ready) = p.commit(Vec::new());
        let write = write.expect("a write");
        assert!(write.sync);
        assert!(ready.is_empty(), "nothing is released before the fsync");
        // A fact logged meanwhile is not fsynced, and waits behind it.
        p.record(ev(2), vec![2]);
        let (fact, ready) = p.commit(vec![Action::RemoveOutput { id: JobId(2) }]);
        assert!(!fact.expect("a write").sync);
        assert!(ready.is_empty(), "groups are released in order");
        match p.on_ack(write.ticket, ok(true)) {
            Acked::Released(groups) => {
                // Both groups' effects, then the submit's reply.
                assert_eq!(groups.len(), 3);
                assert_eq!(groups[1].actions.len(), 1);
                assert_eq!(groups[2].held.len(), 1);
                release(groups);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*log.lock().unwrap(), ["submit: ok"]);
        // The fact is not durable yet: the flusher's tick syncs it.
        let flush = p.flush().expect("an fsync is due");
        assert!(flush.sync && flush.records.is_empty());
        assert!(matches!(p.on_ack(flush.ticket, ok(true)), Acked::Released(g) if g.is_empty()));
        assert!(p.flush().is_none(), "nothing left to sync");
    }

    #[test]
    fn a_group_of_facts_alone_is_released_at_once() {
        let mut p = Pipeline::default();
        p.record(ev(1), vec![1]);
        let (write, ready) = p.commit(Vec::new());
        assert!(!write.expect("a write").sync);
        assert_eq!(ready.len(), 1);
        // Nothing to write and nothing held: no group at all.
        let (write, ready) = p.commit(Vec::new());
        assert!(write.is_none() && ready.is_empty());
    }

    #[test]
    fn a_group_synced_for_its_replies_acts_at_once_and_replies_once_durable() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        // A job's end, told to a wait, and the start it frees a slot for.
        p.record(ev(1), vec![1]);
        p.needs_sync_for_replies();
        p.hold(held(&log, "wait"));
        let (write, ready) = p.commit(vec![Action::RemoveOutput { id: JobId(1) }]);
        let write = write.expect("a write");
        assert!(write.sync, "the reply needs the fsync");
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].actions.len(), 1, "the action goes at once");
        assert!(ready[0].held.is_empty(), "the reply does not");
        // A client's change behind it waits for its own fsync; a fact
        // behind that waits in order.
        p.record(ev(2), vec![2]);
        p.needs_sync();
        p.hold(held(&log, "cancel"));
        let (second, ready) = p.commit(vec![Action::RemoveOutput { id: JobId(2) }]);
        assert!(ready.is_empty());
        p.record(ev(3), vec![3]);
        let (_, ready) = p.commit(vec![Action::RemoveOutput { id: JobId(3) }]);
        assert!(ready.is_empty(), "effects are released in order");
        match p.on_ack(write.ticket, ok(true)) {
            Acked::Released(groups) => assert_eq!(release(groups), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(*log.lock().unwrap(), ["wait: ok"]);
        match p.on_ack(second.expect("a write").ticket, ok(true)) {
            Acked::Released(groups) => {
                let actions: Vec<_> = groups.iter().flat_map(|g| &g.actions).collect();
                assert_eq!(actions.len(), 2);
                release(groups);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*log.lock().unwrap(), ["wait: ok", "cancel: ok"]);
        assert_eq!(p.groups_out(), 0);
    }

    #[test]
    fn a_failed_write_hands_back_the_facts_of_a_group_that_acted_early() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        p.record(ev(1), vec![1]);
        p.needs_sync_for_replies();
        p.hold(held(&log, "wait"));
        let (write, ready) = p.commit(Vec::new());
        release(ready);
        assert!(matches!(
            p.on_ack(write.expect("a write").ticket, Err("disk full".into())),
            Acked::Failed(_)
        ));
        let failure = p.fail();
        assert_eq!(failure.told, vec![ev(1)], "it was acted on: told");
        assert_eq!(failure.failed.len(), 1);
        assert!(failure.failed[0].events.is_empty(), "not counted twice");
        let error = ServiceError::new(ErrorKind::Storage, "disk full");
        for group in failure.failed {
            for h in group.held {
                h.deliver(Delivery::Failed(&error));
            }
        }
        assert_eq!(*log.lock().unwrap(), ["wait: disk full"]);
    }

    #[test]
    fn a_failed_write_fails_unreleased_groups_and_hands_back_released_facts() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        p.record(ev(1), vec![1]);
        let (first, ready) = p.commit(Vec::new());
        assert_eq!(release(ready), 1, "facts are released eagerly");
        p.record(ev(2), vec![2]);
        p.needs_sync();
        p.hold(held(&log, "cancel"));
        let (second, _) = p.commit(Vec::new());
        assert!(matches!(
            p.on_ack(second.expect("a write").ticket, Err("disk full".into())),
            Acked::Failed(_)
        ));
        let failure = p.fail();
        assert_eq!(
            failure.told,
            vec![ev(1)],
            "the released fact is handed back"
        );
        assert_eq!(failure.failed.len(), 1);
        let error = ServiceError::new(ErrorKind::Storage, "disk full");
        for group in failure.failed {
            assert_eq!(group.events, vec![ev(2)]);
            for h in group.held {
                h.deliver(Delivery::Failed(&error));
            }
        }
        assert_eq!(*log.lock().unwrap(), ["cancel: disk full"]);
        // Answers to writes sent before the failure are stale.
        assert!(matches!(
            p.on_ack(first.expect("a write").ticket, ok(true)),
            Acked::Stale
        ));
    }

    #[test]
    fn snapshots_wait_for_the_threshold_and_cover_what_was_sent_before() {
        let mut p = Pipeline::new(0, 0);
        assert!(!p.snapshot_due(10));
        p.record(ev(1), vec![1]);
        let (write, ready) = p.commit(Vec::new());
        release(ready);
        assert!(matches!(
            p.on_ack(write.expect("a write").ticket, ok(false)),
            Acked::Released(_)
        ));
        assert!(
            p.snapshot_due(10),
            "10 bytes reported since the last snapshot"
        );
        p.record(ev(2), vec![2]);
        assert!(
            !p.snapshot_due(10),
            "not while an event is applied but unsent"
        );
        let (_, ready) = p.commit(Vec::new());
        release(ready);
        let ticket = p.start_snapshot();
        assert!(!p.snapshot_due(0), "one snapshot at a time");
        let info = AckInfo {
            synced: true,
            bytes_since_snapshot: 0,
            fsync: None,
            snapshot_bytes: 500,
        };
        assert!(matches!(
            p.on_ack(ticket, Ok(info)),
            Acked::Snapshot(Ok(()))
        ));
        assert!(
            p.flush().is_none(),
            "the snapshot covers the unsynced writes"
        );
        assert!(
            !p.snapshot_due(10),
            "the next waits for the last one's size"
        );
    }
}
