//! The KPI object's storage in memory, with a switch that fails its writes.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::kpi::{KvOp, KvStore};
use crate::store::StoreError;

#[derive(Default)]
pub struct MemoryKv {
    map: RefCell<BTreeMap<String, String>>,
    /// Fail every write while set (reads still work), as a full or broken disk would.
    pub failing_writes: Cell<bool>,
}

impl MemoryKv {
    /// Every entry, for tests that look inside.
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.map.borrow().clone()
    }

    /// Overwrites one entry behind the object's back, as a corrupted disk would.
    pub fn corrupt(&self, key: &str, value: &str) {
        self.map
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn scan(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .map
            .borrow()
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect())
    }

    fn rows(&self) -> Result<u64, StoreError> {
        Ok(self.map.borrow().len() as u64)
    }

    fn apply(&self, ops: Vec<KvOp>) -> Result<(), StoreError> {
        if self.failing_writes.get() {
            return Err(StoreError::new("kpi_object", "injected write failure"));
        }
        let mut map = self.map.borrow_mut();
        for op in ops {
            match op {
                KvOp::Put(key, value) => {
                    map.insert(key, value);
                }
                KvOp::Delete(key) => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }
}
