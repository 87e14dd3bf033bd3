//! WAL records and segments (`mayflyd/src/wal/format.rs`, `scan.rs`): each
//! record is `len | CRC32 | version | payload`, and recovery scans a whole
//! segment, cutting a torn tail and refusing other damage. The payloads are
//! the daemon's events (`journal::decode_event`).
//!
//! The raw half scans the bytes as a segment file (numbered as its header
//! claims, so a good header passes) and decodes each record it delivers as
//! an event. Asserted: nothing panics; the scan never claims more than the
//! file, and a bad tail starts where the good records end; with a good header, the delivered records account for exactly the
//! bytes up to `valid_len`; an event that decodes re-encodes to itself.
//!
//! The structured half builds a segment from events made with `arbitrary`,
//! written as the log writes them, then damages it in one of the ways a
//! crash or a disk does (cut it anywhere, flip bits of one byte, reserve
//! zeros after it, append bytes). Asserted:
//! - undamaged, the scan delivers every event, in order, and each decodes
//!   to the event written (`decode(encode(x)) == x` through the log);
//! - cut: the records wholly before the cut and no others, and the cut
//!   record is a torn tail (or reserved zeros), never damage;
//! - one byte flipped: exactly the records before the damaged one (the
//!   CRC covers length, version and payload), and the scan does not end
//!   clean; a flip in the segment header is damage, not a torn tail;
//! - zeros reserved after the records: every record, ending `Preallocated`;
//! - bytes appended: every record first.

use arbitrary::Arbitrary;
use mayflyd::core::{EVENT_FORMAT, Event};
use mayflyd::journal::{decode_event, encode_event};
use mayflyd::wal::fuzzing::{
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, SegmentEnding, SegmentReport, claimed_seq,
    encode_record, scan_segment, segment_header,
};

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    raw(data);
    if let Some(built) = crate::structured::<Built>(data) {
        built.check();
    }
}

/// The raw half: `data` is a segment file.
fn raw(data: &[u8]) {
    let report = scan_segment(data, claimed_seq(data));
    let len = data.len() as u64;
    assert!(report.valid_len <= len, "valid_len past end of file");
    match &report.end {
        SegmentEnding::BadTail { offset, end, .. } => {
            assert_eq!(
                *offset, report.valid_len,
                "a bad tail starts where good records end"
            );
            assert!(*end <= len, "bad tail past end of file");
        }
        SegmentEnding::Damaged {
            offset,
            unknown_version,
        } => {
            if report.valid_len == 0 {
                // The segment header: its magic, CRC, version or number.
                assert!(
                    *offset < SEGMENT_HEADER_BYTES as u64,
                    "header damage at {offset}"
                );
            } else {
                // Past the header, only a record of a foreign version (with
                // a valid CRC) is damage rather than a bad tail.
                assert!(
                    unknown_version.is_some(),
                    "damage past the header: {report:?}"
                );
                assert_eq!(*offset, report.valid_len);
            }
        }
        SegmentEnding::Clean => assert_eq!(report.valid_len, len, "clean but bytes left"),
        SegmentEnding::Preallocated => {
            assert!(data[report.valid_len as usize..].iter().all(|&b| b == 0));
        }
    }
    if report.valid_len >= SEGMENT_HEADER_BYTES as u64 {
        let framed: u64 = report
            .records
            .iter()
            .map(|(_, payload)| (RECORD_HEADER_BYTES + payload.len()) as u64)
            .sum();
        assert_eq!(
            SEGMENT_HEADER_BYTES as u64 + framed,
            report.valid_len,
            "the delivered records do not add up to valid_len"
        );
    } else {
        assert!(report.records.is_empty(), "records from a bad header");
    }
    for (format, payload) in &report.records {
        if let Ok(event) = decode_event(*format, payload) {
            let again = decode_event(EVENT_FORMAT, &encode_event(&event))
                .expect("a re-encoded event decodes");
            assert_eq!(again, event, "decode(encode(x)) != x");
        }
    }
}

/// A segment written by the log, and what befalls it.
#[derive(Debug, Arbitrary)]
struct Built {
    /// The segment's number.
    seq: u64,
    /// The events, one record each.
    events: Vec<Event>,
    /// What happens to the file.
    damage: Damage,
}

