//! Resource and scope grouping, with each object's encoding cached.
//!
//! The stock encoder groups spans in a `dict[Resource, dict[scope, list]]`, so two
//! distinct objects that hash and compare equal share a group, and groups come out
//! in first-seen order, keyed by the first object seen. We do the same; an object's
//! hash is taken once, when it enters the cache, and `==` is asked only when a batch
//! meets a second distinct object with an equal hash.

use super::request::Part;
use super::spans::or_empty;
use super::types::Types;
use super::values::{attributes, Place, ReadPass};
use super::wire;
use crate::interned::interned;
use crate::sync::locked;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

/// Distinct resources (or scopes) remembered at most; a full cache starts over.
const CACHE_LIMIT: usize = 256;

/// An encoded resource or scope, with the object it came from.
pub struct Encoded {
    /// Held so the address we key on cannot be reused while the entry lives.
    object: Py<PyAny>,
    /// `None` when the object is unhashable: it then groups by identity only.
    hash: Option<isize>,
    /// Shared with the requests it goes out in, which hold no Python object.
    pub part: Arc<Part>,
}

/// Encodings keyed by object address. Resources and scopes are immutable once made,
/// so an entry stays right for as long as it holds its object.
pub struct Cache {
    entries: Mutex<HashMap<usize, Arc<Encoded>>>,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl Cache {
    /// The entry for `object`, encoding it with `encode` on a miss.
    ///
    /// The lock is never held while Python runs: Python code may switch threads,
    /// and a thread blocked on this lock while holding the GIL would deadlock it.
    fn get(
        &self,
        object: &Bound<'_, PyAny>,
        encode: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Part>,
    ) -> PyResult<Arc<Encoded>> {
        let address = object.as_ptr() as usize;
        if let Some(found) = locked(&self.entries).get(&address) {
            return Ok(found.clone());
        }
        let part = Arc::new(encode(object)?);
        let entry = Arc::new(Encoded {
            object: object.clone().unbind(),
            hash: object.hash().ok(),
            part,
        });
        let evicted = {
            let mut entries = locked(&self.entries);
            let evicted = if entries.len() >= CACHE_LIMIT {
                std::mem::take(&mut *entries)
            } else {
                HashMap::new()
            };
            entries.insert(address, entry.clone());
            evicted
        };
        // Released after the lock: dropping the last reference to an object may run Python code.
        drop(evicted);
        Ok(entry)
    }

    pub fn len(&self) -> usize {
        locked(&self.entries).len()
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(entries) = self.entries.try_lock() {
            for entry in entries.values() {
                visit.call(&entry.object)?;
            }
        }
        Ok(())
    }

    pub fn clear(&self) {
        let evicted = std::mem::take(&mut *locked(&self.entries));
        drop(evicted);
    }
}

/// A resource or scope encoded: `write` writes its message, and its envelope carries its
/// `schema_url`.
fn part(
    object: &Bound<'_, PyAny>,
    pass: &mut ReadPass,
    write: impl FnOnce(&mut Vec<u8>, &mut ReadPass) -> PyResult<()>,
) -> PyResult<Part> {
    let mut message = Vec::new();
    // Counted by each request the part goes out in (`Part::skipped_values`), not by this pass.
    let before = pass.skipped_values;
    let written = write(&mut message, pass);
    let skipped_values = pass.skipped_values - before;
    pass.skipped_values = before;
    written?;
    let schema_url = object.getattr(interned!(object.py(), "schema_url"))?;
    Ok(Part {
        message,
        schema_url: or_empty(&schema_url, pass)?.into_owned(),
        skipped_values,
    })
}

pub fn encode_resource(
    resource: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Part> {
    part(resource, pass, |message, pass| {
        let attrs = resource.getattr(interned!(resource.py(), "attributes"))?;
        attributes(message, 1, &attrs, Place::Resource, types, pass)
    })
}

pub fn encode_scope(
    scope: &Bound<'_, PyAny>,
    types: &Types,
    pass: &mut ReadPass,
) -> PyResult<Part> {
    let py = scope.py();
    part(scope, pass, |message, pass| {
        let name = scope.getattr(interned!(py, "name"))?;
        wire::string(message, 1, &or_empty(&name, pass)?);
        let version = scope.getattr(interned!(py, "version"))?;
        wire::string(message, 2, &or_empty(&version, pass)?);
        let attrs = scope.getattr(interned!(py, "attributes"))?;
        attributes(message, 3, &attrs, Place::Scope, types, pass)
    })
}

/// Whether `new` lands in the dict slot keyed by `first`: equal hashes, then `is` or `==`.
fn same_key(py: Python<'_>, first: &Encoded, new: &Encoded) -> bool {
    let (Some(a), Some(b)) = (first.hash, new.hash) else {
        return false;
    };
    a == b
        && (first.object.is(&new.object)
            || first
                .object
                .bind(py)
                .eq(new.object.bind(py))
                .unwrap_or(false))
}

/// One group: the first object seen for it, the addresses matched to it, and its contents.
struct Group<V> {
    key: Option<Arc<Encoded>>,
    seen: Vec<usize>,
    /// The objects behind `seen`, held so no address is reused by another object during
    /// the batch (a `resource` property may build a new object on every call).
    alive: Vec<Py<PyAny>>,
    value: V,
}

/// Groups in first-seen order.
pub struct Groups<V> {
    groups: Vec<Group<V>>,
}

impl<V: Default> Default for Groups<V> {
    fn default() -> Self {
        Self { groups: Vec::new() }
    }
}

impl<V: Default> Groups<V> {
    /// The group `object` belongs to (`None` is a key of its own), created if new.
    pub fn slot(
        &mut self,
        object: Option<&Bound<'_, PyAny>>,
        cache: &Cache,
        encode: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Part>,
    ) -> PyResult<&mut V> {
        let address = object.map_or(0, |o| o.as_ptr() as usize);
        if let Some(index) = self.groups.iter().position(|g| g.seen.contains(&address)) {
            return Ok(&mut self.groups[index].value);
        }
        let key = object.map(|o| cache.get(o, encode)).transpose()?;
        let equal = |group: &Group<V>| match (&group.key, &key, object) {
            (Some(first), Some(new), Some(o)) => same_key(o.py(), first, new),
            _ => false,
        };
        let index = match self.groups.iter().position(equal) {
            Some(index) => {
                self.groups[index].seen.push(address);
                index
            }
            None => {
                self.groups.push(Group {
                    key,
                    seen: vec![address],
                    alive: Vec::new(),
                    value: V::default(),
                });
                self.groups.len() - 1
            }
        };
        if let Some(object) = object {
            self.groups[index].alive.push(object.clone().unbind());
        }
        Ok(&mut self.groups[index].value)
    }

    /// How many groups there are so far.
    pub fn count(&self) -> usize {
        self.groups.len()
    }

    /// Forgets the groups made after the first `count`: the span they were made for was left out.
    pub fn forget_from(&mut self, count: usize) {
        self.groups.truncate(count);
    }

    /// Each group's shared encoding (`None` for the `None` key) and contents.
    pub fn into_parts(self) -> impl Iterator<Item = (Option<Arc<Part>>, V)> {
        self.groups
            .into_iter()
            .map(|g| (g.key.map(|k| k.part.clone()), g.value))
    }
}
