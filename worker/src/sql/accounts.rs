//! The `accounts` table: officers by API-token hash (bearer sign-in) and by email (Access
//! sign-in). Accounts are added and revoked by `cargo xtask officer`, never by the worker.

use serde::Deserialize;
use valle_shared::officers::{Account, Role};

use super::Statement;
use crate::store::StoredAccount;

pub fn by_token_hash(hash: &str) -> Statement {
    Statement::new(
        "SELECT id, email, name, role, revoked_at FROM accounts WHERE token_hash = ?1",
        vec![hash.into()],
    )
}

pub fn by_email(email: &str) -> Statement {
    Statement::new(
        "SELECT id, email, name, role, revoked_at FROM accounts WHERE email = ?1",
        vec![email.into()],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct AccountRow {
    pub id: f64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub revoked_at: Option<f64>,
}

impl TryFrom<AccountRow> for StoredAccount {
    type Error = String;

    fn try_from(row: AccountRow) -> Result<StoredAccount, String> {
        Ok(StoredAccount {
            account: Account {
                id: row.id as i64,
                role: Role::parse(&row.role).ok_or_else(|| format!("role {:?}", row.role))?,
                email: row.email,
                name: row.name,
            },
            revoked: row.revoked_at.is_some(),
        })
    }
}
