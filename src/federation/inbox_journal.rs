//! The inbox's journal: every activity the inbox hands its writer is first
//! appended to a file, and the 202 follows that write, not the writer's
//! commit. The writer stores the activity from memory as before; once its
//! transaction is committed the record is no longer needed, and a file
//! whose records are all committed is deleted. A process killed before the
//! commit leaves its records behind, and the next start queues them
//! ([`Journal::open`]) before it answers anything.
//!
//! A record is on the operating system's side once `write` returns: it
//! survives the process (a crash, SIGKILL, an out-of-memory kill), as a
//! SQLite commit does with `synchronous = NORMAL`, which is how the
//! database runs. Neither is flushed to the disk at every activity. A
//! record cut short (the machine lost power in the middle of a write) is
//! recognised by its length and checksum, and it and whatever follows in
//! its file are left out.
//!
//! Records go to numbered files ("segments") of at most [`SEGMENT_BYTES`],
//! so that under a steady stream a file fills, is closed and is deleted
//! once its last record is committed. Each thread that appends (each HTTP
//! worker) writes a segment of its own, outside the journal's lock: the
//! workers never wait for each other's write, and a record cut short by
//! a failed write has nobody else's record after it. A thread's segment
//! stays open while the journal lives, emptied whenever all of it is
//! committed.
//!
//! A directory belongs to one process at a time (a lock on `lock` in
//! it): a second process started on the same directory runs without a
//! journal (its 202s wait for the commit).

use crate::federation::inbox_batch::AcceptedItem;
use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread::ThreadId,
};

/// A segment is closed once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes before a record's payload: its length and its CRC-32.
const HEADER: usize = 8;

/// Largest payload a record may claim; anything longer is damage.
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// The name of a segment's file ends with this.
const SUFFIX: &str = ".journal";

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file of the journal could not be read, written or made.
    #[error("inbox journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Which segment a record went to; handed back once it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// A segment being written by one thread.
struct Writing {
    thread: ThreadId,
    n: u64,
    /// Shared with the thread while it writes, outside the lock.
    file: Arc<File>,
    /// Bytes appended to it, in flight included.
    bytes: u64,
}

/// The journal of one process.
pub struct Journal {
    dir: PathBuf,
    /// Held (and locked) for as long as the journal lives.
    _lock: File,
    state: Mutex<State>,
}

struct State {
    /// The segments being written, one per thread that appends.
    writing: Vec<Writing>,
    /// The number of the next segment made.
    next: u64,
    /// Per segment (a few at most), how many of its records are not
    /// committed yet.
    pending: BTreeMap<u64, usize>,
    /// The segments found at start-up, deleted once their records are
    /// queued ([`Journal::recovered_queued`]).
    recovered: Vec<u64>,
}

