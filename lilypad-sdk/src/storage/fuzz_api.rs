//! The block decoders, for the fuzz targets in `lilypad-sdk/fuzz` only
//! (feature `fuzzing`). Not an API: the names and shapes may change at any time.

use cid::Cid;

use super::{
    StorageError,
    pb::{PbNode, UnixFsData},
    walk,
};

/// Decodes a dag-pb node and encodes it again in canonical form.
pub fn pb_canonical(bytes: &[u8]) -> Result<Vec<u8>, String> {
    PbNode::decode(bytes).map(|n| n.encode())
}

/// Decodes a UnixFS `Data` message and encodes it again in canonical form.
pub fn unixfs_canonical(bytes: &[u8]) -> Result<Vec<u8>, String> {
    UnixFsData::decode(bytes).map(|d| d.encode())
}

/// Decodes a block as a download does once its hash checked out.
pub fn decode_block(cid: &Cid, bytes: Vec<u8>) -> Result<(), StorageError> {
    walk::decode(cid, bytes).map(drop)
}
