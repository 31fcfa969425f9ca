"""The Python design's function names, on meshlog.

meshlog began as a Python module over SQLite: ``init_identity``,
``rotate_epoch``, ``recover_epoch_secret``, ``set_enabled``/``is_enabled``,
``roster_at`` and ``current_epoch``. This module offers those names and
shapes on top of meshlog, so that an application can switch by changing an
import::

    from meshlog import compat as mesh

    me = mesh.init_identity("state/mesh.redb", group_name="ops")
    mesh.set_enabled(True)
    mesh.rotate_epoch(new_members=[me["member_id"], bobs_package],
                      reason="bob joins", actor_member_id=me["member_id"])
    secret = mesh.recover_epoch_secret(epoch_id=mesh.current_epoch())

The module-level functions act on the identity the last ``init_identity``
(or ``join_identity``) opened in this process; ``Identity`` objects offer the
same calls for a process that holds several.

What cannot be hidden, and differs from the design it replaces:

* **Member ids are derived from keys.** A member id is a hash of the
  member's signing key (hex), not a name the application picks. A new member
  is named by its *key package* (``LocalKeys.public()``), which it signs
  itself; an admin cannot substitute keys.
* **Keys live in a file beside the mesh** (``<path>.keys``, mode 0600), not
  in a table: the mesh file holds no secret and can go to an auditor as it
  is.
* **Authority is enforced, not left to the caller.** ``actor_member_id``
  must be the local member, and the rules decide what it may do (owners >
  admins > members; nobody changes its own entry): anything else raises
  ``meshlog.Refusal``.
* **Epoch ids are rotation hashes** (hex strings), not counters, and
  ``current_epoch()`` is None while concurrent rotations wait for a merge
  (``Identity.mesh.merge()``).
* **Nothing is rewritten.** The audit table is the log itself
  (``Identity.mesh.log()``), and a roster of an earlier epoch is read from
  that epoch's rotation.
* **Copies move as batches** (``Identity.mesh.export``/``ingest``) or over
  the network (``Identity.mesh.sync``); a member's first copy comes from
  ``join_identity``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Union

from ._meshlog import LocalKeys, Mesh, Refusal, package_member_id

PathLike = Union[str, "os.PathLike[str]"]
Member = Union[str, Dict[str, Any]]


def _keys_path(path: PathLike) -> str:
    return os.fspath(path) + ".keys"


def _not_the_actor(message: str, actor: str) -> Refusal:
    """A refusal of compat's own: meshlog signs as the local member only."""
    error = Refusal(message)
    for name in ("seq", "hash", "author", "rule", "rule_id", "peer", "missing", "epoch"):
        setattr(error, name, None)
    error.class_name = "refusal"
    error.kind = "not-the-actor"
    error.message = message
    error.member = actor
    return error


def _keys_for(path: PathLike) -> LocalKeys:
    """The identity's keys: loaded, or made and saved (0600) if none. A mesh
    file without its keys is an error: new keys would be a stranger."""
    keys_path = _keys_path(path)
    if os.path.exists(keys_path):
        return LocalKeys.load(keys_path)
    if os.path.exists(os.fspath(path)):
        raise FileNotFoundError(f"{keys_path}: the keys of the mesh {os.fspath(path)} are missing")
    keys = LocalKeys.generate()
    keys.save(keys_path)
    return keys


