//! `Mesh`: the Rust `Mesh` from Python. Every call releases the GIL while
//! the library works; a writable mesh sits behind a network `Node`, so that
//! its writes reach the peers it serves.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use meshlog::net::{self, NetOptions, Node};
use meshlog::{
    Batch, Change, EventHash, Frontier, GroupId, KeyPackage, MemberId, Padding, Role, Sealed,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{PySealed, bytes_of};
use crate::errors::{Failure, value_error};
use crate::keys::{PyEpochSecret, PyLocalKeys};
use crate::runtime;
use crate::values;

/// The handle's state.
enum State {
    /// Writable, with the local member's keys: behind a node, which serves
    /// and syncs it.
    Node(Node),
    /// Opened read-only.
    ReadOnly(Box<meshlog::Mesh>),
    /// After `close()`.
    Closed,
}

/// A server running for this mesh.
struct Serving {
    address: SocketAddr,
    task: tokio::task::JoinHandle<Result<(), net::NetError>>,
}

/// A mesh on one file: the local member's copy of the group. Use it as a
/// context manager, or call `close()`.
#[pyclass(module = "meshlog._meshlog", frozen)]
pub(crate) struct Mesh {
    state: Mutex<State>,
    serving: Mutex<Option<Serving>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in a library call poisons the lock; what it guards is still
    // a consistent handle (the library writes in transactions).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn hash(text: &str) -> PyResult<EventHash> {
    text.parse()
        .map_err(|error| value_error("an event hash", error))
}

fn member(text: &str) -> PyResult<MemberId> {
    text.parse()
        .map_err(|error| value_error("a member id", error))
}

fn role(text: &str) -> PyResult<Role> {
    text.parse().map_err(|error| value_error("a role", error))
}

fn package(text: &str) -> PyResult<KeyPackage> {
    text.parse()
        .map_err(|error| value_error("a key package", error))
}

/// Resolves "host:port" without the GIL (a name lookup may take a while).
fn address(py: Python<'_>, text: &str) -> PyResult<SocketAddr> {
    py.detach(|| match text.to_socket_addrs() {
        Ok(mut addresses) => addresses
            .next()
            .ok_or_else(|| "it resolves to nothing".to_string()),
        Err(error) => Err(error.to_string()),
    })
    .map_err(|error| value_error("an address", error))
}

fn batch(bytes: &[u8]) -> PyResult<Batch> {
    Batch::from_bytes(bytes)
        .map_err(|error| Failure::from(meshlog::Error::from(error)).into_py_any())
}

fn frontier(bytes: &[u8]) -> PyResult<Frontier> {
    Frontier::from_bytes(bytes).map_err(|error| value_error("a frontier", error))
}

impl Failure {
    /// For a conversion outside any call's GIL scope.
    fn into_py_any(self) -> PyErr {
        Python::attach(|py| self.into_py(py))
    }
}

impl Mesh {
    fn writable(mesh: meshlog::Mesh) -> Result<Mesh, Failure> {
        let node = Node::new(mesh, NetOptions::new())?;
        Ok(Mesh::with_state(State::Node(node)))
    }

    fn with_state(state: State) -> Mesh {
        Mesh {
            state: Mutex::new(state),
            serving: Mutex::new(None),
        }
    }

    /// Runs `f` on the library's mesh, without the GIL.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut meshlog::Mesh) -> meshlog::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| self.with_mesh(f))
            .map_err(|failure| failure.into_py(py))
    }

    fn with_mesh<T>(
        &self,
        f: impl FnOnce(&mut meshlog::Mesh) -> meshlog::Result<T>,
    ) -> Result<T, Failure> {
        let node = {
            let mut state = lock(&self.state);
            match &mut *state {
                State::ReadOnly(mesh) => return f(mesh).map_err(Failure::from),
                State::Node(node) => node.clone(),
                State::Closed => return Err(Failure::closed()),
            }
        };
        // The node's own lock, not ours: another thread's sync goes on.
        Ok(node.with_mesh(f)??)
    }

    /// The node of a writable mesh, for a network call. A node that
    /// `stop_serving` stopped while a session still held it is replaced
    /// first: a stopped node would end every session at once.
    fn node(&self) -> Result<Node, Failure> {
        let mut state = lock(&self.state);
        renew(&mut state)?;
        match &*state {
            State::Node(node) => Ok(node.clone()),
            State::ReadOnly(_) => Err(Failure::from(meshlog::Error::ReadOnly)),
            State::Closed => Err(Failure::closed()),
        }
    }

    /// Stops the server, if one runs, and puts a fresh node in place of the
    /// stopped one. Holds the server's lock throughout, so that a `serve`
    /// of another thread waits for it. Raises what ended the server, if it
    /// ended on an error of its own.
    fn stop_server(&self) -> Result<(), Failure> {
        let mut serving = lock(&self.serving);
        let Some(running) = serving.take() else {
            return Ok(());
        };
        if let State::Node(node) = &*lock(&self.state) {
            node.stop();
        }
        let runtime = runtime()?;
        let ended = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), running.task).await });
        renew(&mut lock(&self.state))?;
        match ended {
            Ok(Ok(Err(error))) => Err(Failure::from(error)),
            _ => Ok(()),
        }
    }
}

