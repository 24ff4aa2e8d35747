//! Officers as people: accounts, their roles, what each role may do, and API tokens, which
//! are stored only as their SHA-256.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::i18n::Message;

/// What an account is for. Admin may do everything; the others are separated so that the
/// person who decides is not the one who confirms an exception, nor the one who audits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Officer,
    Supervisor,
    Auditor,
    Admin,
    /// Another system of the cooperative (the loan book): posts loan outcomes, nothing else.
    Integrator,
    /// The data-protection officer: erasure, subject access and the retention job, and
    /// nothing else; the only role that may read blocked personal data.
    Dpo,
}

/// Every role, in the order reports list them.
pub const ROLES: [Role; 6] = [
    Role::Officer,
    Role::Supervisor,
    Role::Auditor,
    Role::Admin,
    Role::Integrator,
    Role::Dpo,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Integrator => "integrator",
            Role::Dpo => "dpo",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        ROLES.into_iter().find(|role| role.as_str() == text)
    }

    pub fn label(self) -> Message {
        match self {
            Role::Officer => Message::new("Oficial de crédito", "Loan officer"),
            Role::Supervisor => Message::new("Supervisor", "Supervisor"),
            Role::Auditor => Message::new("Auditor", "Auditor"),
            Role::Admin => Message::new("Administrador", "Administrator"),
            Role::Integrator => Message::new("Integración", "Integration"),
            Role::Dpo => Message::new("Delegado de protección de datos", "Data-protection officer"),
        }
    }

    /// The role table: the one place that says who may do what.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            // Blocked personal data is the dpo's alone, whoever else administers Valle.
            _ if permission == ProtectData => self == Role::Dpo,
            Role::Admin => true,
            _ if permission == Account => true,
            Role::Officer => matches!(permission, Read | Decide | RecordOutcomes),
            Role::Supervisor => matches!(
                permission,
                Read | Decide | Approve | Operate | Export | Report | RecordOutcomes | Simulate
            ),
            Role::Auditor => matches!(permission, Read | Audit | Export | Report),
            Role::Integrator => matches!(permission, RecordOutcomes),
            Role::Dpo => false,
        }
    }
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// One's own account (`GET /api/v1/me`): every role.
    Account,
    /// Decisions, the review queue, KPIs, windows, drift, performance and fairness.
    Read,
    /// An officer's own decision on an application.
    Decide,
    /// The second approval a low-side override needs.
    Approve,
    /// Dead letters and their replay, `/metrics`.
    Operate,
    /// The audit trail and its verification.
    Audit,
    /// CSV exports of decisions.
    Export,
    /// The overrides report.
    Report,
    /// Loan outcomes (`POST /api/v1/outcomes`).
    RecordOutcomes,
    /// What-if simulations over stored applications (`POST /api/v1/simulate`).
    Simulate,
    /// Webhook subscriptions, their dead letters and replay: admins only.
    ManageWebhooks,
    /// Erasure, subject-access exports and the retention job: the dpo only.
    ProtectData,
}

/// A signed-in person, as the worker knows them after checking their credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// How the account signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SignIn {
    /// `Authorization: Bearer <API token>`.
    Token,
    /// Cloudflare Access' `Cf-Access-Jwt-Assertion`.
    Access,
}

/// `GET /api/v1/me`: who the credentials belong to and what they may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Me {
    pub account: Account,
    pub sign_in: SignIn,
    pub permissions: Vec<Permission>,
}

/// Every permission, for [`Me::permissions`].
pub const PERMISSIONS: [Permission; 12] = [
    Permission::Account,
    Permission::Read,
    Permission::Decide,
    Permission::Approve,
    Permission::Operate,
    Permission::Audit,
    Permission::Export,
    Permission::Report,
    Permission::RecordOutcomes,
    Permission::Simulate,
    Permission::ManageWebhooks,
    Permission::ProtectData,
];

impl Me {
    pub fn new(account: Account, sign_in: SignIn) -> Me {
        let permissions = PERMISSIONS
            .into_iter()
            .filter(|permission| account.role.allows(*permission))
            .collect();
        Me {
            account,
            sign_in,
            permissions,
        }
    }
}

/// Prefix of the API tokens `cargo xtask officer add` makes, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "valle_";

/// The stored form of an API token: lower-case hex SHA-256. Tokens are 32 random bytes, so a
/// plain hash is enough; a slow hash guards guessable passwords, which these are not.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new API token from 32 random bytes.
pub fn token_from_bytes(bytes: &[u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The bearer token of an `Authorization` header, if it carries one.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether an email is one an account may have: one `@`, no spaces or quotes, ≤ 254 bytes.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'<' | b'>'))
        && !domain.contains('@')
}

/// Emails compare without case, as Access reports them in whatever case the identity
/// provider keeps.
pub fn normalize_email(text: &str) -> String {
    text.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_its_permissions() {
        use Permission::*;
        let check = |role: Role, allowed: &[Permission]| {
            for permission in PERMISSIONS {
                assert_eq!(
                    role.allows(permission),
                    allowed.contains(&permission),
                    "{role:?} {permission:?}"
                );
            }
        };
        check(Role::Officer, &[Account, Read, Decide, RecordOutcomes]);
        check(
            Role::Supervisor,
            &[
                Account,
                Read,
                Decide,
                Approve,
                Operate,
                Export,
                Report,
                RecordOutcomes,
                Simulate,
            ],
        );
        check(Role::Auditor, &[Account, Read, Audit, Export, Report]);
        check(Role::Admin, &PERMISSIONS[..PERMISSIONS.len() - 1]);
        check(Role::Integrator, &[Account, RecordOutcomes]);
        check(Role::Dpo, &[Account, ProtectData]);
    }

    #[test]
    fn tokens_and_emails() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(token_hash(" abc\n"), token_hash("abc"));
        let token = token_from_bytes(&[0xab; 32]);
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == 6 + 64);
        assert_eq!(bearer_token(Some("Bearer  t1 ")), Some("t1"));
        assert_eq!(bearer_token(Some("bearer t1")), Some("t1"));
        assert_eq!(bearer_token(Some("Basic t1")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
        for (text, valid) in [
            ("ana@coop.example", true),
            ("a.b+c@x.y", true),
            ("ana", false),
            ("@coop.example", false),
            ("ana@coop", false),
            ("ana@.coop", false),
            ("a na@coop.example", false),
            ("an'a@coop.example", false),
            ("a@b@coop.example", false),
        ] {
            assert_eq!(is_email(text), valid, "{text}");
        }
        assert_eq!(Role::parse("auditor"), Some(Role::Auditor));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(normalize_email(" Ana@Coop.Example "), "ana@coop.example");
    }
}