class Identity:
    """One local identity: a mesh file and the member's keys beside it."""

    def __init__(self, mesh: Mesh, keys: LocalKeys):
        #: The meshlog ``Mesh`` underneath, for everything else.
        self.mesh = mesh
        self.keys = keys

    @property
    def member_id(self) -> str:
        return self.keys.member_id

    def describe(self) -> Dict[str, Any]:
        return {
            "member_id": self.member_id,
            "group_id": self.mesh.group,
            "group_name": self.mesh.group_name,
            "key_package": self.keys.public(),
            "keys_path": _keys_path(self.mesh.path),
        }

    def is_enabled(self) -> bool:
        """Whether the local member's flag is on (off until it turns it on)."""
        return self.mesh.enabled

    def set_enabled(self, enabled: bool) -> str:
        """Turns the local member's flag on or off; returns the event's hash."""
        return self.mesh.set_enabled(enabled)

    def current_epoch(self) -> Optional[str]:
        """The current epoch's id, or None while a merge is needed."""
        return self.mesh.current_epoch

    def roster_at(self, epoch_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """The members of an epoch (the current one by default), as rows."""
        if epoch_id is None:
            entries = self.mesh.roster
        else:
            info = self.mesh.epoch(epoch_id)
            if info is None:
                raise KeyError(f"no epoch {epoch_id}")
            entries = info.roster
        return [
            {
                "member_id": entry.member_id,
                "role": entry.role,
                "signing_key": entry.signing_key,
                "dh_key": entry.dh_key,
            }
            for entry in entries
        ]

    def rotate_epoch(
        self,
        new_members: Iterable[Member],
        reason: str = "",
        actor_member_id: Optional[str] = None,
    ) -> str:
        """A new epoch whose roster is ``new_members``; returns its id.

        Each member is a key package (to add it), a member id (to keep it),
        or a dict with ``package`` or ``member_id`` and optionally ``role``
        ("member" by default; a changed role is set). Members of the current
        roster that are not named are removed. A fresh secret is wrapped to
        exactly the new roster. The actor must name itself: nobody removes
        or re-roles itself (``meshlog.Refusal``, kind ``void-change``), and
        the rules decide what its role may change. A package of a member
        already in the roster keeps it as it is; to carry a newer package
        in, use ``Identity.mesh.rotate(update_keys=...)``.
        """
        if actor_member_id is not None and actor_member_id != self.member_id:
            raise _not_the_actor(
                f"actor {actor_member_id} is not the local member {self.member_id}:"
                " meshlog signs every rotation with its author's own key",
                actor_member_id,
            )
        current = {entry.member_id: entry.role for entry in self.mesh.roster}
        named = set()
        add: List[Any] = []
        set_role: Dict[str, str] = {}
        for member in new_members:
            if isinstance(member, dict):
                package = member.get("package")
                member_id = member.get("member_id")
                role = member.get("role")
            elif member in current:
                package, member_id, role = None, member, None
            else:
                package, member_id, role = member, None, None
            if package is not None:
                member_id = package_member_id(package)
            if member_id in current:
                named.add(member_id)
                if role is not None and role != current[member_id]:
                    set_role[member_id] = role
            elif package is not None:
                named.add(member_id)
                add.append((package, role or "member"))
            else:
                raise ValueError(
                    f"{member_id} is not in the roster: name a new member by its key package"
                )
        remove = [member_id for member_id in current if member_id not in named]
        return self.mesh.rotate(reason, add=add, remove=remove, set_role=set_role)

    def recover_epoch_secret(self, epoch_id: Optional[str] = None) -> bytes:
        """The 32-byte secret of an epoch the local member is in (the one it
        writes under by default)."""
        if epoch_id is None:
            return self.mesh.current_secret().expose()
        return self.mesh.epoch_secret(epoch_id).expose()

    def close(self) -> None:
        self.mesh.close()


_current: Optional[Identity] = None


def _identity() -> Identity:
    if _current is None:
        raise RuntimeError("no identity: call init_identity(path) first")
    return _current


def init_identity(path: PathLike, group_name: str = "mesh") -> Dict[str, Any]:
    """Opens the identity at ``path``, founding a group named ``group_name``
    if the file does not exist yet (its keys are made and saved beside it).
    Later module-level calls act on it. Returns its description."""
    global _current
    close()
    keys = _keys_for(path)
    if os.path.exists(os.fspath(path)):
        mesh = Mesh.open(path, keys)
    else:
        mesh = Mesh.create(path, keys, group_name)
    _current = Identity(mesh, keys)
    return _current.describe()


def join_identity(path: PathLike, batch: bytes) -> Dict[str, Any]:
    """A member's first copy at ``path`` from a batch a member exported
    (``Identity.mesh.export()``), with the keys beside ``path`` (made by
    ``member_keys`` or ``init_identity``). Later calls act on it."""
    global _current
    close()
    keys = _keys_for(path)
    _current = Identity(Mesh.join(path, keys, batch), keys)
    return _current.describe()


def member_keys(path: PathLike) -> str:
    """Makes (or loads) the keys of a member-to-be at ``path`` and returns its
    key package, which an admin's ``rotate_epoch`` takes."""
    return _keys_for(path).public()


def identity() -> Identity:
    """The identity the module-level calls act on."""
    return _identity()


def is_enabled() -> bool:
    return _identity().is_enabled()


def set_enabled(enabled: bool) -> str:
    return _identity().set_enabled(enabled)


def current_epoch() -> Optional[str]:
    return _identity().current_epoch()


def roster_at(epoch_id: Optional[str] = None) -> List[Dict[str, Any]]:
    return _identity().roster_at(epoch_id)


def rotate_epoch(
    new_members: Iterable[Member],
    reason: str = "",
    actor_member_id: Optional[str] = None,
) -> str:
    return _identity().rotate_epoch(new_members, reason, actor_member_id)


def recover_epoch_secret(epoch_id: Optional[str] = None) -> bytes:
    return _identity().recover_epoch_secret(epoch_id)


def close() -> None:
    """Closes the current identity's mesh."""
    global _current
    if _current is not None:
        _current.close()
        _current = None
