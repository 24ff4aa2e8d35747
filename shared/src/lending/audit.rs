//! The audit trail: every officer write appended as one row that carries the hash of the row
//! before it, so an edit, a deletion or a reordering anywhere breaks the chain from that row
//! on, and [`Verifier`] names the first row that no longer fits.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::i18n::Message;

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done. Stored as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    ReviewDecided,
    ApprovalGiven,
    // Rows of applicants' requests from before those left the chain: read and verified,
    // never written now (the request is kept on its review). A plain comment, so the
    // OpenAPI schema stays one enum.
    HumanReviewRequested,
    DeadLetterReplayed,
    DecisionsExported,
    AccountAdded,
    AccountRevoked,
    OutcomesRecorded,
    WebhookSubscribed,
    WebhookUnsubscribed,
    WebhookReplayed,
    // The dpo's erasure and subject-access export: the row names the request, never the
    // applicant. Plain comments, so the OpenAPI schema stays one enum.
    ErasureRequested,
    SubjectExported,
}

pub const AUDIT_ACTIONS: [AuditAction; 13] = [
    AuditAction::ReviewDecided,
    AuditAction::ApprovalGiven,
    AuditAction::HumanReviewRequested,
    AuditAction::DeadLetterReplayed,
    AuditAction::DecisionsExported,
    AuditAction::AccountAdded,
    AuditAction::AccountRevoked,
    AuditAction::OutcomesRecorded,
    AuditAction::WebhookSubscribed,
    AuditAction::WebhookUnsubscribed,
    AuditAction::WebhookReplayed,
    AuditAction::ErasureRequested,
    AuditAction::SubjectExported,
];

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::ReviewDecided => "review_decided",
            AuditAction::ApprovalGiven => "approval_given",
            AuditAction::HumanReviewRequested => "human_review_requested",
            AuditAction::DeadLetterReplayed => "dead_letter_replayed",
            AuditAction::DecisionsExported => "decisions_exported",
            AuditAction::AccountAdded => "account_added",
            AuditAction::AccountRevoked => "account_revoked",
            AuditAction::OutcomesRecorded => "outcomes_recorded",
            AuditAction::WebhookSubscribed => "webhook_subscribed",
            AuditAction::WebhookUnsubscribed => "webhook_unsubscribed",
            AuditAction::WebhookReplayed => "webhook_replayed",
            AuditAction::ErasureRequested => "erasure_requested",
            AuditAction::SubjectExported => "subject_exported",
        }
    }

    pub fn parse(text: &str) -> Option<AuditAction> {
        AUDIT_ACTIONS
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    pub fn label(self) -> Message {
        let (es, en) = match self {
            AuditAction::ReviewDecided => ("Decisión de oficial", "Officer's decision"),
            AuditAction::ApprovalGiven => ("Segunda aprobación", "Second approval"),
            AuditAction::HumanReviewRequested => {
                ("Revisión humana pedida", "Human review requested")
            }
            AuditAction::DeadLetterReplayed => ("Carta muerta reprocesada", "Dead letter replayed"),
            AuditAction::DecisionsExported => ("Exportación de decisiones", "Decisions exported"),
            AuditAction::AccountAdded => ("Cuenta creada", "Account added"),
            AuditAction::AccountRevoked => ("Cuenta revocada", "Account revoked"),
            AuditAction::OutcomesRecorded => ("Resultados de préstamos", "Loan outcomes recorded"),
            AuditAction::WebhookSubscribed => ("Webhook registrado", "Webhook registered"),
            AuditAction::WebhookUnsubscribed => ("Webhook retirado", "Webhook removed"),
            AuditAction::WebhookReplayed => ("Webhook reenviado", "Webhook replayed"),
            AuditAction::ErasureRequested => ("Supresión de datos", "Erasure requested"),
            AuditAction::SubjectExported => ("Derecho de acceso", "Subject-access export"),
        };
        Message::new(es, en)
    }
}

/// What a write appends, before it has a place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditEvent {
    pub at_ms: i64,
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to: a request id, a dead letter, an account's email, an export.
    pub subject: String,
    /// The write's details as JSON text, hashed as stored.
    pub detail: String,
}

/// One stored row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// The end of the chain a new row is appended to: the last row's number and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    /// The head after `last`, the newest stored row; the genesis head when there is none.
    pub fn after(last: Option<AuditEntry>) -> ChainHead {
        last.map_or_else(ChainHead::genesis, |last| ChainHead {
            seq: last.seq,
            hash: last.hash,
        })
    }

    pub fn genesis() -> ChainHead {
        ChainHead {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }
}

