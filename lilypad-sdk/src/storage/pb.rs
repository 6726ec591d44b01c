//! dag-pb and UnixFS protobuf messages, encoded and decoded by hand.
//!
//! Why not prost or quick-protobuf: a CID is the hash of the exact bytes, and
//! dag-pb requires a field order that generated code does not produce (a
//! `PBNode` writes its `Links` (field 2) *before* its `Data` (field 1); prost
//! writes fields in number order). The two messages have seven scalar fields
//! between them, so the varint/length-delimited writer and a lenient reader are
//! about a hundred lines, with no build script and no extra dependency.
//!
//! Schemas (from the dag-pb and UnixFS specifications):
//! ```text
//! message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
//! message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }
//! message Data { required DataType Type = 1; optional bytes Data = 2; optional uint64 filesize = 3;
//!                repeated uint64 blocksizes = 4; optional uint64 hashType = 5; optional uint64 fanout = 6;
//!                optional uint32 mode = 7; optional UnixTime mtime = 8; }
//! enum DataType { Raw = 0; Directory = 1; File = 2; Metadata = 3; Symlink = 4; HAMTShard = 5; }
//! ```

use cid::Cid;

/// A link of a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PbLink {
    pub(crate) hash: Cid,
    /// Raw bytes: a hostile node may carry names that are not UTF-8.
    pub(crate) name: Vec<u8>,
    pub(crate) tsize: u64,
}

/// A dag-pb node: links, then opaque data (a UnixFS `Data` message here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PbNode {
    pub(crate) links: Vec<PbLink>,
    pub(crate) data: Option<Vec<u8>>,
}

/// UnixFS node kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum DataType {
    #[default]
    Raw,
    Directory,
    File,
    Metadata,
    Symlink,
    HamtShard,
}

impl DataType {
    fn code(self) -> u64 {
        match self {
            Self::Raw => 0,
            Self::Directory => 1,
            Self::File => 2,
            Self::Metadata => 3,
            Self::Symlink => 4,
            Self::HamtShard => 5,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Raw,
            1 => Self::Directory,
            2 => Self::File,
            3 => Self::Metadata,
            4 => Self::Symlink,
            5 => Self::HamtShard,
            _ => return None,
        })
    }
}

/// The UnixFS `Data` message (mode and mtime are neither written nor read:
/// kubo's defaults write neither). `hash_type` and `fanout` are set on HAMT
/// shard nodes only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UnixFsData {
    pub(crate) kind: DataType,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) filesize: Option<u64>,
    pub(crate) blocksizes: Vec<u64>,
    pub(crate) hash_type: Option<u64>,
    pub(crate) fanout: Option<u64>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

impl PbNode {
    /// Canonical dag-pb bytes: links first, each with Hash, Name (always, even
    /// empty, as go-merkledag writes it) and Tsize; then Data if present.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for link in &self.links {
            let mut l = Vec::new();
            put_bytes(&mut l, 1, &link.hash.to_bytes());
            put_bytes(&mut l, 2, &link.name);
            put_uint(&mut l, 3, link.tsize);
            put_bytes(&mut out, 2, &l);
        }
        if let Some(data) = &self.data {
            put_bytes(&mut out, 1, data);
        }
        out
    }

    /// Reads a dag-pb node. Unknown fields are skipped; the caller has already
    /// checked the bytes against their CID, so only safety matters here.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut node = Self::default();
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            match r.field()? {
                (1, Value::Bytes(b)) => node.data = Some(b.to_vec()),
                (2, Value::Bytes(b)) => node.links.push(decode_link(b)?),
                (1 | 2, _) => return Err("PBNode field has the wrong wire type".into()),
                _ => {}
            }
        }
        Ok(node)
    }
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, String> {
    let (mut hash, mut name, mut tsize) = (None, Vec::new(), 0);
    let mut r = Reader(bytes);
    while !r.0.is_empty() {
        match r.field()? {
            (1, Value::Bytes(b)) => {
                hash = Some(Cid::try_from(b).map_err(|e| format!("link hash is not a CID: {e}"))?);
            }
            (2, Value::Bytes(b)) => name = b.to_vec(),
            (3, Value::Varint(v)) => tsize = v,
            (1..=3, _) => return Err("PBLink field has the wrong wire type".into()),
            _ => {}
        }
    }
    let hash = hash.ok_or("link without a hash")?;
    Ok(PbLink { hash, name, tsize })
}

impl UnixFsData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, 1, self.kind.code());
        if let Some(d) = &self.data {
            put_bytes(&mut out, 2, d);
        }
        if let Some(s) = self.filesize {
            put_uint(&mut out, 3, s);
        }
        // proto2 `repeated uint64` without [packed=true]: one field per value.
        for b in &self.blocksizes {
            put_uint(&mut out, 4, *b);
        }
        if let Some(h) = self.hash_type {
            put_uint(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            put_uint(&mut out, 6, f);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut kind = None;
        let mut out = Self::default();
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            match r.field()? {
                (1, Value::Varint(v)) => {
                    kind = Some(DataType::from_code(v).ok_or(format!("unknown UnixFS type {v}"))?);
                }
                (2, Value::Bytes(b)) => out.data = Some(b.to_vec()),
                (3, Value::Varint(v)) => out.filesize = Some(v),
                (4, Value::Varint(v)) => out.blocksizes.push(v),
                // Some encoders pack repeated scalars.
                (4, Value::Bytes(b)) => {
                    let mut p = Reader(b);
                    while !p.0.is_empty() {
                        out.blocksizes.push(p.varint()?);
                    }
                }
                (5, Value::Varint(v)) => out.hash_type = Some(v),
                (6, Value::Varint(v)) => out.fanout = Some(v),
                (1..=6, _) => return Err("UnixFS field has the wrong wire type".into()),
                _ => {}
            }
        }
        out.kind = kind.ok_or("UnixFS data without a type")?;
        Ok(out)
    }
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflows")?;
        if n > self.0.len() {
            return Err(format!("field of {n} bytes runs past the end of the message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            w => return Err(format!("unsupported protobuf wire type {w}")),
        };
        Ok((key >> 3, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unixfs_round_trip_and_known_bytes() {
        let d = UnixFsData {
            kind: DataType::File,
            data: Some(b"hello world\n".to_vec()),
            filesize: Some(12),
            ..UnixFsData::default()
        };
        let node = PbNode { links: vec![], data: Some(d.encode()) };
        let bytes = node.encode();
        assert_eq!(bytes[..4], [0x0a, 0x12, 0x08, 0x02]);
        let back = PbNode::decode(&bytes).unwrap();
        assert_eq!(UnixFsData::decode(back.data.as_deref().unwrap()).unwrap(), d);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(PbNode::decode(&[0x12, 0x05, 0x0a]).is_err());
        assert!(PbNode::decode(&[0x80]).is_err());
        assert!(UnixFsData::decode(&[0x08, 0x09]).is_err());
    }
}
