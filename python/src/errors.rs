//! The library's errors as Python exceptions: one base, `MeshlogError`,
//! and one subclass per class of the library (`ErrorClass`), each carrying
//! what the Rust error names.

use meshlog::net::NetError;
use meshlog::{Error, ErrorClass, EventHash, SealError, SecretError};
use pyo3::prelude::*;
use pyo3::types::PyType;

pyo3::create_exception!(
    meshlog,
    MeshlogError,
    pyo3::exceptions::PyException,
    "Every error of meshlog. Attributes: class_name, kind, message, and, where the \
     library names them, seq, hash, author, rule, rule_id, peer, missing, member, epoch \
     (else None)."
);
pyo3::create_exception!(
    meshlog,
    VerificationFailure,
    MeshlogError,
    "The data is wrong: events that break a rule, an incomplete batch, a rollback, \
     a sealed message that does not open. Nothing was written."
);
pyo3::create_exception!(
    meshlog,
    Refusal,
    MeshlogError,
    "The rules say no to what was asked of the local member. Nothing was written."
);
pyo3::create_exception!(
    meshlog,
    CouldNotRun,
    MeshlogError,
    "The operation could not run: no such file, a lock, I/O, a key file, a \
     read-only or closed mesh, the network."
);

/// An error on its way to Python, made without the GIL: what the exception
/// will carry (boxed: results stay small).
#[derive(Debug)]
pub(crate) struct Failure(Box<Details>);

#[derive(Debug)]
struct Details {
    class: ErrorClass,
    kind: &'static str,
    message: String,
    seq: Option<u64>,
    hash: Option<String>,
    author: Option<String>,
    rule: Option<String>,
    rule_id: Option<&'static str>,
    peer: Option<String>,
    missing: Option<Vec<String>>,
    member: Option<String>,
    epoch: Option<String>,
}

impl Failure {
    fn plain(class: ErrorClass, kind: &'static str, message: String) -> Failure {
        Failure(Box::new(Details {
            class,
            kind,
            message,
            seq: None,
            hash: None,
            author: None,
            rule: None,
            rule_id: None,
            peer: None,
            missing: None,
            member: None,
            epoch: None,
        }))
    }

    /// A handle used after `close()`.
    pub(crate) fn closed() -> Failure {
        Failure::plain(
            ErrorClass::CouldNotRun,
            "closed",
            "the mesh is closed".into(),
        )
    }

    /// Something of this process failed (a task, a lock).
    pub(crate) fn internal(message: impl Into<String>) -> Failure {
        Failure::plain(ErrorClass::CouldNotRun, "internal", message.into())
    }

    /// The mesh is in use by a network call of another thread.
    pub(crate) fn busy(message: impl Into<String>) -> Failure {
        Failure::plain(ErrorClass::CouldNotRun, "busy", message.into())
    }

    /// Raises the exception of this failure's class.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        let details = self.0;
        let class: Bound<'_, PyType> = match details.class {
            ErrorClass::VerificationFailure => py.get_type::<VerificationFailure>(),
            ErrorClass::Refusal => py.get_type::<Refusal>(),
            ErrorClass::CouldNotRun => py.get_type::<CouldNotRun>(),
        };
        let error = PyErr::from_type(class, details.message.clone());
        let value = error.value(py);
        let set = || -> PyResult<()> {
            value.setattr("class_name", details.class.name())?;
            value.setattr("kind", details.kind)?;
            value.setattr("message", details.message.as_str())?;
            value.setattr("seq", details.seq)?;
            value.setattr("hash", details.hash.as_deref())?;
            value.setattr("author", details.author.as_deref())?;
            value.setattr("rule", details.rule.as_deref())?;
            value.setattr("rule_id", details.rule_id)?;
            value.setattr("peer", details.peer.as_deref())?;
            value.setattr("missing", details.missing.as_deref())?;
            value.setattr("member", details.member.as_deref())?;
            value.setattr("epoch", details.epoch.as_deref())?;
            Ok(())
        };
        if let Err(failed) = set() {
            return failed;
        }
        error
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let mut failure = Failure::plain(error.class(), error.kind(), error.to_string());
        if let Some(rejection) = error.rejection() {
            failure.0.seq = Some(rejection.seq);
            // An event refused before it was made has no hash.
            failure.0.hash =
                (rejection.hash != EventHash::ZERO).then(|| rejection.hash.to_string());
            failure.0.author = Some(rejection.author.to_string());
            failure.0.rule = Some(rejection.rule.to_string());
        }
        if let Error::VoidChange { reason, .. } = &error {
            failure.0.rule = Some(reason.to_string());
        }
        failure.0.rule_id = error.rule_id();
        match &error {
            Error::RolledBack { missing } => {
                failure.0.missing = Some(missing.iter().map(ToString::to_string).collect());
            }
            Error::VoidChange { member, .. }
            | Error::NotInRoster { member }
            | Error::Disabled { member } => failure.0.member = Some(member.to_string()),
            Error::Secret(SecretError::UnknownEpoch(epoch))
            | Error::Seal(SealError::UnknownEpoch(epoch) | SealError::DecryptFailed { epoch }) => {
                failure.0.epoch = Some(epoch.to_string());
            }
            Error::Secret(SecretError::NotARecipient { epoch, member })
            | Error::Seal(SealError::NotAMember { epoch, member }) => {
                failure.0.epoch = Some(epoch.to_string());
                failure.0.member = Some(member.to_string());
            }
            Error::Seal(SealError::UnknownSender { sender, epoch }) => {
                failure.0.epoch = Some(epoch.to_string());
                failure.0.member = Some(sender.to_string());
            }
            Error::Seal(
                SealError::BadSignature { sender } | SealError::SenderMismatch { sender, .. },
            ) => failure.0.member = Some(sender.to_string()),
            _ => {}
        }
        failure
    }
}

impl From<meshlog::KeyError> for Failure {
    fn from(error: meshlog::KeyError) -> Failure {
        Failure::from(Error::from(error))
    }
}

impl From<NetError> for Failure {
    fn from(error: NetError) -> Failure {
        let message = error.to_string();
        let peer = error.peer().map(str::to_owned);
        let (class, kind) = (error.class(), error.kind());
        let mut failure = match error {
            NetError::Ingest { source, .. } | NetError::Mesh(source) => Failure::from(*source),
            _ => Failure::plain(class, kind, String::new()),
        };
        failure.0.message = message;
        failure.0.peer = peer;
        failure
    }
}

/// A malformed argument: Python's own `ValueError`.
pub(crate) fn value_error(what: &str, error: impl std::fmt::Display) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("{what}: {error}"))
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("MeshlogError", py.get_type::<MeshlogError>())?;
    module.add("VerificationFailure", py.get_type::<VerificationFailure>())?;
    module.add("Refusal", py.get_type::<Refusal>())?;
    module.add("CouldNotRun", py.get_type::<CouldNotRun>())?;
    Ok(())
}
