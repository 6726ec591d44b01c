//! Request signatures: every solver request (except `/healthz` and `/metrics`)
//! carries an EIP-712 signature over the whole request.
//!
//! The signed struct is
//! `SolverRequest(string method,string path,bytes32 bodyHash,uint256 nonce,uint64 expiry)`
//! where `path` is the path and query exactly as sent (e.g. `/api/v1/deals`),
//! `bodyHash` the keccak256 of the raw body bytes (of the empty string for a `GET`),
//! under the domain `{name: "LilypadSolver", version: "1", chainId, verifyingContract:
//! <the solver's address>}`: a request signed for one solver or chain is refused by
//! any other. The headers [`headers`](super::api::headers) carry the signer, the
//! nonce, the expiry and the signature. The solver refuses expired requests and
//! requests whose expiry is further ahead than its limit, and remembers each
//! signer's nonces (durably) until their expiry, so a request cannot be replayed.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};
#[cfg(feature = "solver")]
use axum::http::HeaderMap;
#[cfg(feature = "solver")]
use secp256k1::{
    Message, PublicKey, SECP256K1,
    ecdsa::{RecoverableSignature, RecoveryId},
};

use super::api::headers;

alloy::sol! {
    /// The EIP-712 struct a solver request is signed as.
    #[derive(Debug, PartialEq, Eq)]
    struct SolverRequest {
        string method;
        string path;
        bytes32 bodyHash;
        uint256 nonce;
        uint64 expiry;
    }
}

/// Name of the EIP-712 domain of solver requests.
pub const DOMAIN_NAME: &str = "LilypadSolver";
/// Version of the EIP-712 domain of solver requests.
pub const DOMAIN_VERSION: &str = "1";

/// The domain requests to the solver `solver` on chain `chain_id` are signed under.
pub fn request_domain(chain_id: u64, solver: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: solver,
    }
}

/// The digest a request is signed as.
pub fn request_digest(
    domain: &Eip712Domain,
    method: &str,
    path: &str,
    body: &[u8],
    nonce: U256,
    expiry: u64,
) -> B256 {
    SolverRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        bodyHash: keccak256(body),
        nonce,
        expiry,
    }
    .eip712_signing_hash(domain)
}

/// The authentication of one request, as carried in its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuth {
    /// Who claims to have signed it.
    pub signer: Address,
    /// Never reused by this signer (within the expiry window).
    pub nonce: U256,
    /// Unix second after which the request is void.
    pub expiry: u64,
    /// `r ++ s ++ v`.
    pub signature: [u8; 65],
}

/// Why a request's authentication was refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A header is missing: the request is not signed.
    #[error("missing header {0}: every request must be signed (see docs/solver.md)")]
    Missing(&'static str),
    /// A header does not parse.
    #[error("header {header}: {reason}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The signature is not a valid signature of this request.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The signature is valid but made by someone else than the claimed signer (or over
    /// another request: another method, path, body, nonce, expiry, solver or chain).
    #[error(
        "the request is signed by {recovered}, not by {claimed}: the signature does not cover this exact request for this solver"
    )]
    WrongSigner {
        /// The signer the header names.
        claimed: Address,
        /// The signer recovered from the signature.
        recovered: Address,
    },
    /// The request's expiry has passed.
    #[error("the request expired at {expiry}, it is now {now}: sign it again")]
    Expired {
        /// The request's expiry.
        expiry: u64,
        /// The server's clock.
        now: u64,
    },
    /// The expiry is too far ahead (the solver remembers nonces only that long).
    #[error(
        "the request's expiry {expiry} is more than {max_ttl_secs}s ahead of the server's clock {now}"
    )]
    TooFarAhead {
        /// The request's expiry.
        expiry: u64,
        /// The server's clock.
        now: u64,
        /// The longest lifetime accepted.
        max_ttl_secs: u64,
    },
}