/// Replaces a stopped node by a fresh one over the same mesh, once the
/// stopped node's sessions have let go of it (they do soon after a stop).
fn renew(state: &mut State) -> Result<(), Failure> {
    let State::Node(node) = &*state else {
        return Ok(());
    };
    if !node.is_stopped() {
        return Ok(());
    }
    let State::Node(stopped) = std::mem::replace(state, State::Closed) else {
        return Ok(());
    };
    match into_mesh_soon(stopped) {
        Ok(mesh) => {
            *state = State::Node(Node::new(mesh, NetOptions::new())?);
            Ok(())
        }
        Err(stopped) => {
            *state = State::Node(stopped);
            Err(Failure::busy(
                "the stopped server's sessions still hold the mesh; try again",
            ))
        }
    }
}

/// `node`'s mesh once no other handle holds the node: a stopped server's
/// sessions, or another thread's call, let go within moments. The node
/// back if they have not after 5 s.
fn into_mesh_soon(mut node: Node) -> Result<meshlog::Mesh, Node> {
    for _ in 0..200 {
        match node.into_mesh() {
            Ok(mesh) => return Ok(mesh),
            Err(back) => {
                node = back;
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
    Err(node)
}

impl Drop for Mesh {
    /// A mesh dropped while serving stops its server, which then lets go
    /// of the file.
    fn drop(&mut self) {
        let serving = self
            .serving
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if serving.is_some()
            && let State::Node(node) = self
                .state
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            node.stop();
        }
    }
}

#[pymethods]
impl Mesh {
    /// Founds a group: a new file at `path`, `keys`' member its owner.
    #[staticmethod]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        keys: &PyLocalKeys,
        group_name: &str,
    ) -> PyResult<Mesh> {
        let keys = keys.copy();
        py.detach(|| {
            let mesh = meshlog::Mesh::create(&path, keys, group_name)?;
            Mesh::writable(mesh)
        })
        .map_err(|failure| failure.into_py(py))
    }

    /// Opens and verifies a file for writing as `keys`' member, whose copy
    /// it must be unless `shared_copy` (SPEC.md §9.1). With `feed_mark`
    /// (a path: `feed_mark_path(key_file)`), writes are refused on a copy
    /// older than the member's feed unless `accept_restored_copy` (§11.2).
    #[staticmethod]
    #[pyo3(signature = (path, keys, *, shared_copy = false, feed_mark = None, accept_restored_copy = false))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        keys: &PyLocalKeys,
        shared_copy: bool,
        feed_mark: Option<PathBuf>,
        accept_restored_copy: bool,
    ) -> PyResult<Mesh> {
        let keys = keys.copy();
        let mut options = meshlog::MeshOptions::new()
            .shared_copy(shared_copy)
            .accept_restored_copy(accept_restored_copy);
        if let Some(feed_mark) = feed_mark {
            options = options.feed_mark(feed_mark);
        }
        py.detach(|| Mesh::writable(options.open(&path, keys)?))
            .map_err(|failure| failure.into_py(py))
    }

    /// Opens and verifies a file that this handle never writes (an
    /// auditor's copy, a live file another process writes); with `keys`,
    /// it recovers and seals as that member.
    #[staticmethod]
    #[pyo3(signature = (path, keys = None))]
    fn open_read_only(py: Python<'_>, path: PathBuf, keys: Option<&PyLocalKeys>) -> PyResult<Mesh> {
        // With keys, the member's secrets are recovered from a file that
        // stays untouched.
        let keys = keys.map(PyLocalKeys::copy);
        py.detach(|| {
            meshlog::MeshOptions::new()
                .open_read_only(&path, keys)
                .map_err(Failure::from)
        })
        .map(|mesh| Mesh::with_state(State::ReadOnly(Box::new(mesh))))
        .map_err(|failure| failure.into_py(py))
    }

    /// A new peer's file from a batch (bytes) holding the genesis.
    #[staticmethod]
    fn join(py: Python<'_>, path: PathBuf, keys: &PyLocalKeys, batch: &[u8]) -> PyResult<Mesh> {
        let keys = keys.copy();
        let batch = self::batch(batch)?;
        py.detach(|| Mesh::writable(meshlog::Mesh::join(&path, keys, &batch)?))
            .map_err(|failure| failure.into_py(py))
    }

    /// A new peer's file fetched from a member who serves at `peer`
    /// ("host:port"). With `group` (hex), a server of any other group is
    /// refused. Returns the mesh and a `SyncReport`.
    #[staticmethod]
    #[pyo3(signature = (path, keys, peer, group = None))]
    fn join_peer(
        py: Python<'_>,
        path: PathBuf,
        keys: &PyLocalKeys,
        peer: &str,
        group: Option<&str>,
    ) -> PyResult<(Mesh, values::SyncReport)> {
        let keys = keys.copy();
        let peer = address(py, peer)?;
        let group: Option<GroupId> = group
            .map(|group| {
                group
                    .parse()
                    .map_err(|error| value_error("a group id", error))
            })
            .transpose()?;
        py.detach(|| {
            let runtime = runtime()?;
            let (mesh, report) =
                runtime.block_on(net::join(&path, keys, peer, group, NetOptions::new()))?;
            Ok((Mesh::writable(mesh)?, values::SyncReport::from(report)))
        })
        .map_err(|failure: Failure| failure.into_py(py))
    }

    /// Closes the file (a server of it stops first). Later calls raise
    /// `CouldNotRun`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            self.stop_server()?;
            let mut state = lock(&self.state);
            let mesh = match std::mem::replace(&mut *state, State::Closed) {
                State::Node(node) => match into_mesh_soon(node) {
                    Ok(mesh) => mesh,
                    Err(node) => {
                        *state = State::Node(node);
                        return Err(Failure::busy(
                            "another thread's call (a sync, say) still uses this mesh",
                        ));
                    }
                },
                State::ReadOnly(mesh) => *mesh,
                State::Closed => return Ok(()),
            };
            mesh.close().map_err(Failure::from)
        })
        .map_err(|failure| failure.into_py(py))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| matches!(*lock(&self.state), State::Closed))
    }

    /// Whether the handle never writes.
    #[getter]
    fn read_only(&self, py: Python<'_>) -> bool {
        py.detach(|| matches!(*lock(&self.state), State::ReadOnly(_)))
    }

    /// The file's path.
    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<PathBuf> {
        self.with(py, |mesh| Ok(mesh.report().path))
    }

    /// Whether the file was not closed cleanly, so that a private copy was
    /// verified and the original left untouched.
    #[getter]
    fn verified_private_copy(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |mesh| Ok(mesh.report().verified_private_copy))
    }

    /// Events found in the journal beside the file on open.
    #[getter]
    fn journaled(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |mesh| Ok(mesh.report().journaled))
    }

    /// Events in the journal whose signatures are not on disk yet and that
    /// this open could not sign again (0 or 1; SPEC.md §9.6): not among the
    /// events verified.
    #[getter]
    fn awaiting_signature(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |mesh| Ok(mesh.report().awaiting_signature))
    }

    /// Events the journal held that this open could not replay (a damaged
    /// frame, or the journal of another copy; SPEC.md §9.6): not among the
    /// events verified.
    #[getter]
    fn journal_unreplayed(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |mesh| Ok(mesh.report().journal_unreplayed))
    }

    /// The byte of the journal where the first unreplayed event starts.
    #[getter]
    fn journal_unreplayed_offset(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.with(py, |mesh| Ok(mesh.report().journal_unreplayed_offset))
    }

    /// Where a writable open kept a journal it could not replay in full.
    #[getter]
    fn journal_set_aside(&self, py: Python<'_>) -> PyResult<Option<PathBuf>> {
        self.with(py, |mesh| Ok(mesh.report().journal_set_aside))
    }

    /// The group id (hex): the genesis's hash.
    #[getter]
    fn group(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |mesh| Ok(mesh.group().to_string()))
    }

    #[getter]
    fn group_name(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |mesh| Ok(mesh.group_name().to_owned()))
    }

    #[getter]
    fn founder(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |mesh| Ok(mesh.founder().to_string()))
    }

    /// The local member's id, or None when opened read-only.
    #[getter]
    fn member_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |mesh| Ok(mesh.member_id().map(|id| id.to_string())))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |mesh| Ok(mesh.len()))
    }

    /// The state's digest (hex): equal on every peer holding the same
    /// events (SPEC.md §7).
    #[getter]
    fn digest(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |mesh| Ok(mesh.digest().to_string()))
    }

    /// Whether the local member's flag is on.
    #[getter]
    fn enabled(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |mesh| Ok(mesh.is_enabled()))
    }

    fn is_member_enabled(&self, py: Python<'_>, member_id: &str) -> PyResult<bool> {
        let member = member(member_id)?;
        self.with(py, |mesh| Ok(mesh.is_member_enabled(member)))
    }

    /// The resolved roster (R*, SPEC.md §5.5), by member id.
    #[getter]
    fn roster(&self, py: Python<'_>) -> PyResult<Vec<values::RosterEntry>> {
        self.with(py, |mesh| Ok(values::roster(mesh.roster())))
    }

    /// The current epoch (hex), or None while a merge is needed.
    #[getter]
    fn current_epoch(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |mesh| {
            Ok(mesh.current_epoch().map(|hash| hash.to_string()))
        })
    }

    /// The epoch the local member writes under now.
    #[getter]
    fn writer_epoch(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |mesh| {
            Ok(mesh.writer_epoch().map(|hash| hash.to_string()))
        })
    }

    #[getter]
    fn needs_merge(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |mesh| Ok(mesh.needs_merge()))
    }

    /// The epoch graph's tips (hex).
    #[getter]
    fn tips(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |mesh| {
            Ok(mesh.tips().iter().map(ToString::to_string).collect())
        })
    }

    /// Every rotation and the genesis, with where each stands.
    fn epochs(&self, py: Python<'_>) -> PyResult<Vec<values::EpochInfo>> {
        let epochs = self.with(py, |mesh| Ok(mesh.epochs()))?;
        epochs
            .into_iter()
            .map(|info| values::epoch(py, info))
            .collect()
    }

    /// One epoch, or None if the mesh holds no such rotation.
    fn epoch(&self, py: Python<'_>, epoch: &str) -> PyResult<Option<values::EpochInfo>> {
        let epoch = hash(epoch)?;
        let info = self.with(py, |mesh| Ok(mesh.epoch(epoch)))?;
        info.map(|info| values::epoch(py, info)).transpose()
    }

    /// Evidence of authors that signed two events at one position.
    fn equivocations(&self, py: Python<'_>) -> PyResult<Vec<values::Equivocation>> {
        self.with(py, |mesh| {
            Ok(mesh
                .equivocations()
                .iter()
                .map(|fork| values::equivocation(fork, mesh.fork_shape(fork)))
                .collect())
        })
    }

    /// The event with this hash, with its status, or None.
    fn event(&self, py: Python<'_>, hash: &str) -> PyResult<Option<values::LogEntry>> {
        let hash = self::hash(hash)?;
        let raw = self.with(py, |mesh| Ok(values::raw_entry(mesh, hash)))?;
        Ok(raw.map(|entry| values::log_entry(py, entry)))
    }

    /// Events verified when the file was opened.
    #[getter]
    fn events_verified(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |mesh| Ok(mesh.report().events))
    }

    /// Every event in the order the file holds them, with its status.
    fn log(&self, py: Python<'_>) -> PyResult<Vec<values::LogEntry>> {
        let raw = self.with(py, |mesh| Ok(values::raw_log(mesh)))?;
        Ok(raw
            .into_iter()
            .map(|entry| values::log_entry(py, entry))
            .collect())
    }

    /// Turns the local member's flag on or off; returns the event's hash.
    fn set_enabled(&self, py: Python<'_>, enabled: bool) -> PyResult<String> {
        self.with(py, |mesh| mesh.set_enabled(enabled))
            .map(|h| h.to_string())
    }

    /// Appends an application event; returns its hash.
    fn append_app(&self, py: Python<'_>, kind: &str, payload: &[u8]) -> PyResult<String> {
        self.with(py, |mesh| mesh.append_app(kind, payload))
            .map(|h| h.to_string())
    }

    /// Appends many application events, each a (kind, payload), in one
    /// transaction: all are made and verified first, then written together,
    /// or none is. Returns their hashes in order.
    fn append_apps(
        &self,
        py: Python<'_>,
        records: Vec<(String, Vec<u8>)>,
    ) -> PyResult<Vec<String>> {
        self.with(py, |mesh| {
            mesh.append_apps(
                records
                    .iter()
                    .map(|(kind, payload)| (kind.as_str(), payload.as_slice())),
            )
        })
        .map(|hashes| hashes.iter().map(ToString::to_string).collect())
    }

    /// Posts a newer key package of the local member's own.
    fn post_package(&self, py: Python<'_>, package: &str) -> PyResult<String> {
        let package = self::package(package)?;
        self.with(py, |mesh| mesh.post_package(package))
            .map(|h| h.to_string())
    }

    /// A rotation with these changes (SPEC.md §5): `add` is a list of
    /// (key package, role), `remove` a list of member ids, `set_role` a
    /// dict of member id to role, `update_keys` newer packages members
    /// posted (`post_package`), carried into the roster. Returns the
    /// rotation's hash: the new epoch. A change the rules would void is
    /// refused whole (`Refusal`, kind "void-change").
    #[pyo3(signature = (reason, *, add = Vec::new(), remove = Vec::new(), set_role = BTreeMap::new(), update_keys = Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn rotate(
        &self,
        py: Python<'_>,
        reason: &str,
        add: Vec<(String, String)>,
        remove: Vec<String>,
        set_role: BTreeMap<String, String>,
        update_keys: Vec<String>,
    ) -> PyResult<String> {
        let mut changes = Vec::new();
        for (package, role) in add {
            changes.push(Change::Add {
                package: self::package(&package)?,
                role: self::role(&role)?,
            });
        }
        for id in remove {
            changes.push(Change::Remove {
                member: member(&id)?,
            });
        }
        for (id, role) in set_role {
            changes.push(Change::SetRole {
                member: member(&id)?,
                role: self::role(&role)?,
            });
        }
        for package in update_keys {
            changes.push(Change::UpdateKeys {
                package: self::package(&package)?,
            });
        }
        self.with(py, |mesh| mesh.rotate(changes, reason))
            .map(|h| h.to_string())
    }

    /// Adds a member by its key package; returns the new epoch.
    #[pyo3(signature = (package, role = "member"))]
    fn add_member(&self, py: Python<'_>, package: &str, role: &str) -> PyResult<String> {
        let package = self::package(package)?;
        let role = self::role(role)?;
        self.with(py, |mesh| mesh.add_member(package, role))
            .map(|h| h.to_string())
    }

    /// Removes a member; returns the new epoch.
    fn remove_member(&self, py: Python<'_>, member_id: &str) -> PyResult<String> {
        let member = member(member_id)?;
        self.with(py, |mesh| mesh.remove_member(member))
            .map(|h| h.to_string())
    }

    /// Sets a member's role ("member" or "admin"); returns the new epoch.
    fn set_role(&self, py: Python<'_>, member_id: &str, role: &str) -> PyResult<String> {
        let member = member(member_id)?;
        let role = self::role(role)?;
        self.with(py, |mesh| mesh.set_role(member, role))
            .map(|h| h.to_string())
    }

    /// A rotation with no changes: a fresh secret for the same roster.
    fn refresh(&self, py: Python<'_>, reason: &str) -> PyResult<String> {
        self.with(py, |mesh| mesh.refresh(reason))
            .map(|h| h.to_string())
    }

    /// Whether the local member may merge now.
    fn may_merge(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |mesh| Ok(mesh.may_merge()))
    }

    /// Merges the epoch graph's tips, if a merge is needed; returns the
    /// merge's hash, or None.
    fn merge(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |mesh| mesh.merge())
            .map(|h| h.map(|h| h.to_string()))
    }

    /// The secret of an epoch the local member is in.
    fn epoch_secret(&self, py: Python<'_>, epoch: &str) -> PyResult<PyEpochSecret> {
        let epoch = hash(epoch)?;
        self.with(py, |mesh| mesh.epoch_secret(epoch))
            .map(|inner| PyEpochSecret {
                epoch: epoch.to_string(),
                inner,
            })
    }

    /// The secret of the epoch the local member writes under.
    fn current_secret(&self, py: Python<'_>) -> PyResult<PyEpochSecret> {
        self.with(py, |mesh| mesh.current_secret())
            .map(|(epoch, inner)| PyEpochSecret {
                epoch: epoch.to_string(),
                inner,
            })
    }

    /// Seals `plaintext` for the members of the epoch the local member
    /// writes under (SPEC.md §16). `padding` is "padme" (the default),
    /// "none", or a block size in bytes. Returns a `Sealed`, bytes-like.
    #[pyo3(signature = (plaintext, associated_data = b"".as_slice(), padding = None))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        plaintext: &[u8],
        associated_data: &[u8],
        padding: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PySealed> {
        let padding = match padding {
            None => Padding::default(),
            Some(value) => {
                if let Ok(block) = value.extract::<u32>() {
                    std::num::NonZeroU32::new(block)
                        .map(Padding::Multiple)
                        .ok_or_else(|| value_error("a padding", "a block of 0 bytes"))?
                } else {
                    match value.extract::<String>()?.as_str() {
                        "padme" => Padding::Padme,
                        "none" => Padding::None,
                        other => return Err(value_error("a padding", other)),
                    }
                }
            }
        };
        let inner = self.with(py, |mesh| {
            mesh.seal_with(plaintext, associated_data, padding)
        })?;
        Ok(PySealed { inner })
    }

    /// Opens a sealed message (a `Sealed`, or any bytes-like object):
    /// checks who sealed it and that it is of this group, then decrypts.
    fn open_sealed(&self, py: Python<'_>, sealed: &Bound<'_, PyAny>) -> PyResult<values::Opened> {
        let opened = match sealed.cast::<PySealed>() {
            // Ours: opened where it lies.
            Ok(ours) => {
                let inner = &ours.get().inner;
                self.with(py, |mesh| mesh.open_sealed(inner))?
            }
            Err(_) => {
                let parsed = Sealed::from_vec(bytes_of(sealed)?)
                    .map_err(|error| Failure::from(meshlog::Error::from(error)).into_py(py))?;
                self.with(py, |mesh| mesh.open_sealed(&parsed))?
            }
        };
        values::opened(py, opened)
    }

    /// Appends an application event sealed under the epoch's secret, with
    /// `kind` in the clear; returns its hash.
    fn append_sealed(&self, py: Python<'_>, kind: &str, plaintext: &[u8]) -> PyResult<String> {
        self.with(py, |mesh| mesh.append_sealed(kind, plaintext))
            .map(|h| h.to_string())
    }

    /// Opens a sealed application event of the log.
    fn open_event(&self, py: Python<'_>, event: &str) -> PyResult<values::Opened> {
        let event = hash(event)?;
        let opened = self.with(py, |mesh| mesh.open_event(event))?;
        values::opened(py, opened)
    }

    /// What this mesh holds, as bytes: for a peer's `export`, or a
    /// checkpoint for `expect`.
    fn frontier<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let frontier = self.with(py, |mesh| Ok(mesh.frontier()))?;
        Ok(PyBytes::new(py, &frontier.to_bytes()))
    }

    /// A batch (bytes) of what a peer with `frontier` lacks; without one,
    /// everything a newcomer's `join` needs.
    #[pyo3(signature = (frontier = None))]
    fn export<'py>(
        &self,
        py: Python<'py>,
        frontier: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let frontier = frontier.map(self::frontier).transpose()?;
        let batch = self.with(py, |mesh| {
            Ok(match &frontier {
                Some(frontier) => mesh.export(frontier),
                None => mesh.export_all(),
            }
            .to_bytes())
        })?;
        Ok(PyBytes::new(py, &batch))
    }

    /// Takes a peer's batch: all of it is verified first; one invalid
    /// event refuses the whole batch.
    fn ingest(&self, py: Python<'_>, batch: &[u8]) -> PyResult<values::Ingested> {
        let batch = self::batch(batch)?;
        self.with(py, |mesh| mesh.ingest(&batch))
            .map(values::Ingested::from)
    }

    /// Raises `VerificationFailure` (kind "rolled-back", with `missing`)
    /// unless this mesh holds everything the checkpoint (a `frontier()`)
    /// recorded.
    fn expect(&self, py: Python<'_>, checkpoint: &[u8]) -> PyResult<()> {
        let checkpoint = frontier(checkpoint)?;
        self.with(py, |mesh| mesh.expect(&checkpoint))
    }

    /// Folds the journal into the file now.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |mesh| mesh.checkpoint())
    }

    /// Writes a consistent copy of the file to `path`, which must not exist.
    fn backup(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with(py, |mesh| mesh.backup(&path))
    }

    /// Syncs once with a member who serves at `peer` ("host:port"): each
    /// side gets what the other held (SPEC.md §17).
    fn sync(&self, py: Python<'_>, peer: &str) -> PyResult<values::SyncReport> {
        let peer = address(py, peer)?;
        py.detach(|| {
            let node = self.node()?;
            let runtime = runtime()?;
            Ok(runtime.block_on(net::sync(&node, peer))?)
        })
        .map(values::SyncReport::from)
        .map_err(|failure: Failure| failure.into_py(py))
    }

    /// Serves this mesh to members at `listen` ("host:port"; port 0 picks
    /// one) in the background until `stop_serving()` or `close()`. Writes
    /// made meanwhile reach connected peers. Returns the address bound.
    fn serve(&self, py: Python<'_>, listen: &str) -> PyResult<String> {
        let listen = address(py, listen)?;
        py.detach(|| {
            let mut serving = lock(&self.serving);
            if serving.is_some() {
                return Err(Failure::busy("already serving"));
            }
            let node = self.node()?;
            // A disabled member serves no one (SPEC.md §17.4): say so now,
            // not by a server that ends at once.
            node.with_mesh(|mesh| match mesh.member_id() {
                Some(member) if !mesh.is_enabled() => Err(meshlog::Error::Disabled { member }),
                _ => Ok(()),
            })??;
            let runtime = runtime()?;
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(listen))
                .map_err(|error| {
                    Failure::from(net::NetError::Io {
                        peer: listen.to_string(),
                        source: error,
                    })
                })?;
            let address = listener
                .local_addr()
                .map_err(|error| Failure::internal(error.to_string()))?;
            let task = runtime.spawn(async move { net::serve(&node, listener).await });
            *serving = Some(Serving { address, task });
            Ok(address.to_string())
        })
        .map_err(|failure| failure.into_py(py))
    }

    /// The address served, or None.
    #[getter]
    fn serving(&self, py: Python<'_>) -> Option<String> {
        py.detach(|| {
            lock(&self.serving)
                .as_ref()
                .map(|serving| serving.address.to_string())
        })
    }

    /// Stops serving; connected peers are let go.
    fn stop_serving(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.stop_server())
            .map_err(|failure| failure.into_py(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.with(py, |mesh| Ok((mesh.group_name().to_owned(), mesh.len()))) {
            Ok((name, events)) => format!("Mesh(group_name={name:?}, events={events})"),
            Err(_) => "Mesh(closed)".to_string(),
        }
    }
}

