use super::*;
use crate::contract::errors::field_codes;

fn stored(request_id: &str, received_at_ms: i64) -> DecisionRecord {
    let application: Application = serde_json::from_str(
        r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married",
            "records":"no","job":"freelance","expenses":73,"income":129,"assets":0,
            "debt":0,"amount":800,"price":846}"#,
    )
    .expect("valid application");
    let model = crate::decision::model::Model::embedded().expect("the model");
    DecisionRecord {
        request_id: request_id.into(),
        applicant_id: None,
        branch: "norte".into(),
        channel: Channel::Online,
        score: model.score(&application).expect("a score"),
        application,
        received_at_ms,
        event_time_ms: received_at_ms,
        timing: Vec::new(),
        client_probability: None,
        mismatch: false,
        kpi_seq: None,
        kpi_window: None,
        shadow: None,
        fingerprint: None,
    }
}

#[test]
fn a_page_names_its_next_cursor_only_when_rows_follow() {
    let rows = vec![stored("c", 30), stored("b", 20), stored("a", 20)];
    let page = DecisionPage::from_rows(rows.clone(), 2);
    assert_eq!(page.decisions, rows[..2]);
    let cursor = Cursor::decode(page.next_cursor.as_deref().expect("a next page"))
        .expect("a cursor the list reads back");
    assert_eq!(cursor, Cursor::after(&rows[1]));
    // The next page starts after the cursor: the same arrival time, a lower request id.
    assert!(cursor.precedes(&rows[2]));
    assert!(!cursor.precedes(&rows[1]) && !cursor.precedes(&rows[0]));
    let last = DecisionPage::from_rows(rows[2..].to_vec(), 2);
    assert_eq!((last.decisions.len(), last.next_cursor), (1, None));
    assert_eq!(DecisionPage::from_rows(Vec::new(), 2).next_cursor, None);
}

fn check(query: &str, expected: Result<DecisionQuery, &[(&str, ErrorCode)]>) {
    match (DecisionQuery::parse(query), expected) {
        (Ok(parsed), Ok(expected)) => assert_eq!(parsed, expected, "{query}"),
        (Err(errors), Err(codes)) => assert_eq!(field_codes(&errors), codes, "{query}"),
        (got, expected) => panic!("{query}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn queries() {
    check(
        "",
        Ok(DecisionQuery {
            limit: DEFAULT_PAGE,
            ..DecisionQuery::default()
        }),
    );
    check(
        "from=2026-11-23T10%3A15%3A00Z&to=2026-11-23T11:15:00Z&branch=norte&band=alto&decision=decline&channel=offline-sync&limit=10&cursor=1795428900000.abc-1",
        Ok(DecisionQuery {
            from_ms: Some(1_795_428_900_000),
            to_ms: Some(1_795_432_500_000),
            branch: Some("norte".into()),
            band: Some(Band::Alto),
            decision: Some(Decision::Decline),
            channel: Some(Channel::OfflineSync),
            limit: 10,
            cursor: Some(Cursor {
                received_at_ms: 1_795_428_900_000,
                request_id: "abc-1".into(),
            }),
        }),
    );
    check(
        "from=yesterday&band=negro&decision=maybe&limit=0&cursor=x&branch=%20Norte&sql=1;DROP",
        Err(&[
            ("from", ErrorCode::Format),
            ("band", ErrorCode::Enum),
            ("decision", ErrorCode::Enum),
            ("limit", ErrorCode::Range),
            ("cursor", ErrorCode::Format),
            ("branch", ErrorCode::Format),
            ("sql", ErrorCode::UnknownField),
        ]),
    );
    check(
        "from=2026-11-23T11:00:00Z&to=2026-11-23T10:00:00Z",
        Err(&[("to", ErrorCode::Cross)]),
    );
    check("limit=501", Err(&[("limit", ErrorCode::Range)]));
    check(
        "cursor=12.has%20space",
        Err(&[("cursor", ErrorCode::Format)]),
    );
}