/// The hash a row carries: SHA-256 over its number, its fields and the previous hash, each
/// on its own line, with newlines in text fields escaped so no two rows hash the same text.
pub fn row_hash(seq: u64, event: &AuditEvent, prev_hash: &str) -> String {
    let escape = |text: &str| text.replace('\\', "\\\\").replace('\n', "\\n");
    let text = format!(
        "{seq}\n{}\n{}\n{}\n{}\n{}\n{prev_hash}",
        event.at_ms,
        escape(&event.actor),
        event.action.as_str(),
        escape(&event.subject),
        escape(&event.detail),
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The row `event` becomes after `head`.
pub fn append(head: &ChainHead, event: AuditEvent) -> AuditEntry {
    let seq = head.seq + 1;
    let hash = row_hash(seq, &event, &head.hash);
    AuditEntry {
        seq,
        event,
        prev_hash: head.hash.clone(),
        hash,
    }
}

/// The first row that does not fit the chain, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BrokenLink {
    pub seq: u64,
    pub problem: LinkProblem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LinkProblem {
    /// A number is missing or repeated: a row was deleted or inserted.
    Gap,
    /// The row's `prev_hash` is not the hash of the row before it.
    PrevHash,
    /// The row's fields do not hash to the hash it carries: it was edited.
    Hash,
}

impl LinkProblem {
    pub fn label(self) -> Message {
        match self {
            LinkProblem::Gap => Message::new("falta o sobra una fila", "a row is missing or extra"),
            LinkProblem::PrevHash => Message::new(
                "no enlaza con la fila anterior",
                "does not link to the row before",
            ),
            LinkProblem::Hash => {
                Message::new("su contenido fue modificado", "its content was changed")
            }
        }
    }
}

/// `GET /api/v1/audit/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct VerifyReport {
    pub ok: bool,
    pub rows_checked: u64,
    pub first_broken: Option<BrokenLink>,
}

/// `GET /api/v1/audit`: newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<u64>,
}

/// Checks rows in order, a page at a time, so the whole trail never sits in memory.
#[derive(Clone, Debug)]
pub struct Verifier {
    head: ChainHead,
    checked: u64,
    broken: Option<BrokenLink>,
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier {
            head: ChainHead::genesis(),
            checked: 0,
            broken: None,
        }
    }
}

impl Verifier {
    /// The row after the last one checked; the reader asks for rows from here.
    pub fn next_seq(&self) -> u64 {
        self.head.seq + 1
    }

    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Checks the next rows; stops at the first broken one.
    pub fn check(&mut self, rows: &[AuditEntry]) {
        for row in rows {
            if self.broken.is_some() {
                return;
            }
            let problem = if row.seq != self.head.seq + 1 {
                Some(LinkProblem::Gap)
            } else if row.prev_hash != self.head.hash {
                Some(LinkProblem::PrevHash)
            } else if row_hash(row.seq, &row.event, &row.prev_hash) != row.hash {
                Some(LinkProblem::Hash)
            } else {
                None
            };
            match problem {
                Some(problem) => {
                    self.broken = Some(BrokenLink {
                        seq: if problem == LinkProblem::Gap {
                            self.head.seq + 1
                        } else {
                            row.seq
                        },
                        problem,
                    })
                }
                None => {
                    self.checked += 1;
                    self.head = ChainHead {
                        seq: row.seq,
                        hash: row.hash.clone(),
                    };
                }
            }
        }
    }

    pub fn report(self) -> VerifyReport {
        VerifyReport {
            ok: self.broken.is_none(),
            rows_checked: self.checked,
            first_broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut head = ChainHead::genesis();
        (0..n)
            .map(|i| {
                let entry = append(
                    &head,
                    AuditEvent {
                        at_ms: 1_000 + i as i64,
                        actor: "ana@coop.example".into(),
                        action: AuditAction::ReviewDecided,
                        subject: format!("r{i}"),
                        detail: format!("{{\"i\":{i}}}"),
                    },
                );
                head = ChainHead {
                    seq: entry.seq,
                    hash: entry.hash.clone(),
                };
                entry
            })
            .collect()
    }

    fn check(rows: &[AuditEntry], expected: Option<(u64, LinkProblem)>) {
        let mut verifier = Verifier::default();
        for page in rows.chunks(3) {
            verifier.check(page);
        }
        let report = verifier.report();
        assert_eq!(
            report.first_broken.map(|link| (link.seq, link.problem)),
            expected
        );
        assert_eq!(report.ok, expected.is_none());
    }

    #[test]
    fn a_chain_verifies_and_every_kind_of_tampering_is_named() {
        let rows = chain(10);
        check(&rows, None);
        check(&[], None);

        let mut edited = rows.clone();
        edited[4].event.detail = "{\"i\":40}".into();
        check(&edited, Some((5, LinkProblem::Hash)));

        let mut rehashed = rows.clone();
        rehashed[4].event.actor = "mallory@coop.example".into();
        rehashed[4].hash = row_hash(5, &rehashed[4].event, &rehashed[4].prev_hash);
        check(&rehashed, Some((6, LinkProblem::PrevHash)));

        let mut deleted = rows.clone();
        deleted.remove(6);
        check(&deleted, Some((7, LinkProblem::Gap)));

        let mut swapped = rows.clone();
        swapped.swap(2, 3);
        check(&swapped, Some((3, LinkProblem::Gap)));
    }

    #[test]
    fn text_fields_cannot_shift_into_each_other() {
        let event = |actor: &str, subject: &str| AuditEvent {
            at_ms: 1,
            actor: actor.into(),
            action: AuditAction::AccountAdded,
            subject: subject.into(),
            detail: String::new(),
        };
        assert_ne!(
            row_hash(1, &event("a\nb", "c"), GENESIS_HASH),
            row_hash(1, &event("a", "b\nc"), GENESIS_HASH)
        );
        assert_eq!(
            AuditAction::parse("account_revoked"),
            Some(AuditAction::AccountRevoked)
        );
    }

    #[test]
    fn every_action_is_stored_by_its_wire_name() {
        for action in AUDIT_ACTIONS {
            let wire = serde_json::to_value(action).expect("an action serializes");
            assert_eq!(wire, serde_json::json!(action.as_str()));
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
    }
}