#[cfg(feature = "solver")]
fn header<'a>(map: &'a HeaderMap, name: &'static str) -> Result<&'a str, AuthError> {
    let v = map.get(name).ok_or(AuthError::Missing(name))?;
    v.to_str()
        .map(str::trim)
        .map_err(|_| AuthError::Malformed { header: name, reason: "not visible ASCII".into() })
}

#[cfg(feature = "solver")]
fn malformed(header: &'static str, reason: String) -> AuthError {
    AuthError::Malformed { header, reason }
}

impl RequestAuth {
    /// Signs a request: `path` is the path and query as sent, `body` the raw body.
    pub fn sign(
        signer: &PrivateKeySigner,
        domain: &Eip712Domain,
        method: &str,
        path: &str,
        body: &[u8],
        nonce: U256,
        expiry: u64,
    ) -> Result<Self, alloy::signers::Error> {
        let digest = request_digest(domain, method, path, body, nonce, expiry);
        let signature = signer.sign_hash_sync(&digest)?.as_bytes();
        Ok(Self { signer: signer.address(), nonce, expiry, signature })
    }

    /// The header name/value pairs carrying this authentication.
    pub fn to_headers(&self) -> [(&'static str, String); 4] {
        [
            (headers::SIGNER, self.signer.to_checksum(None)),
            (headers::NONCE, self.nonce.to_string()),
            (headers::EXPIRY, self.expiry.to_string()),
            (headers::SIGNATURE, alloy::hex::encode_prefixed(self.signature)),
        ]
    }

    /// Reads the authentication headers (server side).
    #[cfg(feature = "solver")]
    pub fn from_headers(map: &HeaderMap) -> Result<Self, AuthError> {
        let signer = header(map, headers::SIGNER)?
            .parse::<Address>()
            .map_err(|e| malformed(headers::SIGNER, format!("not an address: {e}")))?;
        let nonce_text = header(map, headers::NONCE)?;
        let nonce = if let Some(hex) = nonce_text.strip_prefix("0x") {
            U256::from_str_radix(hex, 16)
        } else {
            U256::from_str_radix(nonce_text, 10)
        }
        .map_err(|e| malformed(headers::NONCE, format!("not a uint256: {e}")))?;
        let expiry = header(map, headers::EXPIRY)?
            .parse::<u64>()
            .map_err(|e| malformed(headers::EXPIRY, format!("not a unix second: {e}")))?;
        let sig_text = header(map, headers::SIGNATURE)?;
        let bytes = alloy::hex::decode(sig_text)
            .map_err(|e| malformed(headers::SIGNATURE, format!("not hex: {e}")))?;
        let signature: [u8; 65] = bytes.as_slice().try_into().map_err(|_| {
            malformed(headers::SIGNATURE, format!("{} bytes, expected 65", bytes.len()))
        })?;
        Ok(Self { signer, nonce, expiry, signature })
    }

    /// Checks the request is signed by [`Self::signer`], unexpired and at most
    /// `max_ttl_secs` ahead of `now`. Returns the signer's public key, so that a
    /// signature of the same signer on the body (an offer) can be verified with it
    /// rather than recovered again.
    #[cfg(feature = "solver")]
    pub fn verify(
        &self,
        domain: &Eip712Domain,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
        max_ttl_secs: u64,
    ) -> Result<SignerKey, AuthError> {
        if self.expiry <= now {
            return Err(AuthError::Expired { expiry: self.expiry, now });
        }
        if self.expiry > now.saturating_add(max_ttl_secs) {
            return Err(AuthError::TooFarAhead { expiry: self.expiry, now, max_ttl_secs });
        }
        let digest = request_digest(domain, method, path, body, self.nonce, self.expiry);
        let (key, recovered) =
            recover(&digest, &self.signature).map_err(AuthError::BadSignature)?;
        if recovered != self.signer {
            return Err(AuthError::WrongSigner { claimed: self.signer, recovered });
        }
        Ok(key)
    }
}

#[cfg(feature = "solver")]
/// The curve order halved: signatures with a larger `s` are malleable copies, and
/// OpenZeppelin's `ECDSA` (hence the controller) refuses them.
const HALF_ORDER: U256 = U256::from_limbs([
    0xdfe92f46681b20a0,
    0x5d576e7357a4501d,
    0xffffffffffffffff,
    0x7fffffffffffffff,
]);

#[cfg(feature = "solver")]
/// A signer's public key, recovered from one signature, to verify others with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerKey(PublicKey);

#[cfg(feature = "solver")]
impl SignerKey {
    /// The key's address.
    pub fn address(&self) -> Address {
        Address::from_raw_public_key(&self.0.serialize_uncompressed()[1..])
    }
}

#[cfg(feature = "solver")]
fn parse(sig: &[u8]) -> Result<RecoverableSignature, String> {
    let sig: &[u8; 65] =
        sig.try_into().map_err(|_| format!("{} bytes, expected 65 (r ++ s ++ v)", sig.len()))?;
    let s = U256::from_be_slice(&sig[32..64]);
    if s > HALF_ORDER {
        return Err("s is in the upper half of the curve order (malleable signature)".into());
    }
    let v = match sig[64] {
        27 | 0 => 0,
        28 | 1 => 1,
        v => return Err(format!("v is {v}, expected 27 or 28")),
    };
    let id = RecoveryId::try_from(v).map_err(|e| e.to_string())?;
    RecoverableSignature::from_compact(&sig[..64], id).map_err(|e| e.to_string())
}

// Signatures are checked with libsecp256k1 rather than alloy's k256: a recovery
// costs about a quarter as much (see docs/benchmarks.md), and the solver does one
// per request.

#[cfg(feature = "solver")]
/// Recovers the key and address that signed `digest`; refuses malleable (high-s) signatures.
pub fn recover(digest: &B256, sig: &[u8]) -> Result<(SignerKey, Address), String> {
    let sig = parse(sig)?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &sig)
        .map_err(|e| format!("no key recovers from it: {e}"))?;
    let key = SignerKey(key);
    Ok((key, key.address()))
}

