//! The `accounts` table: officers by API-token hash (bearer sign-in) and by email (Access
//! sign-in). Accounts are added and revoked by `cargo xtask officer`, never by the worker.

use serde::Deserialize;
use valle_shared::lending::officers::Account;

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

/// A row of [`by_token_hash`] or [`by_email`]: the account's columns are its wire fields.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountRow {
    #[serde(flatten)]
    pub account: Account,
    pub revoked_at: Option<i64>,
}

impl From<AccountRow> for StoredAccount {
    fn from(row: AccountRow) -> StoredAccount {
        StoredAccount {
            account: row.account,
            revoked: row.revoked_at.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::lending::officers::Role;

    #[test]
    fn account_rows_read_as_d1_answers_them() {
        let check = |row: serde_json::Value, expected: Result<StoredAccount, &str>| {
            let read = serde_json::from_value::<AccountRow>(row.clone())
                .map(StoredAccount::from)
                .map_err(|error| error.to_string());
            match expected {
                Ok(account) => assert_eq!(read.as_ref().ok(), Some(&account), "{row}"),
                Err(part) => assert!(
                    read.as_ref().is_err_and(|error| error.contains(part)),
                    "{row}: {read:?}"
                ),
            }
        };
        let ana = Account {
            id: 7,
            email: "ana@coop.example".into(),
            name: "Ana".into(),
            role: Role::Supervisor,
        };
        let row = |id: serde_json::Value, role: &str, revoked_at: serde_json::Value| {
            serde_json::json!({
                "id": id, "email": "ana@coop.example", "name": "Ana", "role": role,
                "revoked_at": revoked_at,
            })
        };
        let stored = |revoked| StoredAccount {
            account: ana.clone(),
            revoked,
        };
        check(
            row(7.into(), "supervisor", serde_json::Value::Null),
            Ok(stored(false)),
        );
        check(
            row(7.into(), "supervisor", 1_700_000_000_000_i64.into()),
            Ok(stored(true)),
        );
        check(
            row(7.into(), "owner", serde_json::Value::Null),
            Err("owner"),
        );
        check(
            row(7.5.into(), "supervisor", serde_json::Value::Null),
            Err("7.5"),
        );
    }
}
