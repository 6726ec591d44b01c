//! HAMT-sharded directories, exactly as kubo (boxo's `unixfs/hamt`) builds them.
//!
//! kubo switches a directory to a HAMT shard when the estimated size of its
//! links, the sum over links of `len(name) + len(CID bytes)`, reaches
//! [`HAMT_SHARDING_SIZE`] (boxo up to v0.36, so kubo up to 0.39, compares
//! with `>=`; see `docs/storage.md` for later versions). A shard node is a
//! dag-pb node whose UnixFS data has type `HAMTShard`, `fanout` 256,
//! `hashType` 0x22 (murmur3) and, as `Data`, a bitfield of the buckets in use
//! (a big-endian integer with bit `i` set for bucket `i`, leading zero bytes
//! dropped). An entry goes in the bucket named by the next 8 bits of the first
//! 64 bits of the murmur3 x64 128 hash of its name (seed 0), read from the most
//! significant bit; the link is named `XX` + the entry's name (`XX` the bucket
//! in two upper-case hex digits). Where two entries fall in one bucket, the
//! bucket holds a child shard, linked as just `XX`, one level (8 bits) further.

use cid::Cid;

use super::{
    StorageError,
    pb::{DataType, PbLink, PbNode, UnixFsData},
    unixfs::{Added, BlockSink, emit},
    walk::{BlockSource, Node, get_node},
};

/// kubo's `HAMTShardingSize`: a directory whose links' estimated size reaches
/// this many bytes is sharded.
pub const HAMT_SHARDING_SIZE: usize = 262_144;
/// Buckets per shard node (kubo's `DefaultShardWidth`).
pub(crate) const HAMT_FANOUT: u64 = 256;
/// Multihash code of murmur3 x64 64, the `hashType` of kubo's shards.
pub(crate) const HASH_MURMUR3: u64 = 0x22;
/// boxo refuses wider shards (`maximumHamtWidth`).
const MAX_FANOUT: u64 = 1024;

/// The hash boxo places a name by: the first 64 bits (`h1`) of murmur3 x64 128
/// with seed 0, as Go's `murmur3.New64()` computes them (the `murmur3` crate
/// returns `h2 << 64 | h1`).
pub(crate) fn name_hash(name: &[u8]) -> u64 {
    // Reading from a byte slice cannot fail.
    murmur3::murmur3_x64_128(&mut &name[..], 0).map_or(0, |h| h as u64)
}

/// The bucket (of a 2^`bits` fanout) `hash` falls in after `consumed` bits;
/// `consumed + bits` is at most 64.
fn bucket(hash: u64, consumed: u32, bits: u32) -> u64 {
    let mask = if bits >= 64 { u64::MAX } else { (1 << bits) - 1 };
    (hash >> (64 - consumed - bits)) & mask
}

/// A directory's estimated size as kubo computes it to decide on sharding.
pub(crate) fn estimated_size<'a>(links: impl Iterator<Item = (&'a [u8], &'a Cid)>) -> usize {
    links.map(|(name, cid)| name.len() + cid.encoded_len()).sum()
}

/// Builds the shard tree of a directory's entries (names already unique).
pub(crate) fn build(
    links: Vec<(Vec<u8>, Added)>,
    sink: &mut dyn BlockSink,
) -> Result<Added, StorageError> {
    let mut entries: Vec<(u64, Vec<u8>, Added)> =
        links.into_iter().map(|(name, child)| (name_hash(&name), name, child)).collect();
    // Sorted by hash, the entries of each bucket at every level are contiguous.
    entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    shard(&entries, 0, sink)
}

fn shard(
    entries: &[(u64, Vec<u8>, Added)],
    consumed: u32,
    sink: &mut dyn BlockSink,
) -> Result<Added, StorageError> {
    const BITS: u32 = 8;
    let mut bitfield = [0u8; (HAMT_FANOUT / 8) as usize];
    let mut links = Vec::new();
    let mut rest = entries;
    while let Some(first) = rest.first() {
        let index = bucket(first.0, consumed, BITS);
        let n = rest.iter().take_while(|e| bucket(e.0, consumed, BITS) == index).count();
        let (run, after) = rest.split_at(n);
        rest = after;
        bitfield[bitfield.len() - 1 - (index / 8) as usize] |= 1 << (index % 8);
        let mut name = format!("{index:02X}").into_bytes();
        if let [(_, key, child)] = run {
            name.extend_from_slice(key);
            links.push(PbLink { hash: child.cid, name, tsize: child.tsize });
        } else if consumed + BITS >= 64 {
            // kubo fails alike ("sharded directory too deep").
            return Err(StorageError::UnsafeName {
                path: String::from_utf8_lossy(&run[0].1).into_owned(),
                reason: "its name's 64-bit murmur3 hash equals another entry's, so no HAMT shard can hold both".into(),
            });
        } else {
            let child = shard(run, consumed + BITS, sink)?;
            links.push(PbLink { hash: child.cid, name, tsize: child.tsize });
        }
    }
    let used = bitfield.iter().position(|b| *b != 0).unwrap_or(bitfield.len());
    let unixfs = UnixFsData {
        kind: DataType::HamtShard,
        data: (used < bitfield.len()).then(|| bitfield[used..].to_vec()),
        hash_type: Some(HASH_MURMUR3),
        fanout: Some(HAMT_FANOUT),
        ..UnixFsData::default()
    };
    let below: u64 = links.iter().map(|l| l.tsize).sum();
    let (cid, size) = emit(sink, &PbNode { links, data: Some(unixfs.encode()) })?;
    Ok(Added { cid, file_size: 0, tsize: size + below })
}

