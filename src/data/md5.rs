//! MD5 (RFC 1321) digests, used only to verify downloaded archives against
//! their published checksums (not for security): a thin wrapper over the
//! RustCrypto `md-5` crate.

use ::md5::Digest as _;

/// Incremental MD5 hasher.
#[derive(Clone, Debug, Default)]
pub struct Md5(::md5::Md5);

impl Md5 {
    /// A hasher with no input yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The 16-byte digest of everything fed so far.
    pub fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

/// The MD5 digest of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    ::md5::Md5::digest(data).into()
}

/// A digest as lowercase hexadecimal.
pub fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
