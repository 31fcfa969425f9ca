//! The statuses of a resolution, by rotation hash, cheap to clone.
//!
//! A ledger keeps the resolution it had while the graph computes the next
//! one (SPEC.md §5.5), so a resolution is cloned once a rotation: a plain
//! map of every rotation would cost the whole history each time. Here the
//! entries live in a few shared levels, each a sorted map, newer levels
//! overriding older ones: a clone copies the small newest level and the
//! handles of the others, and an insert lands in the newest level, which
//! merges into the next when it fills, so each entry is copied O(log n)
//! times over the life of the map.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::graph::Status;
use crate::ids::EventHash;

/// Entries the newest level holds before it merges into the next; each
/// older level holds up to [`GROWTH`] times the one before it.
const FIRST_LEVEL: usize = 64;
/// How much larger each level is than the one before.
const GROWTH: usize = 4;

/// Every rotation's status, by hash, iterated in hash order.
#[derive(Clone, Default)]
pub(crate) struct Statuses {
    /// Newest first; a hash in an earlier level overrides the later ones.
    levels: Vec<Arc<BTreeMap<EventHash, Status>>>,
    /// Distinct hashes held.
    len: usize,
    /// How many of them are void, so that whether any is needs no scan.
    void: usize,
}

impl Statuses {
    /// The status of `hash`, if held.
    pub(crate) fn get(&self, hash: &EventHash) -> Option<&Status> {
        self.levels.iter().find_map(|level| level.get(hash))
    }

    /// How many rotations have a status (read by the network's admission).
    #[cfg_attr(not(any(test, feature = "net")), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether any rotation is void: a look at a counter, not at every
    /// rotation.
    pub(crate) fn any_void(&self) -> bool {
        self.void > 0
    }

    /// Sets the status of `hash`, replacing any it had.
    pub(crate) fn insert(&mut self, hash: EventHash, status: Status) {
        match self.get(&hash) {
            None => self.len += 1,
            Some(Status::Void) => self.void -= 1,
            Some(Status::Applied { .. }) => {}
        }
        if status == Status::Void {
            self.void += 1;
        }
        if self.levels.is_empty() {
            self.levels.push(Arc::default());
        }
        if let Some(first) = self.levels.first_mut() {
            Arc::make_mut(first).insert(hash, status);
        }
        self.settle();
    }

    /// Merges each full level into the next, older one.
    fn settle(&mut self) {
        let mut capacity = FIRST_LEVEL;
        let mut level = 0;
        while let Some(newer) = self.levels.get(level) {
            if newer.len() <= capacity {
                break;
            }
            let newer = self
                .levels
                .get_mut(level)
                .map(std::mem::take)
                .unwrap_or_default();
            if self.levels.len() == level + 1 {
                self.levels.push(Arc::default());
            }
            if let Some(older) = self.levels.get_mut(level + 1) {
                let older = Arc::make_mut(older);
                match Arc::try_unwrap(newer) {
                    Ok(newer) => older.extend(newer),
                    Err(newer) => older.extend(newer.iter().map(|(h, s)| (*h, s.clone()))),
                }
            }
            capacity *= GROWTH;
            level += 1;
        }
    }

    /// Every hash and its status, in hash order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            heads: self
                .levels
                .iter()
                .map(|level| {
                    let mut entries = level.iter();
                    let head = entries.next();
                    (entries, head)
                })
                .collect(),
        }
    }

    /// Every hash, in hash order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &EventHash> {
        self.iter().map(|(hash, _)| hash)
    }

    /// Every status, in hash order.
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &Status> {
        self.iter().map(|(_, status)| status)
    }
}

/// [`Statuses::iter`]: a merge of the levels, the newest level's entry
/// winning among equal hashes.
pub(crate) struct Iter<'a> {
    /// Per level: the rest of its entries, and its next one.
    heads: Vec<(LevelIter<'a>, Option<Entry<'a>>)>,
}

/// The entries of one level.
type LevelIter<'a> = std::collections::btree_map::Iter<'a, EventHash, Status>;

/// One entry, borrowed.
type Entry<'a> = (&'a EventHash, &'a Status);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a EventHash, &'a Status);

    fn next(&mut self) -> Option<Self::Item> {
        // The first level (the newest) holding the smallest hash wins.
        let mut best: Option<Entry<'a>> = None;
        for (_, head) in &self.heads {
            if let Some((hash, status)) = head
                && best.is_none_or(|(smallest, _)| *hash < smallest)
            {
                best = Some((hash, status));
            }
        }
        let (smallest, _) = best?;
        for (entries, head) in &mut self.heads {
            if head.is_some_and(|(hash, _)| hash == smallest) {
                *head = entries.next();
            }
        }
        best
    }
}

impl<'a> IntoIterator for &'a Statuses {
    type Item = (&'a EventHash, &'a Status);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<(EventHash, Status)> for Statuses {
    fn from_iter<I: IntoIterator<Item = (EventHash, Status)>>(entries: I) -> Self {
        let map: BTreeMap<EventHash, Status> = entries.into_iter().collect();
        Statuses {
            len: map.len(),
            void: map
                .values()
                .filter(|status| **status == Status::Void)
                .count(),
            levels: vec![Arc::new(map)],
        }
    }
}

impl PartialEq for Statuses {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Statuses {}

impl PartialEq<BTreeMap<EventHash, Status>> for Statuses {
    fn eq(&self, other: &BTreeMap<EventHash, Status>) -> bool {
        self.len == other.len() && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_sorted_map_and_clones_share() {
        let mut statuses = Statuses::default();
        let mut model = BTreeMap::new();
        let mut snapshots = Vec::new();
        for n in 0u32..3_000 {
            // Hashes out of order, and every seventh one replaced.
            let key = (n.wrapping_mul(2_654_435_761) % 1_000) as u8;
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
            let hash = if n.is_multiple_of(7) {
                model
                    .keys()
                    .next()
                    .copied()
                    .unwrap_or(EventHash::from_bytes(bytes))
            } else {
                EventHash::from_bytes(bytes)
            };
            let status = if key.is_multiple_of(3) {
                Status::Void
            } else {
                Status::Applied {
                    void_changes: vec![usize::from(key)],
                }
            };
            statuses.insert(hash, status.clone());
            model.insert(hash, status);
            if n % 500 == 0 {
                snapshots.push((statuses.clone(), model.clone()));
            }
        }
        assert_eq!(statuses, model);
        assert_eq!(statuses.len(), model.len());
        for (hash, status) in &model {
            assert_eq!(statuses.get(hash), Some(status));
        }
        assert!(statuses.keys().eq(model.keys()));
        assert!(statuses.values().eq(model.values()));
        assert_eq!(
            statuses.any_void(),
            model.values().any(|status| *status == Status::Void)
        );
        // Later inserts never show through an earlier clone.
        for (snapshot, model) in snapshots {
            assert_eq!(snapshot, model);
        }
    }
}