/// A decoded, verified shard node.
pub(crate) struct Shard {
    pub(crate) hash_type: Option<u64>,
    pub(crate) fanout: Option<u64>,
    pub(crate) bitfield: Vec<u8>,
    pub(crate) links: Vec<(Vec<u8>, Cid)>,
}

/// The entries (name, CID) of the sharded directory `root`, in hash order.
///
/// Every shard node is checked as kubo builds it: murmur3, the same
/// power-of-two fanout (8 to 1024) throughout, one link per bit set in the
/// bitfield, link names `XX...` in increasing bucket order, each entry in the
/// bucket its name's hash selects at every level (so no subtree can be linked
/// twice), and child shards holding at least two entries (so there are at most
/// 8 shard nodes per entry). More than `max_entries` entries is refused as
/// soon as it is seen.
pub(crate) async fn list<S: BlockSource + Sync>(
    src: &S,
    root_cid: &Cid,
    root: Shard,
    dir: &str,
    max_entries: u64,
) -> Result<Vec<(Vec<u8>, Cid)>, StorageError> {
    let fanout = root.fanout.unwrap_or(0);
    let bits = fanout.trailing_zeros();
    let mut out = Vec::new();
    let mut stack = vec![(*root_cid, root, 0u32, 0u64)];
    while let Some((cid, node, consumed, prefix)) = stack.pop() {
        let bad = |reason: String| StorageError::BadNode { cid, reason: reason.into() };
        if node.hash_type != Some(HASH_MURMUR3) {
            return Err(bad(format!(
                "HAMT shard with hash function {:?} (only murmur3, 0x22, is supported)",
                node.hash_type
            )));
        }
        if node.fanout != Some(fanout)
            || !fanout.is_power_of_two()
            || !(8..=MAX_FANOUT).contains(&fanout)
        {
            return Err(bad(format!(
                "HAMT shard with fanout {:?} (a power of two from 8 to 1024, the same in every shard)",
                node.fanout
            )));
        }
        if consumed + bits > 64 {
            return Err(bad("HAMT shards nested deeper than the 64-bit hash allows".into()));
        }
        if node.bitfield.len() > (fanout / 8) as usize {
            return Err(bad("HAMT bitfield longer than the fanout".into()));
        }
        let set: u32 = node.bitfield.iter().map(|b| b.count_ones()).sum();
        if set as usize != node.links.len() {
            return Err(bad(format!(
                "HAMT bitfield has {set} buckets, the node {} links",
                node.links.len()
            )));
        }
        let pad = format!("{:X}", fanout - 1).len();
        // A child shard exists because two entries share its bucket: it holds
        // both, or one child shard where they collide further.
        let holds_two = match &node.links[..] {
            [] => false,
            [(name, _)] => name.len() == pad,
            _ => true,
        };
        if consumed > 0 && !holds_two {
            return Err(bad("child HAMT shard holding fewer than two entries".into()));
        }
        let mut last = None;
        for (name, child) in node.links {
            let index = name
                .get(..pad)
                .filter(|p| p.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')))
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| u64::from_str_radix(p, 16).ok())
                .filter(|i| *i < fanout)
                .ok_or_else(|| {
                    bad(format!(
                        "HAMT link name {:?} does not start with a bucket number",
                        String::from_utf8_lossy(&name)
                    ))
                })?;
            let byte = node.bitfield.len().checked_sub(1 + (index / 8) as usize);
            let in_bitfield = byte.is_some_and(|b| node.bitfield[b] & (1 << (index % 8)) != 0);
            if last.is_some_and(|l| l >= index) || !in_bitfield {
                return Err(bad(format!(
                    "HAMT links out of bucket order or outside the bitfield at bucket {index:X}"
                )));
            }
            last = Some(index);
            let path = (prefix << bits) | index;
            let key = &name[pad..];
            if key.is_empty() {
                let Node::Shard(sub) = get_node(src, &child).await? else {
                    return Err(bad(format!(
                        "HAMT link {index:X} leads to a node that is not a shard"
                    )));
                };
                stack.push((child, sub, consumed + bits, path));
                continue;
            }
            if bucket(name_hash(key), 0, consumed + bits) != path {
                return Err(bad(format!(
                    "entry {:?} is not in the bucket its hash selects",
                    String::from_utf8_lossy(key)
                )));
            }
            if out.len() as u64 >= max_entries {
                return Err(StorageError::LimitExceeded {
                    what: "entries (files, directories and links)",
                    limit: max_entries,
                    path: dir.to_owned(),
                });
            }
            out.push((key.to_vec(), child));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_go() {
        // spaolacci/murmur3's test table (what boxo uses): Sum64 of "hello", seed 0.
        assert_eq!(name_hash(b"hello"), 0xcbd8_a7b3_41bd_9b02);
        assert_eq!(name_hash(b""), 0);
    }

    #[test]
    fn buckets_read_from_the_most_significant_bit() {
        let h = 0xab_cd_00_00_00_00_00_01u64;
        assert_eq!(bucket(h, 0, 8), 0xab);
        assert_eq!(bucket(h, 8, 8), 0xcd);
        assert_eq!(bucket(h, 56, 8), 0x01);
        assert_eq!(bucket(h, 0, 16), 0xabcd);
        assert_eq!(bucket(h, 0, 4), 0xa);
    }
}
