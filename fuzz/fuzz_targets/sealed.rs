#![no_main]
//! Hostile bytes as a sealed message (SPEC.md §16): `Sealed::from_bytes`
//! and `Mesh::open_sealed` never panic, and nothing opens but a message a
//! member really sealed, to what it opened to when it was sealed (sender,
//! epoch, associated data, plaintext, id).
//!
//! The first byte, modulo 3, chooses the input: 0, the bytes as they are;
//! 1, the bytes after the magic, group and epoch of a real message (the
//! first byte divided by 3 chooses which), so that they reach the
//! decryption; 2, byte changes to a real message (the next byte chooses
//! which; then three bytes a change: an `le16` offset and a byte to xor
//! there, 0 truncating at the offset), which must open as before if
//! nothing changed, and not open at all otherwise.
//!
//! Unlike the other targets, this one is not a shim over
//! `meshlog::fuzzing`: its fixture is built through the public API alone.

use std::num::NonZeroU32;

use libfuzzer_sys::fuzz_target;
use meshlog::{Error, LocalKeys, Mesh, MeshOptions, Opened, Padding, Role, Sealed};

/// Bytes of a sealed message before the salt: magic, group, epoch.
const BEFORE_SALT: usize = 4 + 32 + 32;

/// A message a member of the fixture really sealed, and what it opens to.
struct Message {
    sealed: Sealed,
    opened: Opened,
}

/// A small group, built once a process: the founder and one member, a
/// rotation, and messages sealed by both in three epochs.
struct Fixture {
    /// The founder's copy. The founder is in the roster of every epoch of
    /// the group, so it opens every message of it.
    founder: Mesh,
    messages: Vec<Message>,
    /// The folder of the files; dropped last.
    _dir: tempfile::TempDir,
}

fn keys(n: u8) -> LocalKeys {
    LocalKeys::from_secret_bytes(&[n; 32], &[n + 100; 32])
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut founder = MeshOptions::new()
            .insecure_seed([1; 32])
            .create(dir.path().join("founder.redb"), keys(1), "fuzz")
            .expect("create");
        founder.set_enabled(true).expect("enable");
        // In the genesis epoch, whose roster is the founder alone.
        let mut sealed = vec![founder.seal(b"in the genesis epoch", b"").expect("seal")];
        founder
            .add_member(keys(2).package(), Role::Member)
            .expect("add");
        let mut member = Mesh::join(
            dir.path().join("member.redb"),
            keys(2),
            &founder.export_all(),
        )
        .expect("join");
        member.set_enabled(true).expect("enable");
        sealed.push(
            founder
                .seal_with(b"from the founder", b"ops", Padding::None)
                .expect("seal"),
        );
        sealed.push(member.seal(b"from the member, padded", b"").expect("seal"));
        founder.refresh("fuzz").expect("refresh");
        member
            .ingest(&founder.export(&member.frontier()))
            .expect("sync");
        let block = NonZeroU32::new(64).expect("non-zero");
        sealed.push(
            member
                .seal_with(&[0x5a; 300], b"a longer associated data", Padding::Multiple(block))
                .expect("seal"),
        );
        sealed.push(founder.seal(b"", b"").expect("seal"));
        drop(member);
        let messages = sealed
            .into_iter()
            .map(|sealed| {
                let opened = founder
                    .open_sealed(&sealed)
                    .expect("a member's message opens");
                Message { sealed, opened }
            })
            .collect();
        Fixture {
            founder,
            messages,
            _dir: dir,
        }
    }

    fn check(&self, data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        match mode % 3 {
            0 => self.open_bytes(rest),
            1 => {
                let real = &self.messages[usize::from(mode / 3) % self.messages.len()];
                let bytes = [&real.sealed.as_bytes()[..BEFORE_SALT], rest].concat();
                self.open_bytes(&bytes);
            }
            _ => self.open_mutated(rest),
        }
    }

    /// `bytes` parsed as a sealed message, then opened: an error about the
    /// message, or a message a member sealed, opened as it was.
    fn open_bytes(&self, bytes: &[u8]) {
        let parsed = Sealed::from_bytes(bytes);
        assert_eq!(
            parsed,
            Sealed::from_vec(bytes.to_vec()),
            "from_bytes and from_vec disagree"
        );
        let Ok(sealed) = parsed else {
            return;
        };
        assert_eq!(sealed.as_bytes(), bytes);
        assert!(sealed.padded_len() >= 16 + 64 + 4, "no room for a sender");
        assert_eq!(
            sealed.as_bytes().len(),
            BEFORE_SALT + 32 + 4 + sealed.associated_data().len() + sealed.padded_len() + 16,
            "the parts do not add up"
        );
        match self.founder.open_sealed(&sealed) {
            Ok(opened) => {
                let Some(message) = self
                    .messages
                    .iter()
                    .find(|message| message.sealed == sealed)
                else {
                    panic!("bytes no member sealed opened: {opened:?}");
                };
                assert_eq!(opened, message.opened);
            }
            Err(Error::Seal(_)) => {}
            Err(other) => panic!("opening failed, and not for the message's sake: {other}"),
        }
    }

    /// A real message with bytes changed: it opens as before if no byte
    /// changed, and not at all otherwise.
    fn open_mutated(&self, data: &[u8]) {
        let Some((&which, changes)) = data.split_first() else {
            return;
        };
        let message = &self.messages[usize::from(which) % self.messages.len()];
        let original = message.sealed.as_bytes();
        let mut bytes = original.to_vec();
        for change in changes.chunks_exact(3) {
            if bytes.is_empty() {
                break;
            }
            let at = usize::from(u16::from_le_bytes([change[0], change[1]])) % bytes.len();
            match change[2] {
                0 => bytes.truncate(at),
                xor => bytes[at] ^= xor,
            }
        }
        let unchanged = bytes == original;
        match Sealed::from_bytes(&bytes) {
            Ok(sealed) => match self.founder.open_sealed(&sealed) {
                Ok(opened) => {
                    assert!(unchanged, "a changed message opened: {opened:?}");
                    assert_eq!(opened, message.opened);
                }
                Err(error) => {
                    assert!(!unchanged, "a member's message did not open: {error}");
                    assert!(matches!(error, Error::Seal(_)), "{error}");
                }
            },
            Err(error) => assert!(!unchanged, "a member's message did not parse: {error}"),
        }
    }
}

thread_local! {
    /// Built on first use, once a process (libFuzzer runs the target on one
    /// thread); a `Mesh` is not `Sync`, so it is not shared between threads.
    static FIXTURE: Fixture = Fixture::new();
}

fuzz_target!(|data: &[u8]| FIXTURE.with(|fixture| fixture.check(data)));