/// For the benchmark script (`python/bench/bench.py`) only: runs one library
/// call `n` times in Rust and returns the seconds, so that a Python call is
/// measured against the very same Rust call in the same process. `what`:
/// "enabled" (reads the state), "seal_open" (seals `arg` without padding
/// and opens it), "open_verify" (opens the file `arg` names read-only).
#[pyfunction]
pub(crate) fn _time_rust(
    py: Python<'_>,
    mesh: &Mesh,
    what: &str,
    n: u32,
    arg: &[u8],
) -> PyResult<f64> {
    py.detach(|| {
        let started = std::time::Instant::now();
        match what {
            "enabled" => mesh.with_mesh(|mesh| {
                for _ in 0..n {
                    std::hint::black_box(mesh.is_enabled());
                }
                Ok(())
            })?,
            "seal_open" => mesh.with_mesh(|mesh| {
                for _ in 0..n {
                    let sealed = mesh.seal_with(arg, b"", Padding::None)?;
                    std::hint::black_box(mesh.open_sealed(&sealed)?);
                }
                Ok(())
            })?,
            "open_verify" => {
                let path = std::path::PathBuf::from(String::from_utf8_lossy(arg).into_owned());
                for _ in 0..n {
                    let opened = meshlog::Mesh::open_read_only(&path)?;
                    std::hint::black_box(opened.len());
                }
            }
            other => return Err(Failure::internal(format!("nothing to time: {other}"))),
        }
        Ok(started.elapsed().as_secs_f64())
    })
    .map_err(|failure: Failure| failure.into_py(py))
}
