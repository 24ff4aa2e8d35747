//! The role table in docs/api.md says what `Role::allows` says, row by row.

use valle_shared::lending::officers::{Permission, Role, ROLES};

/// Each row of the table by its first cell, and the permissions the row stands for.
const ROWS: [(&str, &[Permission]); 11] = [
    ("`me`", &[Permission::Account]),
    ("decisions, KPIs", &[Permission::Read]),
    (
        "`POST /api/v1/reviews/{id}` (decide)",
        &[Permission::Decide],
    ),
    (
        "`POST /api/v1/reviews/{id}/approval`",
        &[Permission::Approve],
    ),
    ("dead letters and their replay", &[Permission::Operate]),
    ("`audit`", &[Permission::Audit]),
    (
        "the CSV export, the overrides report",
        &[Permission::Export, Permission::Report],
    ),
    ("`POST /api/v1/outcomes`", &[Permission::RecordOutcomes]),
    ("`POST /api/v1/simulate`", &[Permission::Simulate]),
    ("webhook subscriptions", &[Permission::ManageWebhooks]),
    ("erasure, subject-access export", &[Permission::ProtectData]),
];

#[test]
fn the_documented_role_table_is_the_role_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let mut lines = doc
        .lines()
        .skip_while(|line| !line.starts_with("| route |"));
    let header: Vec<&str> = cells(lines.next().expect("the table's header"));
    let roles: Vec<Role> = header[1..]
        .iter()
        .map(|name| Role::parse(name).unwrap_or_else(|| panic!("{name} is no role")))
        .collect();
    assert_eq!(roles, ROLES, "one column per role, in the roles' order");
    let rows: Vec<Vec<&str>> = lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(cells)
        .collect();
    assert_eq!(rows.len(), ROWS.len(), "one row per permission group");
    for (row, (start, permissions)) in rows.iter().zip(ROWS) {
        assert!(row[0].starts_with(start), "{} is not {start}", row[0]);
        for (role, mark) in roles.iter().zip(&row[1..]) {
            for permission in permissions {
                assert_eq!(
                    *mark == "✓",
                    role.allows(*permission),
                    "{start}: {role:?} {permission:?}"
                );
            }
        }
    }
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}
