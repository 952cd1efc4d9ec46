//! Pack files (gitformat-pack(5)): version 2 packs of whole objects, with a
//! version 2 index.
//!
//! Hand-written rather than through gix-pack. gix-pack 0.77 writes pack data
//! (`data::output`, feature `generate`, which also pulls gix-traverse and
//! gix-diff) with a freshly allocated zlib stream per entry, and it writes an
//! index only by reading a pack back (`index::write_data_iter_to_stream`,
//! `Bundle::write_to_directory`): inflating and hashing every object again,
//! although the ids are known here, and never fsyncing. Its direct index
//! encoder is crate-private. The formats are small and fixed; the tests
//! check the result with `git verify-pack`, `git index-pack` (which must
//! produce the identical index) and `git fsck --strict`.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::write_set::FlushStats;
use crate::backend::{ObjectId, ObjectKind};

/// Pack entries smaller than this are *stored* (a zlib stream without
/// compression, as git writes with `core.compression 0`); larger ones are
/// deflated. zlib's per-stream setup (zlib-rs clears a 128 KiB hash table
/// on every reset) costs ~5 µs, more than deflating a small object saves.
/// Measured on 30,000 event objects of ~280 bytes: zlib took 180 ms at
/// level 1 for 13% less space, 390 ms at level 6 for 31% less; storing
/// takes ~5 ms. `git gc` later deltifies and compresses them.
const STORE_BELOW: usize = 1024;

/// zlib level for the larger pack entries (checkpoints' index segments, id
/// run pages, state): the fastest. Level 6, git's default, spent ~10% of a
/// batched build's time deflating them, mostly id pages whose hash halves do
/// not compress at all; `git gc` recompresses at its own level later.
pub(super) const PACK_COMPRESSION: gix::zlib::Compression = gix::zlib::Compression::BEST_SPEED;

/// An object of a write set.
#[derive(Debug)]
pub(super) struct PackObject {
    pub(super) id: ObjectId,
    pub(super) kind: ObjectKind,
    pub(super) data: Arc<[u8]>,
}

/// A pack and its index, encoded in memory.
pub(super) struct EncodedPack {
    /// The `.pack` file, its trailing checksum included.
    pub(super) pack: Vec<u8>,
    /// The `.idx` file.
    pub(super) index: Vec<u8>,
    /// The pack's checksum, which also names both files.
    pub(super) checksum: [u8; 20],
}

/// One object's line in the index.
struct IndexEntry {
    id: ObjectId,
    /// CRC-32 of the object's whole entry in the pack (header and zlib data).
    crc: u32,
    /// Where the entry starts in the pack.
    offset: u64,
}

/// Encode `objects` (distinct ids) as a pack and its index.
pub(super) fn encode_pack(objects: &[PackObject], stats: &mut FlushStats) -> io::Result<EncodedPack> {
    let started = Instant::now();
    let count = u32::try_from(objects.len()).map_err(|_| io::Error::other("too many objects for a pack"))?;
    let capacity = 12 + 20 + objects.iter().map(|o| o.data.len() + 32).sum::<usize>();
    let mut pack = Vec::with_capacity(capacity);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    let mut deflate = None;
    for object in objects {
        let offset = pack.len();
        entry_header(object.kind, object.data.len(), &mut pack);
        if object.data.len() < STORE_BELOW {
            zlib_stored(&object.data, &mut pack);
        } else {
            let compress =
                deflate.get_or_insert_with(|| gix::zlib::stream::deflate::Compress::new(PACK_COMPRESSION));
            zlib_deflate(compress, &object.data, &mut pack)?;
        }
        let crc = crc32fast::hash(&pack[offset..]);
        entries.push(IndexEntry { id: object.id, crc, offset: offset as u64 });
    }
    let checksum = sha1(&pack)?;
    pack.extend_from_slice(&checksum);
    let encoded = Instant::now();
    stats.encode = encoded - started;
    let index = encode_index(&mut entries, &checksum)?;
    stats.index = encoded.elapsed();
    Ok(EncodedPack { pack, index, checksum })
}