impl Journal {
    /// Opens the journal in `dir` (made if missing) and reads what an
    /// earlier process left there. `None` when another process holds the
    /// directory. The files read stay until [`Journal::recovered_queued`].
    pub fn open(dir: &Path) -> Result<Option<(Journal, Vec<AcceptedItem>)>, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        let (found, records) = read_segments(dir)?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            _lock: lock,
            state: Mutex::new(State {
                writing: Vec::new(),
                next: found.last().map_or(1, |n| n + 1),
                pending: BTreeMap::new(),
                recovered: found,
            }),
        };
        Ok(Some((journal, records)))
    }

    /// Deletes the segments [`Journal::open`] read, once their records are
    /// queued in the database.
    pub fn recovered_queued(&self) -> Result<(), JournalError> {
        let recovered = std::mem::take(&mut self.state().recovered);
        for n in recovered {
            let path = segment_path(&self.dir, n);
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// Appends `item`, in one write, unless `limit` records already wait
    /// for their commit (`None`: the writer is that far behind). Once this
    /// returns a ticket the record survives the process; hand the ticket
    /// to [`Journal::committed`] after the commit.
    pub fn append(
        &self,
        item: &AcceptedItem,
        limit: usize,
    ) -> Result<Option<Ticket>, JournalError> {
        let record = encode(item);
        let thread = std::thread::current().id();
        let (n, file) = {
            let mut state = self.state();
            if state.uncommitted() >= limit {
                return Ok(None);
            }
            let writing = self.writing_for(&mut state, thread)?;
            writing.bytes += record.len() as u64;
            let (n, file) = (writing.n, writing.file.clone());
            // Counted before the write: the segment is not emptied under it.
            *state.pending.entry(n).or_default() += 1;
            (n, file)
        };
        // Only this thread writes to this segment.
        if let Err(source) = record.write_to(&file) {
            let mut state = self.state();
            // What was written of the record is left out when it is read,
            // with anything after it: this thread starts another segment.
            state.writing.retain(|w| w.n != n);
            let path = segment_path(&self.dir, n);
            if state.forget(n) {
                let _ = std::fs::remove_file(&path);
            }
            return Err(JournalError::Io { path, source });
        }
        Ok(Some(Ticket(n)))
    }

    /// Records that the activities of `tickets` are committed: a closed
    /// segment left with nothing uncommitted is deleted, and the segment
    /// being written is emptied when all of it is committed.
    pub fn committed(&self, tickets: impl IntoIterator<Item = Ticket>) {
        let mut state = self.state();
        let mut emptied = Vec::new();
        for Ticket(n) in tickets {
            if state.forget(n) {
                emptied.push(n);
            }
        }
        for n in emptied {
            if let Some(writing) = state.writing.iter_mut().find(|w| w.n == n) {
                // Nothing of it is needed any more: start it again. No
                // write is under way: its thread counts a record first.
                let cut = writing.file.set_len(0);
                if let Err(e) = cut {
                    tracing::warn!(error = %e, "inbox journal: cannot empty a segment being written");
                } else {
                    writing.bytes = 0;
                }
            } else {
                let path = segment_path(&self.dir, n);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "inbox journal: cannot delete a committed segment");
                }
            }
        }
    }

    /// How many appended records are not committed yet.
    pub fn uncommitted(&self) -> usize {
        self.state().uncommitted()
    }

    /// The segment `thread` writes: its own, or a new one when it has none
    /// or its own is full. A full one is closed, and deleted now if nothing
    /// in it waits for a commit.
    fn writing_for<'s>(
        &self,
        state: &'s mut State,
        thread: ThreadId,
    ) -> Result<&'s mut Writing, JournalError> {
        let at = state.writing.iter().position(|w| w.thread == thread);
        if let Some(at) = at {
            if state.writing[at].bytes < SEGMENT_BYTES {
                return Ok(&mut state.writing[at]);
            }
            let closed = state.writing.swap_remove(at).n;
            if !state.pending.contains_key(&closed) {
                let _ = std::fs::remove_file(segment_path(&self.dir, closed));
            }
        }
        let n = state.next;
        let path = segment_path(&self.dir, n);
        let file = create_segment(&path).map_err(io_error(&path))?;
        state.next += 1;
        state.writing.push(Writing {
            thread,
            n,
            file: Arc::new(file),
            bytes: 0,
        });
        let last = state.writing.len() - 1;
        Ok(&mut state.writing[last])
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Records appended and not committed yet, in every segment.
    fn uncommitted(&self) -> usize {
        self.pending.values().sum()
    }

    /// Counts one record of segment `n` as no longer pending; true when
    /// none of `n` is left.
    fn forget(&mut self, n: u64) -> bool {
        let Some(pending) = self.pending.get_mut(&n) else {
            return false;
        };
        *pending -= 1;
        if *pending > 0 {
            return false;
        }
        self.pending.remove(&n);
        true
    }
}

/// What the journal in `dir` holds, in order, without taking it or
/// changing anything (what a test looks at after killing a server).
pub fn read(dir: &Path) -> Result<Vec<AcceptedItem>, JournalError> {
    Ok(read_segments(dir)?.1)
}

/// The segments in `dir` and their records.
fn read_segments(dir: &Path) -> Result<(Vec<u64>, Vec<AcceptedItem>), JournalError> {
    let found = segments(dir).map_err(io_error(dir))?;
    let mut records = Vec::new();
    for &n in &found {
        let path = segment_path(dir, n);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(io_error(&path))?;
        let (read, whole) = decode_all(&bytes);
        if !whole {
            tracing::warn!(file = %path.display(), records = read.len(), "inbox journal: a record was cut short; the records before it are kept");
        }
        records.extend(read);
    }
    Ok((found, records))
}

/// Turns an error of the system about `path` into the journal's.
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { path, source }
}

/// The file of segment `n`.
fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}{SUFFIX}"))
}

/// The numbers of the segments in `dir`, in order.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = number {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// A new, empty segment file, opened to append: after it is emptied
/// ([`Journal::committed`]) the next record goes to its start.
fn create_segment(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    file.set_len(0)?;
    Ok(file)
}

/// One record, as the pieces one `writev` writes, nothing copied: the
/// payload's length and CRC-32 (little-endian), then the payload: the lane
/// (0 or 1), the id's and the signer's lengths (u32 LE) and bytes, then
/// the body.
struct Encoded<'a> {
    /// Length, CRC-32, lane and the id's length.
    head: [u8; HEAD],
    ap_id: &'a [u8],
    signer_len: [u8; 4],
    signer: &'a [u8],
    body: &'a [u8],
}

/// Bytes of [`Encoded::head`].
const HEAD: usize = HEADER + 1 + 4;

