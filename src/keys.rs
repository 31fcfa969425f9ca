//! A member's own secret keys, and the key file that holds them (SPEC.md §11).
//!
//! Secret keys never enter the chain or the database: a DB file can be handed
//! to an auditor as it is. [`LocalKeys`] zeroizes both secrets on drop (the
//! dalek types do so themselves) and shows neither in `Debug`.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::event::MemberKeys;
use crate::ids::{DhPublicKey, MemberId, SigningPublicKey};
use crate::labels;

/// First bytes of a key file.
const KEY_FILE_MAGIC: &[u8; 16] = b"meshlog-keys-v1\n";
/// Length of the checksum at the end of a key file.
const KEY_FILE_CHECKSUM_LEN: usize = 16;
/// Length of a whole key file: magic, ed25519 seed, X25519 secret, checksum.
const KEY_FILE_LEN: usize = 16 + 32 + 32 + KEY_FILE_CHECKSUM_LEN;

/// A member's secret keys: ed25519 to sign events, X25519 to receive epoch secrets.
pub struct LocalKeys {
    signing: SigningKey,
    dh: StaticSecret,
    /// Derived once: an X25519 base-point multiplication is not free.
    public: MemberKeys,
}

/// Why a key file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file system refused.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Saving would overwrite an existing file.
    #[error("key file {path} already exists; refusing to overwrite a secret key")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// Others than the owner may read or write the file.
    #[error("key file {path} has mode {mode:o}: others may read it; run `chmod 600 {path}`")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a meshlog key file, or is damaged.
    #[error("{path} is not a meshlog key file ({detail})")]
    Format {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: &'static str,
    },
}

impl LocalKeys {
    /// Fresh keys from the operating system's random generator.
    pub fn generate() -> LocalKeys {
        Self::generate_with(&mut rand::rng())
    }

    /// Fresh keys from the given generator (seed one for reproducible tests).
    pub fn generate_with<R: CryptoRng + ?Sized>(rng: &mut R) -> LocalKeys {
        let signing = SigningKey::generate(rng);
        Self::new(signing, StaticSecret::random_from_rng(rng))
    }