#[cfg(feature = "solver")]
/// Checks that `key` signed `digest` with `sig` (65 bytes, low s). Cheaper than a
/// second [`recover`] when the signer's key is already known.
pub fn verify_with_key(key: &SignerKey, digest: &B256, sig: &[u8]) -> Result<(), String> {
    let sig = parse(sig)?.to_standard();
    SECP256K1
        .verify_ecdsa(Message::from_digest(digest.0), &sig, &key.0)
        .map_err(|_| "the signature is not the signer's signature of this offer".to_owned())
}

#[cfg(test)]
#[cfg(feature = "solver")]
mod tests {
    use super::*;

    fn key(n: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&B256::repeat_byte(n)).unwrap()
    }

    #[test]
    fn half_order_is_the_secp256k1_half_order() {
        let n = alloy::primitives::uint!(
            0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141_U256
        );
        assert_eq!(HALF_ORDER, n >> 1);
    }

    #[test]
    fn the_request_signature_covers_a_job_offer_s_minimum_reputation() {
        use crate::solver::api::PostJobOffer;
        let signer = key(7);
        let d = request_domain(31337, Address::repeat_byte(1));
        let offer = lilypad_core::offer::JobOffer {
            creator: signer.address(),
            module_id: Default::default(),
            inputs_hash: Default::default(),
            requirements: Default::default(),
            max_price: U256::from(1),
            payment_collateral: U256::from(1),
            timeout_secs: 60,
            bounds: Default::default(),
            mediators: Default::default(),
            solver: Address::repeat_byte(1),
            target: None,
            expiry: 100,
            nonce: U256::from(1),
        };
        let body = |min| {
            let post = PostJobOffer {
                offer: offer.clone(),
                signature: Default::default(),
                inputs: crate::solver::api::Inputs(Vec::new()),
                min_reputation: min,
            };
            serde_json::to_vec(&post).unwrap()
        };
        let (signed, path) = (body(Some(0.8)), "/api/v1/job_offers");
        let a = RequestAuth::sign(&signer, &d, "POST", path, &signed, U256::from(5), 100).unwrap();
        assert!(a.verify(&d, "POST", path, &signed, 50, 600).is_ok());
        // Lowered or dropped on the way, the minimum no longer matches the signature.
        for tampered in [body(Some(0.1)), body(None)] {
            assert!(matches!(
                a.verify(&d, "POST", path, &tampered, 50, 600),
                Err(AuthError::WrongSigner { .. })
            ));
        }
        // Without a minimum the body is what it was before the field existed.
        assert!(!String::from_utf8(body(None)).unwrap().contains("min_reputation"));
        let back: PostJobOffer = serde_json::from_slice(&signed).unwrap();
        assert_eq!(back.min_reputation, Some(0.8));
    }

    #[test]
    fn sign_verify_and_every_mismatch() {
        let signer = key(7);
        let d = request_domain(31337, Address::repeat_byte(1));
        let a =
            RequestAuth::sign(&signer, &d, "POST", "/api/v1/x", b"{}", U256::from(5), 100).unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in a.to_headers() {
            h.insert(k, v.parse().unwrap());
        }
        let b = RequestAuth::from_headers(&h).unwrap();
        assert_eq!(a, b);
        let k = b.verify(&d, "POST", "/api/v1/x", b"{}", 50, 600).unwrap();
        assert_eq!(k.address(), signer.address());
        // Another body, path, method, solver or chain recovers another address.
        for (dom, m, p, body) in [
            (d.clone(), "POST", "/api/v1/x", &b"{} "[..]),
            (d.clone(), "POST", "/api/v1/y", b"{}"),
            (d.clone(), "GET", "/api/v1/x", b"{}"),
            (request_domain(31337, Address::repeat_byte(2)), "POST", "/api/v1/x", b"{}"),
            (request_domain(1, Address::repeat_byte(1)), "POST", "/api/v1/x", b"{}"),
        ] {
            assert!(matches!(
                b.verify(&dom, m, p, body, 50, 600),
                Err(AuthError::WrongSigner { .. })
            ));
        }
        assert_eq!(
            b.verify(&d, "POST", "/api/v1/x", b"{}", 100, 600),
            Err(AuthError::Expired { expiry: 100, now: 100 })
        );
        assert!(matches!(
            b.verify(&d, "POST", "/api/v1/x", b"{}", 10, 60),
            Err(AuthError::TooFarAhead { .. })
        ));
        h.remove(headers::NONCE);
        assert_eq!(RequestAuth::from_headers(&h), Err(AuthError::Missing(headers::NONCE)));
    }

    #[test]
    fn high_s_is_refused_and_key_verification_agrees_with_recovery() {
        let signer = key(9);
        let digest = B256::repeat_byte(3);
        let sig = signer.sign_hash_sync(&digest).unwrap();
        let bytes = sig.as_bytes();
        let (k, a) = recover(&digest, &bytes).unwrap();
        assert_eq!(a, signer.address());
        verify_with_key(&k, &digest, &bytes).unwrap();
        assert!(verify_with_key(&k, &B256::repeat_byte(4), &bytes).is_err());
        // The malleable twin (n - s, flipped v) recovers the same key in alloy, but not here.
        let n = alloy::primitives::uint!(
            0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141_U256
        );
        let mut twin = bytes;
        twin[32..64].copy_from_slice(&(n - sig.s()).to_be_bytes::<32>());
        twin[64] = if bytes[64] == 27 { 28 } else { 27 };
        assert!(recover(&digest, &twin).unwrap_err().contains("upper half"));
    }
}