/// What a crash or a disk does to a segment.
#[derive(Debug, Arbitrary)]
enum Damage {
    /// Nothing.
    None,
    /// The file ends at this offset (taken modulo its length).
    Cut(u32),
    /// The byte at this offset (modulo the length) is XORed with the mask
    /// (a zero mask becomes 1, so the byte changes).
    Flip(u32, u8),
    /// This many zero bytes (at least one) are reserved after the records.
    Zeros(u16),
    /// These bytes follow the records.
    Append(Vec<u8>),
}

impl Built {
    /// Writes, damages and scans the segment, and checks the verdict.
    fn check(self) {
        let payloads: Vec<(u8, Vec<u8>)> = self
            .events
            .iter()
            .map(|event| (EVENT_FORMAT, encode_event(event)))
            .collect();
        let mut file = segment_header(self.seq);
        // Where each record starts, and the end of the last one.
        let mut starts = Vec::new();
        for (format, payload) in &payloads {
            starts.push(file.len());
            file.extend_from_slice(&encode_record(*format, payload));
        }
        let end_of_records = file.len();
        match self.damage {
            Damage::None => {
                let report = scan_segment(&file, self.seq);
                assert_eq!(report.end, SegmentEnding::Clean);
                assert_eq!(report.valid_len, file.len() as u64);
                assert_eq!(report.records, payloads);
                for ((format, payload), event) in report.records.iter().zip(&self.events) {
                    let back = decode_event(*format, payload).expect("a logged event decodes");
                    assert_eq!(&back, event, "decode(encode(x)) != x through the log");
                }
            }
            Damage::Cut(at) => {
                let cut = at as usize % (file.len() + 1);
                file.truncate(cut);
                let report = scan_segment(&file, self.seq);
                if cut < SEGMENT_HEADER_BYTES {
                    assert!(report.records.is_empty());
                    assert!(matches!(
                        report.end,
                        SegmentEnding::BadTail { torn: true, .. }
                    ));
                    return;
                }
                let whole = starts
                    .iter()
                    .zip(starts.iter().skip(1).chain([&end_of_records]))
                    .take_while(|(_, end)| **end <= cut)
                    .count();
                assert_eq!(report.records, payloads[..whole], "cut at {cut}");
                let boundary = starts.get(whole).copied().unwrap_or(end_of_records);
                assert_eq!(report.valid_len, boundary as u64, "cut at {cut}");
                match report.end {
                    SegmentEnding::Clean => assert_eq!(boundary, cut),
                    SegmentEnding::Preallocated => {
                        assert!(file[boundary..].iter().all(|&b| b == 0))
                    }
                    SegmentEnding::BadTail { torn, .. } => {
                        assert!(torn, "a cut record is not seen as torn (cut at {cut})")
                    }
                    SegmentEnding::Damaged { .. } => {
                        panic!("a cut is seen as damage (cut at {cut})")
                    }
                }
            }
            Damage::Flip(at, mask) => {
                let at = at as usize % file.len();
                file[at] ^= mask.max(1);
                let report = scan_segment(&file, self.seq);
                if at < SEGMENT_HEADER_BYTES {
                    assert!(report.records.is_empty());
                    assert!(
                        matches!(report.end, SegmentEnding::Damaged { .. }),
                        "a bad segment header is not damage: {:?}",
                        report.end
                    );
                    return;
                }
                let hit = starts.iter().take_while(|&&s| s <= at).count() - 1;
                assert_eq!(report.records, payloads[..hit], "flip at {at}");
                assert_eq!(report.valid_len, starts[hit] as u64, "flip at {at}");
                assert_ne!(report.end, SegmentEnding::Clean, "flip at {at} undetected");
            }
            Damage::Zeros(n) => {
                file.resize(file.len() + usize::from(n.max(1)), 0);
                let report = scan_segment(&file, self.seq);
                assert_eq!(report.records, payloads);
                assert_eq!(report.valid_len, end_of_records as u64);
                assert_eq!(report.end, SegmentEnding::Preallocated);
            }
            Damage::Append(tail) => {
                file.extend_from_slice(&tail);
                let report: SegmentReport = scan_segment(&file, self.seq);
                assert!(
                    report.records.starts_with(&payloads),
                    "lost records before the tail"
                );
                assert!(report.valid_len >= end_of_records as u64);
            }
        }
    }
}
