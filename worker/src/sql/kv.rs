//! The KPI object's own SQLite storage: one key-value table.

pub const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
pub const GET: &str = "SELECT key, value FROM kv WHERE key = ?";
pub const PUT: &str = "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)";
pub const DELETE: &str = "DELETE FROM kv WHERE key = ?";
/// Keys are ASCII; every key with a prefix sorts below prefix + U+FFFF. SQLite reads a
/// negative limit as none.
pub const SCAN: &str = "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?";
pub const COUNT: &str = "SELECT COUNT(*) AS n FROM kv";