/// An entry's header: the type in bits 4–6 of the first byte, the size in
/// its low 4 bits and then 7 bits per byte, little-endian, each byte but the
/// last with its high bit set.
fn entry_header(kind: ObjectKind, size: usize, out: &mut Vec<u8>) {
    let type_id: u8 = match kind {
        ObjectKind::Commit => 1,
        ObjectKind::Tree => 2,
        ObjectKind::Blob => 3,
    };
    let mut size = size as u64;
    let mut byte = (type_id << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

/// A loose object file's bytes: `"<kind> <len>\0"` and the data, as one
/// zlib stream (at the packs' level: loose objects are small and short-lived).
pub(super) fn encode_loose(kind: ObjectKind, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut raw = format!("{} {}\0", kind.as_str(), data.len()).into_bytes();
    raw.extend_from_slice(data);
    let mut compress = gix::zlib::stream::deflate::Compress::new(PACK_COMPRESSION);
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    zlib_deflate(&mut compress, &raw, &mut out)?;
    Ok(out)
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks, as zlib
/// writes at level 0: header `78 01`, blocks of at most 65,535 bytes (a byte
/// with the final-block bit, then the length and its complement,
/// little-endian), and the Adler-32 of `data`, big-endian.
fn zlib_stored(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // The most bytes before `b` could overflow a u32 (zlib's NMAX).
    const CHUNK: usize = 5_552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(CHUNK) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// `data` deflated as one zlib stream.
fn zlib_deflate(
    compress: &mut gix::zlib::stream::deflate::Compress,
    data: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    use gix::zlib::Status;
    use gix::zlib::stream::deflate::FlushCompress;
    compress.reset();
    let mut input = data;
    loop {
        let start = out.len();
        out.resize(start + input.len() + input.len() / 8 + 64, 0);
        let (in_before, out_before) = (compress.total_in(), compress.total_out());
        let status = compress
            .compress(input, &mut out[start..], FlushCompress::Finish)
            .map_err(|e| io::Error::other(format!("zlib: {e}")))?;
        let consumed = (compress.total_in() - in_before) as usize;
        let produced = (compress.total_out() - out_before) as usize;
        out.truncate(start + produced);
        input = &input[consumed..];
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError if consumed + produced > 0 => {}
            Status::Ok | Status::BufError => return Err(io::Error::other("zlib made no progress")),
        }
    }
}

/// A version 2 index: magic and version, the fan-out table (how many ids
/// start with a byte up to each value), the sorted ids, their entries'
/// CRC-32s, their 31-bit offsets (or, high bit set, the position of a
/// 64-bit one in the table that follows), the pack's checksum and the
/// index's own.
fn encode_index(entries: &mut [IndexEntry], pack_checksum: &[u8; 20]) -> io::Result<Vec<u8>> {
    entries.sort_unstable_by_key(|entry| entry.id);
    let mut out = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    out.extend_from_slice(b"\xfftOc");
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fan_out = [0u32; 256];
    for entry in entries.iter() {
        fan_out[usize::from(entry.id.0[0])] += 1;
    }
    let mut total = 0u32;
    for count in fan_out {
        total += count;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for entry in entries.iter() {
        out.extend_from_slice(&entry.id.0);
    }
    for entry in entries.iter() {
        out.extend_from_slice(&entry.crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for entry in entries.iter() {
        let offset = match u32::try_from(entry.offset) {
            Ok(offset) if offset < 0x8000_0000 => offset,
            _ => {
                let position = u32::try_from(large.len()).map_err(io::Error::other)?;
                large.push(entry.offset);
                0x8000_0000 | position
            }
        };
        out.extend_from_slice(&offset.to_be_bytes());
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(pack_checksum);
    let checksum = sha1(&out)?;
    out.extend_from_slice(&checksum);
    Ok(out)
}

/// SHA-1 of `data` (gix's implementation: about twice sha1_smol's speed).
fn sha1(data: &[u8]) -> io::Result<[u8; 20]> {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(data);
    let digest = hasher.try_finalize().map_err(|e| io::Error::other(format!("SHA-1: {e}")))?;
    let mut out = [0u8; 20];
    out.copy_from_slice(digest.as_slice());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(stream: &[u8], len: usize) -> (Vec<u8>, usize) {
        let mut out = vec![0u8; len];
        let (status, consumed, written) = gix::zlib::Inflate::default().once(stream, &mut out).unwrap();
        assert_eq!(status, gix::zlib::Status::StreamEnd);
        assert_eq!(written, len);
        (out, consumed)
    }

    #[test]
    fn adler32_matches_the_known_value() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Past zlib's NMAX, where the sums must be reduced.
        let long = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &byte in &long {
            a = (a + u64::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&long)), (b << 16) | a);
    }

    #[test]
    fn stored_zlib_streams_inflate_to_their_data_at_every_block_boundary() {
        for len in [0, 1, 300, 65_534, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut stream = Vec::new();
            zlib_stored(&data, &mut stream);
            stream.extend_from_slice(b"next entry");
            let (out, consumed) = inflate(&stream, len);
            assert!(out == data, "{len} bytes");
            assert_eq!(consumed, stream.len() - b"next entry".len(), "{len} bytes");
        }
    }

    #[test]
    fn deflated_streams_inflate_to_their_data() {
        let mut compress = gix::zlib::stream::deflate::Compress::new(PACK_COMPRESSION);
        for data in [b"decision ".repeat(10_000), (0..70_000).map(|i| (i * 7919 % 256) as u8).collect()] {
            let mut stream = Vec::new();
            zlib_deflate(&mut compress, &data, &mut stream).unwrap();
            let (out, consumed) = inflate(&stream, data.len());
            assert!(out == data);
            assert_eq!(consumed, stream.len());
        }
    }

    #[test]
    fn entry_headers_carry_the_kind_and_the_size_in_seven_bit_groups() {
        let header = |kind, size| {
            let mut out = Vec::new();
            entry_header(kind, size, &mut out);
            out
        };
        assert_eq!(header(ObjectKind::Blob, 0), [0x30]);
        assert_eq!(header(ObjectKind::Commit, 15), [0x1f]);
        assert_eq!(header(ObjectKind::Tree, 16), [0xa0, 0x01]);
        assert_eq!(header(ObjectKind::Blob, 300), [0xbc, 0x12]);
        assert_eq!(header(ObjectKind::Blob, 1 << 20), [0xb0, 0x80, 0x80, 0x04]);
    }
}
