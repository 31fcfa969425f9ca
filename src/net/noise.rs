//! Noise for the network handshake (SPEC.md §17.2): snow's state machine
//! over meshlog's own primitives, so that one version of each crate does the
//! curve, the cipher and the randomness.
//!
//! `Noise_XX_25519_ChaChaPoly_SHA256`: the member's X25519 key is the static
//! key, which each side learns from the other during the handshake.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use rand::TryRng;
use sha2::Digest;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroize;

/// The Noise protocol name (SPEC.md §17.2).
pub(crate) const PROTOCOL: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// Resolves exactly the primitives of [`PROTOCOL`], and nothing else.
pub(crate) struct Resolver;

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SystemRandom))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        matches!(choice, DHChoice::Curve25519).then(|| Box::new(X25519::default()) as Box<dyn Dh>)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        matches!(choice, HashChoice::SHA256).then(|| Box::new(Sha256::default()) as Box<dyn Hash>)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        matches!(choice, CipherChoice::ChaChaPoly)
            .then(|| Box::new(ChaChaPoly::default()) as Box<dyn Cipher>)
    }
}

/// A builder for [`PROTOCOL`] on [`Resolver`].
pub(crate) fn builder<'a>() -> snow::Builder<'a> {
    // The name is a constant this module pins; a test parses it.
    #[allow(clippy::expect_used)]
    let params = PROTOCOL.parse().expect("the Noise protocol name parses");
    snow::Builder::with_resolver(params, Box::new(Resolver))
}

/// Ephemeral keys from the operating system, as the sealed salts are: a
/// generator inside the process would repeat after a fork.
struct SystemRandom;

impl Random for SystemRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand::rngs::SysRng
            .try_fill_bytes(dest)
            .map_err(|_| snow::Error::Rng)
    }
}

#[derive(Default)]
struct X25519 {
    secret: [u8; 32],
    public: [u8; 32],
}

impl Drop for X25519 {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow hands at least priv_len bytes; fewer leave the key unset,
        // and the handshake then fails on a zero shared secret.
        if let Some(secret) = privkey.first_chunk::<32>().copied() {
            self.secret = secret;
            self.public = x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES);
        }
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut secret = [0u8; 32];
        rng.try_fill_bytes(&mut secret)?;
        self.set(&secret);
        secret.zeroize();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        // snow passes its largest key buffer; a 25519 key is its first 32 bytes.
        let public = *pubkey.first_chunk::<32>().ok_or(snow::Error::Dh)?;
        let shared = crate::agreement::x25519(&self.secret, &public);
        // A low-order point gives an all-zero secret that the peer's key did
        // not contribute to: refused (SPEC.md §17.2).
        let contributory = crate::agreement::is_contributory(&shared);
        if contributory && let Some(out) = out.get_mut(..32) {
            out.copy_from_slice(&*shared);
        }
        if contributory {
            Ok(())
        } else {
            Err(snow::Error::Dh)
        }
    }
}

#[derive(Default)]
struct ChaChaPoly {
    key: [u8; 32],
}

impl Drop for ChaChaPoly {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Noise's ChaChaPoly nonce: four zero bytes, then the counter little-endian.
fn noise_nonce(counter: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    let (_, tail) = nonce.split_at_mut(4);
    tail.copy_from_slice(&counter.to_le_bytes());
    Nonce::from(nonce)
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }

    fn set(&mut self, key: &[u8; 32]) {
        self.key = *key;
    }

    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        // snow sizes `out` as plaintext plus tag; a shorter one writes
        // nothing, which the peer then fails to decrypt.
        let total = plaintext.len() + 16;
        let Some(out) = out.get_mut(..total) else {
            return 0;
        };
        let (body, tag) = out.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let cipher = ChaCha20Poly1305::new(&self.key.into());
        match cipher.encrypt_inout_detached(&noise_nonce(nonce), authtext, body.into()) {
            Ok(computed) => {
                tag.copy_from_slice(&computed);
                total
            }
            Err(_) => 0,
        }
    }

    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let body_len = ciphertext
            .len()
            .checked_sub(16)
            .ok_or(snow::Error::Decrypt)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let out = out.get_mut(..body_len).ok_or(snow::Error::Decrypt)?;
        out.copy_from_slice(body);
        let tag = Tag::try_from(tag).map_err(|_| snow::Error::Decrypt)?;
        let cipher = ChaCha20Poly1305::new(&self.key.into());
        cipher
            .decrypt_inout_detached(&noise_nonce(nonce), authtext, out.into(), &tag)
            .map_err(|_| {
                out.zeroize();
                snow::Error::Decrypt
            })?;
        Ok(body_len)
    }
}

#[derive(Default)]
struct Sha256 {
    hasher: sha2::Sha256,
}

impl Hash for Sha256 {
    fn name(&self) -> &'static str {
        "SHA256"
    }

    fn block_len(&self) -> usize {
        64
    }

    fn hash_len(&self) -> usize {
        32
    }

    fn reset(&mut self) {
        self.hasher = sha2::Sha256::default();
    }

    fn input(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    fn result(&mut self, out: &mut [u8]) {
        let digest = self.hasher.finalize_reset();
        if let Some(out) = out.get_mut(..32) {
            out.copy_from_slice(&digest);
        }
    }
}
