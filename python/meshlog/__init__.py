"""meshlog from Python: a group's membership and epoch secrets as a signed,
hash-linked log that every member's copy verifies.

Everything here is the Rust crate's (``meshlog._meshlog``); this package adds
only Python's shapes: a ``verify`` that returns a dataclass, and the
migration module ``meshlog.compat``.

Errors are ``MeshlogError`` and one subclass per class of the library:
``VerificationFailure`` (the data is wrong), ``Refusal`` (the rules say no)
and ``CouldNotRun``. Each carries ``kind``, ``message`` and, where the
library names them, ``seq``, ``hash``, ``author``, ``rule`` and ``rule_id``.
"""

from ._meshlog import (
    FORMAT_VERSION,
    CouldNotRun,
    EpochInfo,
    EpochSecret,
    Equivocation,
    Ingested,
    LocalKeys,
    LogEntry,
    Mesh,
    MeshlogError,
    Opened,
    Plaintext,
    Refusal,
    RosterEntry,
    Sealed,
    SyncReport,
    VerificationFailure,
    __version__,
    package_member_id,
)
from ._verify import VerifyReport, verify

__all__ = [
    "FORMAT_VERSION",
    "CouldNotRun",
    "EpochInfo",
    "EpochSecret",
    "Equivocation",
    "Ingested",
    "LocalKeys",
    "LogEntry",
    "Mesh",
    "MeshlogError",
    "Opened",
    "Plaintext",
    "Refusal",
    "RosterEntry",
    "Sealed",
    "SyncReport",
    "VerificationFailure",
    "VerifyReport",
    "__version__",
    "package_member_id",
    "verify",
]
