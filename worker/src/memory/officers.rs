//! Accounts, reviews, the audit trail and Access keys in memory, with D1's semantics: a
//! review write applies only over the version it read, its audit row only with it, and an
//! audit row only at the end of the chain.

use sha2::{Digest, Sha256};
use valle_shared::contract::query::Page;
use valle_shared::lending::access::{AccessConfig, Jwk, Jwks, Jwt};
use valle_shared::lending::audit::{AuditEntry, ChainHead};
use valle_shared::lending::officers::{token_hash, Account};
use valle_shared::lending::review::{OverrideRow, Review, ReviewCase};
use valle_shared::records::decisions::DecisionQuery;

use super::d1::{matches_filters, MemoryD1};
use super::MemoryBackend;
use crate::store::{
    AccessKeys, AccountStore, AuditStore, QueueQuery, ReviewSnapshot, ReviewStore, ReviewWrite,
    ReviewWritten, StoreError, StoredAccount,
};

/// The signature the fake RS256 check accepts for `signed` under `key`: host tests sign
/// with it; the real check runs under `wrangler dev` with real keys.
pub fn fake_signature(key: &Jwk, signed: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(key.n.as_bytes());
    hasher.update(signed);
    hasher.finalize().to_vec()
}

impl MemoryD1 {
    /// Adds an account with an API token, as `cargo xtask officer add` does.
    pub fn add_account(&self, account: Account, token: &str) {
        self.accounts.borrow_mut().push((
            StoredAccount {
                account,
                revoked: false,
            },
            Some(token_hash(token)),
        ));
    }

    pub fn revoke_account(&self, email: &str) {
        for (stored, _) in self.accounts.borrow_mut().iter_mut() {
            if stored.account.email == email {
                stored.revoked = true;
            }
        }
    }

    pub fn chain_head(&self) -> ChainHead {
        ChainHead::after(self.audit.borrow().last().cloned())
    }

    /// Appends if `entry` follows the end of the chain.
    pub fn append_audit(&self, entry: &AuditEntry) -> bool {
        if entry.seq != self.chain_head().seq + 1 {
            return false;
        }
        self.audit.borrow_mut().push(entry.clone());
        true
    }

    fn seq_of(&self, request_id: &str) -> Option<u64> {
        self.decisions
            .borrow()
            .iter()
            .find(|(_, record)| record.request_id == request_id)
            .map(|(seq, _)| *seq)
    }

    fn case(&self, seq: u64) -> Option<ReviewCase> {
        let decision = self.decisions.borrow().get(&seq)?.clone();
        if self.is_blocked(&decision.request_id) {
            return None;
        }
        let review = self
            .reviews
            .borrow()
            .get(&decision.request_id)
            .map(|(review, _)| review.clone())
            .unwrap_or_else(|| Review::initial(&decision.request_id, decision.score.decision));
        Some(ReviewCase { decision, review })
    }
}

impl AccountStore for MemoryBackend {
    async fn account_by_token_hash(&self, hash: &str) -> Result<Option<StoredAccount>, StoreError> {
        Ok(self
            .d1
            .accounts
            .borrow()
            .iter()
            .find(|(_, stored_hash)| stored_hash.as_deref() == Some(hash))
            .map(|(account, _)| account.clone()))
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<StoredAccount>, StoreError> {
        Ok(self
            .d1
            .accounts
            .borrow()
            .iter()
            .find(|(stored, _)| stored.account.email == email)
            .map(|(account, _)| account.clone()))
    }
}

impl AccessKeys for MemoryBackend {
    async fn access_keys(&self, _config: &AccessConfig, refresh: bool) -> Result<Jwks, StoreError> {
        if refresh {
            self.jwks_fetches.set(self.jwks_fetches.get() + 1);
        }
        Ok(self.jwks.borrow().clone())
    }

    async fn verify_rs256(&self, key: &Jwk, jwt: &Jwt) -> Result<bool, StoreError> {
        Ok(fake_signature(key, jwt.signing_input.as_bytes()) == jwt.signature)
    }
}

impl ReviewStore for MemoryBackend {
    async fn review_snapshot(&self, request_id: &str) -> Result<ReviewSnapshot, StoreError> {
        Ok(ReviewSnapshot {
            decision: self.d1.readable(request_id),
            review: self.d1.reviews.borrow().get(request_id).cloned(),
            head: self.d1.chain_head(),
        })
    }