fn encode(item: &AcceptedItem) -> Encoded<'_> {
    let (ap_id, signer) = (item.ap_id.as_bytes(), item.signer.as_bytes());
    let payload_len = 1 + 4 + ap_id.len() + 4 + signer.len() + item.body.len();
    let mut encoded = Encoded {
        head: [0; HEAD],
        ap_id,
        signer_len: (signer.len() as u32).to_le_bytes(),
        signer,
        body: &item.body,
    };
    encoded.head[..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    encoded.head[HEADER] = item.batch as u8;
    encoded.head[HEADER + 1..].copy_from_slice(&(ap_id.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    for (n, part) in encoded.parts().into_iter().enumerate() {
        // The payload: the head's first bytes are the length and the CRC.
        crc.update(if n == 0 { &part[HEADER..] } else { part });
    }
    let crc = crc.finalize().to_le_bytes();
    encoded.head[4..HEADER].copy_from_slice(&crc);
    encoded
}

impl Encoded<'_> {
    /// The record's parts, in order.
    fn parts(&self) -> [&[u8]; 5] {
        [
            &self.head,
            self.ap_id,
            &self.signer_len,
            self.signer,
            self.body,
        ]
    }

    /// Bytes in the record.
    fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Writes the whole record, in one `writev` unless the system takes
    /// less at once.
    fn write_to(&self, mut file: &File) -> io::Result<()> {
        let mut slices = self.parts().map(io::IoSlice::new);
        let mut left = &mut slices[..];
        while !left.is_empty() {
            match file.write_vectored(left) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut left, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The records of a segment, up to the first damaged one; true when
/// every byte was a whole record.
fn decode_all(mut bytes: &[u8]) -> (Vec<AcceptedItem>, bool) {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        match decode(bytes) {
            Some((record, rest)) => {
                records.push(record);
                bytes = rest;
            }
            None => return (records, false),
        }
    }
    (records, true)
}

/// The first record of `bytes` and what follows it; `None` if it is cut
/// short or damaged.
fn decode(bytes: &[u8]) -> Option<(AcceptedItem, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..HEADER)?.try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(HEADER..HEADER + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let batch = match payload.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let (ap_id, rest) = text_field(&payload[1..])?;
    let (signer, body) = text_field(rest)?;
    let record = AcceptedItem {
        ap_id,
        signer,
        body: body.to_vec().into(),
        batch,
    };
    Some((record, &bytes[HEADER + len..]))
}

/// A text field of a payload (its length, u32 LE, then UTF-8), and what
/// follows it; `None` if it is cut short or not UTF-8.
fn text_field(bytes: &[u8]) -> Option<(String, &[u8])> {
    let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let text = std::str::from_utf8(bytes.get(4..4 + n)?).ok()?;
    Some((text.to_string(), &bytes[4 + n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize, batch: bool) -> AcceptedItem {
        AcceptedItem {
            ap_id: format!("https://member.example/activities/{n}"),
            signer: "https://member.example/actor".into(),
            body: format!(r#"{{"id":"https://member.example/activities/{n}"}}"#)
                .into_bytes()
                .into(),
            batch,
        }
    }

    /// The journal in `dir` and what it held, for a test that expects to
    /// get the directory.
    fn opened(dir: &Path) -> (Journal, Vec<AcceptedItem>) {
        Journal::open(dir).unwrap().unwrap()
    }

    fn files(dir: &Path) -> Vec<u64> {
        segments(dir).unwrap()
    }

    #[test]
    fn what_a_killed_process_left_is_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, found) = opened(dir.path());
        assert!(found.is_empty());
        let tickets: Vec<Ticket> = (0..5)
            .map(|n| {
                journal
                    .append(&item(n, n % 2 == 0), usize::MAX)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        // Two committed, three not; then the process is gone.
        journal.committed(tickets[..2].iter().copied());
        assert_eq!(journal.uncommitted(), 3);
        drop(journal);
        let (again, found) = opened(dir.path());
        // The segment held all five: records are not cut one by one, so a
        // committed record may come back (queuing it again is a no-op, as
        // for any copy).
        let expected: Vec<AcceptedItem> = (0..5).map(|n| item(n, n % 2 == 0)).collect();
        assert_eq!(found, expected);
        // A segment is made at a thread's first record, not at the start.
        assert_eq!(files(dir.path()), vec![1]);
        again.recovered_queued().unwrap();
        assert!(files(dir.path()).is_empty());
        // The next segment is numbered after what was read.
        again.append(&item(9, true), usize::MAX).unwrap().unwrap();
        assert_eq!(files(dir.path()), vec![2]);
        drop(again);
        let (_, found) = opened(dir.path());
        assert_eq!(found, vec![item(9, true)], "nothing comes back twice");
    }

    #[test]
    fn threads_write_segments_of_their_own_and_every_record_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = opened(dir.path());
        let journal = Arc::new(journal);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let journal = journal.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|n| {
                            let record = item(t * 1000 + n, true);
                            journal.append(&record, usize::MAX).unwrap().unwrap()
                        })
                        .collect::<Vec<Ticket>>()
                })
            })
            .collect();
        let tickets: Vec<Vec<Ticket>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        // Each thread's records went to one segment, its own.
        for own in &tickets {
            assert!(own.iter().all(|t| *t == own[0]));
        }
        let mut segments: Vec<Ticket> = tickets.iter().map(|own| own[0]).collect();
        segments.dedup();
        assert_eq!(segments.len(), 4);
        assert_eq!(journal.uncommitted(), 200);
        // One thread's records committed: its segment is emptied, the
        // others' records come back whole and in each thread's order.
        journal.committed(tickets[0].iter().copied());
        drop(journal);
        let (_, found) = opened(dir.path());
        assert_eq!(found.len(), 150);
        for t in 1..4 {
            let own: Vec<&AcceptedItem> = found
                .iter()
                .filter(|i| {
                    i.ap_id
                        .starts_with(&format!("https://member.example/activities/{t}0"))
                })
                .collect();
            let wanted: Vec<AcceptedItem> = (0..50).map(|n| item(t * 1000 + n, true)).collect();
            assert_eq!(own, wanted.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_segment_all_committed_is_emptied_and_nothing_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = opened(dir.path());
        let tickets: Vec<Ticket> = (0..3)
            .map(|n| journal.append(&item(n, true), usize::MAX).unwrap().unwrap())
            .collect();
        journal.committed(tickets);
        assert_eq!(journal.uncommitted(), 0);
        let len = std::fs::metadata(segment_path(dir.path(), 1))
            .unwrap()
            .len();
        assert_eq!(len, 0);
        // Written after the cut: read back alone.
        journal.append(&item(7, false), usize::MAX).unwrap();
        drop(journal);
        let (_, found) = opened(dir.path());
        assert_eq!(found, vec![item(7, false)]);
    }

    #[test]
    fn full_segments_are_closed_and_deleted_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = opened(dir.path());
        let big = AcceptedItem {
            body: vec![b'x'; (SEGMENT_BYTES / 2) as usize].into(),
            ..item(0, true)
        };
        let tickets: Vec<Ticket> = (0..5)
            .map(|_| journal.append(&big, usize::MAX).unwrap().unwrap())
            .collect();
        // Two records fill a segment: 1 holds 0-1, 2 holds 2-3, 3 holds 4.
        assert_eq!(files(dir.path()), vec![1, 2, 3]);
        journal.committed([tickets[2], tickets[3]]);
        assert_eq!(files(dir.path()), vec![1, 3]);
        journal.committed([tickets[0]]);
        assert_eq!(files(dir.path()), vec![1, 3], "one of 1 is not committed");
        journal.committed([tickets[1], tickets[4]]);
        assert_eq!(files(dir.path()), vec![3]);
        assert_eq!(journal.uncommitted(), 0);
    }

    #[test]
    fn a_record_cut_short_is_left_out_with_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = opened(dir.path());
        for n in 0..3 {
            journal.append(&item(n, true), usize::MAX).unwrap();
        }
        drop(journal);
        let path = segment_path(dir.path(), 1);
        let bytes = std::fs::read(&path).unwrap();
        let one = encode(&item(0, true)).len();
        // The third record loses its last byte, as at a power cut.
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (_, found) = opened(dir.path());
        assert_eq!(found, vec![item(0, true), item(1, true)]);
        // A flipped byte in the second record: only the first survives.
        let mut flipped = bytes.clone();
        flipped[one + HEADER + 3] ^= 0x20;
        std::fs::write(&path, &flipped).unwrap();
        let (_, found) = opened(dir.path());
        assert_eq!(found, vec![item(0, true)]);
    }

    #[test]
    fn no_record_past_the_limit_until_some_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = opened(dir.path());
        let first = journal.append(&item(0, true), 2).unwrap().unwrap();
        journal.append(&item(1, true), 2).unwrap().unwrap();
        assert_eq!(journal.append(&item(2, true), 2).unwrap(), None);
        journal.committed([first]);
        assert!(journal.append(&item(2, true), 2).unwrap().is_some());
        assert_eq!(journal.uncommitted(), 2);
    }

    #[test]
    fn a_second_process_gets_no_journal_in_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = opened(dir.path());
        // Locks are per open file description: a second open in this
        // process is refused as another process's would be.
        assert!(Journal::open(dir.path()).unwrap().is_none());
        drop(first);
        assert!(Journal::open(dir.path()).unwrap().is_some());
    }
}
