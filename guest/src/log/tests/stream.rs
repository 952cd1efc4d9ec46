//! The fold in pieces: whatever the piece size, and whether the records come
//! from checkpoint pages or from memory, the pieces are the fold's bytes.

use super::*;
use crate::error::Error;
use crate::log::{FoldCursor, FoldPiece};

/// Every piece of `space`'s fold at `size`, in order.
fn pieces(log: &mut Log<FakeHost>, size: u32) -> Vec<FoldPiece> {
    let mut out: Vec<FoldPiece> = Vec::new();
    loop {
        let after = out.last().and_then(|p| p.next.clone());
        if !out.is_empty() && after.is_none() {
            return out;
        }
        out.push(log.fold_piece(SPACE, after.as_ref(), size).expect("piece"));
        assert!(out.len() < 100_000, "pieces never end");
    }
}

fn joined(log: &mut Log<FakeHost>, size: u32) -> String {
    pieces(log, size).into_iter().map(|p| p.text).collect()
}

#[test]
fn the_pieces_of_a_fold_are_its_bytes_at_every_size_from_pages_and_from_memory() {
    let (host, mut writer) = search::space(300);
    let fold = writer.fold(SPACE, None).expect("fold");
    assert!(fold.contains("\"proposals\":{") && fold.contains("\"retracted\":{\""), "every map has entries");
    for size in [1, 700, 65_536, u32::MAX] {
        // A fresh reader reads the records from the checkpoint's pages...
        assert_eq!(joined(&mut open(&host, 0), size), fold, "from pages, size {size}");
        // ...the writer, which folded the whole state, from memory.
        assert_eq!(joined(&mut writer, size), fold, "from memory, size {size}");
    }
    let small = pieces(&mut open(&host, 0), 1);
    // A piece of size 1 holds one record (and the parts around it).
    assert!(small.len() > 300, "{} pieces", small.len());
    assert_eq!(pieces(&mut open(&host, 0), u32::MAX).len(), 1);
}

#[test]
fn keys_from_u_e000_up_are_written_in_utf16_order_across_pieces_as_the_fold_writes_them() {
    let host = store();
    let mut writer = open(&host, 0);
    let keys = [
        "a",
        "a\u{E000}",
        "a\u{10000}",
        "a\u{E000}\u{10000}",
        "a\u{E000}x",
        "a\u{FFFD}",
        "a\u{1F600}",
        "ab",
        "b\u{10000}",
        "b\u{E001}",
        "c",
    ];
    for (i, key) in keys.iter().enumerate() {
        writer.append(SPACE, &decide(&format!("d{i}"), key, "v")).expect("decide");
    }
    writer.checkpoint(SPACE).expect("checkpoint").expect("written");
    writer.append(SPACE, &retract("r1", "a\u{1F600}", "d6")).expect("retract");
    writer.append(SPACE, &retract("r2", "a\u{E000}", "d1")).expect("retract");
    let fold = writer.fold(SPACE, None).expect("fold");
    // In UTF-16, U+10000 and up (surrogates) sort before U+E000–U+FFFF.
    let at = |k: &str| fold.find(&format!("\"{k}\":")).expect("written");
    assert!(at("a\u{10000}") < at("a\u{E000}\u{10000}") && at("a\u{E000}x") < at("a\u{FFFD}"));
    for size in [1, 40, 400, u32::MAX] {
        assert_eq!(joined(&mut open(&host, 0), size), fold, "from pages, size {size}");
        assert_eq!(joined(&mut writer, size), fold, "from memory, size {size}");
    }
}

#[test]
fn an_empty_space_is_one_piece() {
    let host = store();
    let mut reader = open(&host, 0);
    let all = pieces(&mut reader, 1);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].text, reader.fold(SPACE, None).expect("fold"));
}

#[test]
fn pieces_stay_at_the_head_they_started_from_and_a_new_instance_refuses_a_moved_head() {
    let host = store();
    let mut writer = open(&host, 0);
    history(&mut writer);
    let before = writer.fold(SPACE, None).expect("fold");
    let mut reader = open(&host, 0);
    let first = reader.fold_piece(SPACE, None, 1).expect("piece");
    let cursor: FoldCursor = first.next.clone().expect("more pieces");
    assert_eq!(cursor.seq, 11);
    writer.append(SPACE, &decide("d12", "k12", "v")).expect("append");

    // The instance that started goes on at the head it started from: the
    // pieces are one fold, not a mix of two.
    let mut text = first.text.clone();
    let mut next = Some(cursor.clone());
    while let Some(at) = next {
        let piece = reader.fold_piece(SPACE, Some(&at), 1).expect("piece");
        text.push_str(&piece.text);
        next = piece.next;
    }
    assert_eq!(text, before);

    // A new instance (the first lost to a trap, say) has only the ref:
    // the head moved, so it refuses rather than mix.
    match open(&host, 0).fold_piece(SPACE, Some(&cursor), 1) {
        Err(Error::HeadConflict { expected_seq: 11, actual: Some(head) }) => assert_eq!(head.seq, 12),
        other => panic!("expected a head conflict, got {other:?}"),
    }
    // Starting again reads the new head.
    assert_eq!(joined(&mut reader, 1), writer.fold(SPACE, None).expect("fold"));
}

#[test]
fn a_new_instance_goes_on_from_a_cursor_when_the_head_has_not_moved() {
    let (host, mut writer) = search::space(60);
    let first = open(&host, 0).fold_piece(SPACE, None, 500).expect("piece");
    let mut text = first.text;
    let mut next = first.next;
    while let Some(cursor) = next {
        let piece = open(&host, 0).fold_piece(SPACE, Some(&cursor), 500).expect("piece");
        text.push_str(&piece.text);
        next = piece.next;
    }
    assert_eq!(text, writer.fold(SPACE, None).expect("fold"));
}
