//! The spool's contract: order, acknowledgement, the bound and what it
//! drops, restarts and torn lines, and the lines on the wire when a full
//! spool removes them.

use super::*;

fn line(i: u64) -> Vec<u8> {
    format!("{{\"seq\":{i},\"pad\":\"{}\"}}", "x".repeat(100)).into_bytes()
}

fn take_all(s: &mut Spool) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    s.take(usize::MAX, &mut out).unwrap();
    out
}

#[test]
fn lines_come_out_in_order_and_leave_once_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    for i in 0..1000 {
        s.append(&line(i)).unwrap();
    }
    let mut out = Vec::new();
    s.take(10, &mut out).unwrap();
    assert_eq!(out.len(), 10);
    assert_eq!(out[3], (3, line(3)));
    s.ack(10).unwrap();
    // A failed connection: what was taken after the ack comes again.
    out.clear();
    s.take(5, &mut out).unwrap();
    assert_eq!(out[0].0, 10);
    s.rewind().unwrap();
    let rest = take_all(&mut s);
    assert_eq!(rest.len(), 990);
    assert_eq!(rest[0], (10, line(10)));
    assert_eq!(rest[989], (999, line(999)));
    s.ack(1000).unwrap();
    let c = s.counts();
    assert_eq!((c.sent, c.pending, c.dropped), (1000, 0, 0));
    // Sent segments are gone; the one being written stays.
    let segs = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count();
    assert_eq!(segs, 1);
}

#[test]
fn taking_as_lines_come_follows_them_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    let mut next = 0;
    for i in 0..3000 {
        s.append(&line(i)).unwrap();
        if i % 7 == 0 {
            for (index, l) in take_all(&mut s) {
                assert_eq!((index, l), (next, line(next)));
                next += 1;
            }
            s.ack(next).unwrap();
        }
    }
    assert_eq!(take_all(&mut s).len() as u64, 3000 - next);
}

#[test]
fn a_restart_keeps_what_was_not_delivered_and_cuts_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..2000 {
            s.append(&line(i)).unwrap();
        }
        let _ = take_all(&mut s);
        s.ack(1500).unwrap();
        s.flush().unwrap();
    }
    // A crash in the middle of a line.
    let mut last: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some("seg".as_ref()))
        .collect();
    last.sort();
    let mut f = OpenOptions::new()
        .append(true)
        .open(last.last().unwrap())
        .unwrap();
    f.write_all(b"{\"seq\":20").unwrap();
    drop(f);
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(s.counts().pending, 500);
    let out = take_all(&mut s);
    assert_eq!(out.len(), 500);
    assert_eq!(out[0], (1500, line(1500)));
    assert_eq!(out[499], (1999, line(1999)));
    // New lines follow on.
    s.append(&line(2000)).unwrap();
    let out = take_all(&mut s);
    assert_eq!(out, vec![(2000, line(2000))]);
    drop(s);
    // Restarts that write nothing leave no duplicate segment behind.
    for _ in 0..2 {
        let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
        s.start_segment().unwrap();
    }
    let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
    s.append(&line(2001)).unwrap();
    assert_eq!(take_all(&mut s).len(), 502);
}