    /// Keys handed in by the caller: an ed25519 seed and an X25519 secret.
    pub fn from_secret_bytes(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> LocalKeys {
        Self::new(
            SigningKey::from_bytes(signing_seed),
            StaticSecret::from(*dh_secret),
        )
    }

    fn new(signing: SigningKey, dh: StaticSecret) -> LocalKeys {
        let public = MemberKeys {
            signing: SigningPublicKey::from_bytes(signing.verifying_key().to_bytes()),
            dh: DhPublicKey::from_bytes(PublicKey::from(&dh).to_bytes()),
        };
        LocalKeys {
            signing,
            dh,
            public,
        }
    }

    /// The member's key package at counter 0: its public keys, signed by
    /// itself. This is what an admin needs to add it
    /// ([`crate::Mesh::add_member`]); no one else can make it.
    pub fn package(&self) -> crate::KeyPackage {
        self.package_with_counter(0)
    }

    /// The key package of these keys at `counter`, signed by them. A member
    /// whose DH key changes posts a package with a higher counter than its
    /// last (SPEC.md §5.4).
    pub fn package_with_counter(&self, counter: u64) -> crate::KeyPackage {
        crate::event::SignedPackage::sign(self, counter)
    }

    /// The public keys (unsigned; an addition carries a [`Self::package`]).
    pub fn public(&self) -> MemberKeys {
        self.public
    }

    /// This member's id.
    pub fn member_id(&self) -> MemberId {
        self.public().member_id()
    }

    /// A second copy of these keys in memory (for a second open, or a
    /// network node's handshakes); each copy is zeroized when dropped. Not
    /// `Clone`, so that every copy of a secret is asked for by name.
    pub fn duplicate(&self) -> LocalKeys {
        Self::new(self.signing.clone(), self.dh.clone())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The key that tags the journal's event awaiting its signature, so
    /// that only this key's holder can have written one (SPEC.md §9.6):
    /// `derive_key(JOURNAL_TAG, signing seed)`.
    pub(crate) fn journal_tag_key(&self) -> Zeroizing<[u8; 32]> {
        self.seed_key(crate::labels::JOURNAL_TAG)
    }

    /// The keys that tag the rows and the checkpoint of this member's own
    /// file, so that only this key's holder can have written them (SPEC.md
    /// §9.7): `derive_key(FILE_ROW_TAG, signing seed)` and
    /// `derive_key(FILE_CHECKPOINT_TAG, signing seed)`.
    pub(crate) fn file_keys(&self) -> crate::checkpoint::FileKeys {
        crate::checkpoint::FileKeys {
            member: self.member_id(),
            row: self.seed_key(crate::labels::FILE_ROW_TAG),
            checkpoint: self.seed_key(crate::labels::FILE_CHECKPOINT_TAG),
        }
    }

    /// `derive_key(label, signing seed)`.
    fn seed_key(&self, label: &str) -> Zeroizing<[u8; 32]> {
        use zeroize::Zeroize;
        let seed = Zeroizing::new(self.signing.to_bytes());
        let mut hasher = blake3::Hasher::new_derive_key(label);
        hasher.update(&*seed);
        let mut hash = hasher.finalize();
        let key = Zeroizing::new(*hash.as_bytes());
        // The hasher's state holds the seed, and the hash is the key.
        hasher.zeroize();
        hash.zeroize();
        key
    }

    pub(crate) fn dh_secret(&self) -> &StaticSecret {
        &self.dh
    }

    /// Writes a new key file readable by its owner only. Never overwrites.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut contents = Zeroizing::new(Vec::with_capacity(KEY_FILE_LEN));
        contents.extend_from_slice(KEY_FILE_MAGIC);
        contents.extend_from_slice(self.signing.as_bytes());
        contents.extend_from_slice(self.dh.as_bytes());
        let checksum = key_file_checksum(&contents);
        contents.extend_from_slice(&checksum);

        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io(source)
            }
        })?;
        file.write_all(&contents).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a key file written by [`LocalKeys::save`], refusing one that
    /// others may read. The format is checked first: a file that is no key
    /// file (a database, a folder, a text) is named so, whatever its
    /// permissions, since `chmod 600` would not make it one (SPEC.md §11).
    pub fn load(path: impl AsRef<Path>) -> Result<LocalKeys, KeyError> {
        let path = path.as_ref();
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let format = |detail| KeyError::Format {
            path: path.to_owned(),
            detail,
        };
        let mut file = fs::File::open(path).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        if metadata.is_dir() {
            return Err(format("a folder"));
        }
        let mut contents = Zeroizing::new(Vec::with_capacity(KEY_FILE_LEN));
        // Read one byte more than a key file holds, to notice a longer file.
        Read::by_ref(&mut file)
            .take(KEY_FILE_LEN as u64 + 1)
            .read_to_end(&mut contents)
            .map_err(io)?;
        if !contents.starts_with(KEY_FILE_MAGIC) {
            return Err(format("unknown header"));
        }
        if contents.len() != KEY_FILE_LEN {
            return Err(format("wrong length"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let (_, rest) = contents
            .split_first_chunk::<16>()
            .ok_or(format("wrong length"))?;
        let (signing, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(format("wrong length"))?;
        let (dh, checksum) = rest
            .split_first_chunk::<32>()
            .ok_or(format("wrong length"))?;
        let body = contents
            .get(..KEY_FILE_LEN - KEY_FILE_CHECKSUM_LEN)
            .ok_or(format("wrong length"))?;
        if key_file_checksum(body) != checksum {
            return Err(format("checksum mismatch: the file is damaged"));
        }
        Ok(LocalKeys::from_secret_bytes(signing, dh))
    }
}

fn key_file_checksum(body: &[u8]) -> [u8; KEY_FILE_CHECKSUM_LEN] {
    let hash = blake3::Hasher::new_derive_key(labels::KEY_FILE_CHECKSUM)
        .update(body)
        .finalize();
    let mut checksum = [0u8; KEY_FILE_CHECKSUM_LEN];
    for (dst, src) in checksum.iter_mut().zip(hash.as_bytes()) {
        *dst = *src;
    }
    checksum
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeys")
            .field("member", &self.member_id())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn save_load_round_trip_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let keys = LocalKeys::generate_with(&mut StdRng::from_seed([1; 32]));
        keys.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let loaded = LocalKeys::load(&path).unwrap();
        assert_eq!(loaded.public(), keys.public());
        assert!(matches!(keys.save(&path), Err(KeyError::Exists { .. })));
    }

    #[test]
    fn debug_shows_no_secret() {
        let keys = LocalKeys::from_secret_bytes(&[0x5a; 32], &[0x6b; 32]);
        let shown = format!("{keys:?}");
        assert!(shown.contains("redacted"));
        assert!(
            !shown.contains("5a5a") && !shown.contains("90, 90"),
            "{shown}"
        );
    }

    #[test]
    fn damaged_or_exposed_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        LocalKeys::generate_with(&mut StdRng::from_seed([2; 32]))
            .save(&path)
            .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 1;
        let damaged = dir.path().join("damaged");
        LocalKeys::generate().save(&damaged).unwrap();
        fs::write(&damaged, &bytes).unwrap();
        assert!(matches!(
            LocalKeys::load(&damaged),
            Err(KeyError::Format { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = LocalKeys::load(&path).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
            // A file that is no key file is named so, whatever its mode.
            for (name, bytes) in [("text", &b"hello\n"[..]), ("short", &KEY_FILE_MAGIC[..])] {
                let other = dir.path().join(name);
                fs::write(&other, bytes).unwrap();
                fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();
                let err = LocalKeys::load(&other).unwrap_err();
                assert!(matches!(err, KeyError::Format { .. }), "{name}: {err}");
            }
            let err = LocalKeys::load(dir.path()).unwrap_err();
            assert!(matches!(err, KeyError::Format { .. }), "{err}");
        }
    }
}
