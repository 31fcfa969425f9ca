"""``meshlog.verify``: what ``meshlog verify`` reports, as a dataclass."""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Union

from ._meshlog import Equivocation, Mesh, VerificationFailure

PathLike = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of verifying a file (``meshlog verify``).

    ``ok`` is true when every event verified and, with ``expect``, the file
    holds everything the checkpoint recorded. A file that fails verification
    is a report (``failure``), not an exception; the other fields are then
    None.
    """

    path: str
    ok: bool
    failure: Optional[VerificationFailure]
    verified_private_copy: Optional[bool] = None
    journaled: Optional[int] = None
    awaiting_signature: Optional[int] = None
    #: Events the journal held and could not replay (SPEC.md §9.6).
    journal_unreplayed: Optional[int] = None
    journal_unreplayed_offset: Optional[int] = None
    group: Optional[str] = None
    name: Optional[str] = None
    founder: Optional[str] = None
    events: Optional[int] = None
    digest: Optional[str] = None
    current_epoch: Optional[str] = None
    writer_epoch: Optional[str] = None
    needs_merge: Optional[bool] = None
    tips: List[str] = dataclasses.field(default_factory=list)
    members: Optional[int] = None
    enabled_members: Optional[int] = None
    equivocations: List[Equivocation] = dataclasses.field(default_factory=list)
    #: The checkpoint's heads the file lacks (a rollback), with ``expect``.
    missing: List[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as a dict (the failure as its message)."""
        fields = dataclasses.asdict(
            dataclasses.replace(self, failure=None, equivocations=[])
        )
        fields["failure"] = None if self.failure is None else str(self.failure)
        fields["equivocations"] = [
            {
                "author": e.author,
                "seq": e.seq,
                "events": list(e.events),
                "shape": e.shape,
                "later_branch": e.later_branch,
            }
            for e in self.equivocations
        ]
        return fields


def verify(path: PathLike, expect: Optional[bytes] = None) -> VerifyReport:
    """Opens ``path`` read-only, verifying every event, and compares it with
    ``expect`` (a ``Mesh.frontier()`` recorded earlier). Raises only when the
    check cannot run (no such file, not a meshlog file)."""
    shown = os.fspath(path)
    try:
        mesh = Mesh.open_read_only(path)
    except VerificationFailure as failure:
        return VerifyReport(path=shown, ok=False, failure=failure)
    with mesh:
        missing: List[str] = []
        if expect is not None:
            try:
                mesh.expect(expect)
            except VerificationFailure as failure:
                if failure.kind != "rolled-back":
                    raise
                missing = list(failure.missing)
        roster = mesh.roster
        return VerifyReport(
            path=shown,
            ok=not missing,
            failure=None,
            verified_private_copy=mesh.verified_private_copy,
            journaled=mesh.journaled,
            awaiting_signature=mesh.awaiting_signature,
            journal_unreplayed=mesh.journal_unreplayed,
            journal_unreplayed_offset=mesh.journal_unreplayed_offset,
            group=mesh.group,
            name=mesh.group_name,
            founder=mesh.founder,
            events=len(mesh),
            digest=mesh.digest,
            current_epoch=mesh.current_epoch,
            writer_epoch=mesh.writer_epoch,
            needs_merge=mesh.needs_merge,
            tips=mesh.tips,
            members=len(roster),
            enabled_members=sum(
                1 for entry in roster if mesh.is_member_enabled(entry.member_id)
            ),
            equivocations=mesh.equivocations(),
            missing=missing,
        )