    async fn write_review(&self, write: ReviewWrite<'_>) -> Result<ReviewWritten, StoreError> {
        let id = &write.review.request_id;
        if let Some((current, _)) = self.d1.reviews.borrow().get(id) {
            if current.version != write.expected_version {
                return Ok(ReviewWritten::Overtaken(Box::new(current.clone())));
            }
        }
        if let Some(audit) = write.audit {
            if audit.seq != self.d1.chain_head().seq + 1 {
                return Ok(ReviewWritten::ChainMoved);
            }
            self.d1.append_audit(audit);
        }
        self.d1.reviews.borrow_mut().insert(
            id.clone(),
            (write.review.clone(), write.write_id.to_owned()),
        );
        Ok(ReviewWritten::Applied)
    }

    async fn review_queue(&self, query: &QueueQuery) -> Result<Vec<(u64, ReviewCase)>, StoreError> {
        let seqs: Vec<u64> = self.d1.decisions.borrow().keys().copied().collect();
        Ok(seqs
            .into_iter()
            .filter(|seq| *seq > query.after_seq)
            .filter_map(|seq| self.d1.case(seq).map(|case| (seq, case)))
            .filter(|(_, case)| match query.state {
                None => case.review.state.is_open(),
                Some(state) => case.review.state == state,
            })
            .filter(|(_, case)| {
                !query.requested || case.review.human_review_requested_at_ms.is_some()
            })
            .take(query.limit + 1)
            .collect())
    }

    async fn export_page(
        &self,
        query: &DecisionQuery,
        page: &Page<u64>,
    ) -> Result<Vec<(u64, ReviewCase)>, StoreError> {
        let after = page.cursor.unwrap_or(0);
        let seqs: Vec<u64> = self
            .d1
            .decisions
            .borrow()
            .iter()
            .filter(|(seq, record)| **seq > after && matches_filters(query, record))
            .map(|(seq, _)| *seq)
            .take(page.limit)
            .collect();
        Ok(seqs
            .into_iter()
            .filter_map(|seq| self.d1.case(seq).map(|case| (seq, case)))
            .collect())
    }

    async fn overrides(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<OverrideRow>, StoreError> {
        let mut rows: Vec<OverrideRow> = Vec::new();
        let reviews = self.d1.reviews.borrow();
        for (review, _) in reviews.values() {
            let (Some(officer), Some(at), Some(action)) =
                (&review.decided_by, review.decided_at_ms, review.action)
            else {
                continue;
            };
            if action == valle_shared::lending::review::ReviewAction::RequestInfo
                || from_ms.is_some_and(|from| at < from)
                || to_ms.is_some_and(|to| at > to)
            {
                continue;
            }
            let Some(seq) = self.d1.seq_of(&review.request_id) else {
                continue;
            };
            let Some(band) = self.d1.decisions.borrow().get(&seq).map(|r| r.score.band) else {
                continue;
            };
            let row = match rows
                .iter_mut()
                .find(|row| &row.officer == officer && row.band == band)
            {
                Some(row) => row,
                None => {
                    rows.push(OverrideRow {
                        officer: officer.clone(),
                        band,
                        decided: 0,
                        high_side: 0,
                        low_side: 0,
                    });
                    rows.last_mut()
                        .ok_or_else(|| StoreError::new("d1", "unreachable"))?
                }
            };
            row.decided += 1;
            match review.override_kind {
                valle_shared::lending::review::Override::HighSide => row.high_side += 1,
                valle_shared::lending::review::Override::LowSide => row.low_side += 1,
                valle_shared::lending::review::Override::None => {}
            }
        }
        Ok(rows)
    }
}

impl AuditStore for MemoryBackend {
    async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        Ok(self.d1.chain_head())
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<bool, StoreError> {
        Ok(self.d1.append_audit(entry))
    }

    async fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .d1
            .audit
            .borrow()
            .iter()
            .rev()
            .filter(|entry| before.is_none_or(|before| entry.seq < before))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn audit_from(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .d1
            .audit
            .borrow()
            .iter()
            .filter(|entry| entry.seq >= from)
            .take(limit)
            .cloned()
            .collect())
    }
}