#[test]
fn a_full_spool_drops_its_oldest_lines_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let max = 256 * 1024;
    let mut s = Spool::open(dir.path(), max).unwrap();
    let n = 10_000u64;
    for i in 0..n {
        s.append(&line(i)).unwrap();
        assert!(s.counts().bytes <= max, "{:?}", s.counts());
    }
    let on_disk: u64 = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= max + 64, "{on_disk}");
    let c = s.counts();
    assert!(c.dropped > 0);
    assert_eq!(c.dropped + c.pending, n, "{c:?}");
    // What is left is the newest lines, gap-free.
    let out = take_all(&mut s);
    assert_eq!(out.len() as u64, c.pending);
    assert_eq!(out.last().unwrap(), &(n - 1, line(n - 1)));
    assert_eq!(out[0].0, c.dropped);
    // A line longer than a segment is refused, with the spool named.
    let huge = vec![b'x'; 200 * 1024];
    let err = s.append(&huge).unwrap_err().to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn dropping_past_what_the_sender_took_moves_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), MIN_BYTES).unwrap();
    s.append(&line(0)).unwrap();
    let mut out = Vec::new();
    s.take(1, &mut out).unwrap();
    for i in 1..5000 {
        s.append(&line(i)).unwrap();
    }
    // The taken line was removed before its ack, which still says it
    // arrived.
    s.ack(1).unwrap();
    assert_eq!(
        (s.counts().sent, s.counts().dropped),
        (1, 5000 - 1 - s.counts().pending)
    );
    let rest = take_all(&mut s);
    assert_eq!(rest.last().unwrap().0, 4999);
    assert_eq!(rest.len() as u64, s.counts().pending);
}

#[test]
fn lines_dropped_on_the_wire_count_as_sent_if_acknowledged_else_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), MIN_BYTES).unwrap();
    // The sender puts 100 lines on the wire, and a flood wraps the
    // spool before the collector has acknowledged them.
    for i in 0..100 {
        s.append(&line(i)).unwrap();
    }
    let mut out = Vec::new();
    s.take(100, &mut out).unwrap();
    let n = 5000;
    for i in 100..n {
        s.append(&line(i)).unwrap();
    }
    let c = s.counts();
    assert_eq!(c.sent + c.dropped + c.pending, n, "{c:?}");
    // What is left: the collector will never see the lines between
    // the wire's and these.
    let rest = take_all(&mut s);
    let left = rest[0].0;
    assert!(left > 100, "the flood dropped none");
    // The first 60 arrive, which the collector's acknowledgement says;
    // then the connection fails, taking the other 40 with it.
    s.ack(60).unwrap();
    assert_eq!(s.counts().sent, 60);
    s.rewind().unwrap();
    let c = s.counts();
    assert_eq!((c.sent, c.dropped), (60, left - 60), "{c:?}");
    assert_eq!(c.pending, n - left, "{c:?}");
    // Sent again on the next connection: what was left, nothing more.
    let again = take_all(&mut s);
    assert_eq!(again, rest);
    s.ack(n).unwrap();
    let c = s.counts();
    assert_eq!(
        (c.sent, c.dropped, c.pending),
        (60 + n - left, left - 60, 0)
    );
}

#[test]
fn an_acknowledgement_counts_only_the_lines_the_sender_took() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), MIN_BYTES).unwrap();
    let mut n = 100;
    let append_until_a_drop = |s: &mut Spool, n: &mut u64| {
        let before = s.counts().dropped;
        while s.counts().dropped == before {
            s.append(&line(*n)).unwrap();
            *n += 1;
        }
    };
    // 50 lines of the first segment on the wire when it goes; the
    // sender reads on where the spool now starts, and has 30 of the
    // next segment on the wire when that one goes too.
    for i in 0..100 {
        s.append(&line(i)).unwrap();
    }
    let mut out = Vec::new();
    s.take(50, &mut out).unwrap();
    append_until_a_drop(&mut s, &mut n);
    out.clear();
    s.take(30, &mut out).unwrap();
    let second = out[0].0;
    assert!(second > 50, "the sender read on past the removed segment");
    append_until_a_drop(&mut s, &mut n);
    let c = s.counts();
    assert_eq!(c.sent + c.dropped + c.pending, n, "{c:?}");
    // The collector acknowledges all it got: 80 lines, not the gap
    // between them that never went out.
    s.ack(second + 30).unwrap();
    let c = s.counts();
    assert_eq!(c.sent, 80, "{c:?}");
    assert_eq!(c.sent + c.dropped + c.pending, n, "{c:?}");
    assert_eq!(take_all(&mut s).len() as u64, c.pending);
}
