use super::*;
use valle_shared::decision::model::Band;
use valle_shared::records::decisions::Cursor;

#[test]
fn decision_queries_bind_every_value() {
    let query = DecisionQuery {
        from_ms: Some(10),
        branch: Some("norte'; DROP TABLE decisions; --".into()),
        band: Some(Band::Alto),
        limit: 5,
        cursor: Some(Cursor {
            received_at_ms: 99,
            request_id: "r-9".into(),
        }),
        ..DecisionQuery::default()
    };
    let statement = list(&query);
    assert_eq!(
        statement.sql,
        "SELECT * FROM decisions WHERE 1 = 1 AND blocked_at IS NULL AND received_at >= ?1 \
         AND branch = ?2 AND band = ?3 \
         AND (received_at < ?4 OR (received_at = ?5 AND request_id < ?6)) \
         ORDER BY received_at DESC, request_id DESC LIMIT ?7"
    );
    assert!(!statement.sql.contains("DROP"));
    assert_eq!(
        statement.params[1],
        SqlValue::Text("norte'; DROP TABLE decisions; --".into())
    );
    assert_eq!(statement.params[2], SqlValue::Text("alto".into()));
    assert_eq!(statement.params[6], SqlValue::Integer(6));
}

fn record() -> DecisionRecord {
    let application = valle_shared::parse_application(
        br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"applicant_id":"SOC-1","branch":"Norte"}"#,
    )
    .expect("valid");
    let score = valle_shared::Model::embedded()
        .expect("model")
        .score(&application)
        .expect("score");
    DecisionRecord {
        request_id: "r-1".into(),
        applicant_id: Some("SOC-1".into()),
        branch: "Norte".into(),
        channel: Channel::OfflineSync,
        application,
        score,
        received_at_ms: 1_795_428_000_123,
        event_time_ms: 1_795_428_000_001,
        timing: vec![StageTiming {
            name: "total".into(),
            ms: 1.25,
        }],
        client_probability: Some(0.5),
        mismatch: true,
        kpi_seq: None,
        kpi_window: None,
        shadow: Some(
            valle_shared::Model::challenger()
                .expect("challenger")
                .shadow_score(&application_of_record())
                .expect("shadow"),
        ),
        fingerprint: Some(Fingerprint::of_application("r-1", &application_of_record())),
    }
}

fn application_of_record() -> Application {
    valle_shared::parse_application(
        br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"applicant_id":"SOC-1","branch":"Norte"}"#,
    )
    .expect("valid")
}

#[test]
fn a_stored_row_reads_back_as_its_record_and_its_observation() {
    let record = record();
    let mut row: serde_json::Value = serde_json::from_str(&row_json(&record)).expect("json");
    for column in INSERT_COLUMNS {
        assert!(row.get(column).is_some(), "{column}");
    }
    // D1 answers the inserted columns, its row number and the KPI place.
    row["seq"] = 7.into();
    row["kpi_seq"] = serde_json::Value::Null;
    row["kpi_window"] = serde_json::Value::Null;
    let stored: DecisionRow = serde_json::from_value(row.clone()).expect("row");
    assert_eq!(DecisionRecord::from(stored), record);
    let logged: LogRow = serde_json::from_value(row.clone()).expect("log row");
    let logged = LoggedDecision::from(logged);
    assert_eq!(logged.observation, record.observation());
    assert_eq!((logged.seq, logged.counted_before), (7, false));
    row["kpi_seq"] = 3.into();
    let logged: LogRow = serde_json::from_value(row).expect("log row");
    assert!(LoggedDecision::from(logged).counted_before);
}

#[test]
fn policy_hits_and_recourse_read_back_and_older_rows_have_none() {
    let application = valle_shared::parse_application(
        br#"{"seniority_years":9,"home":"rent","term_months":12,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    )
    .expect("valid");
    let score = valle_shared::Model::embedded()
        .expect("model")
        .score(&application)
        .expect("score");
    assert!(!score.policy_hits.is_empty() && score.policy_version.is_some());
    let record = DecisionRecord {
        application,
        score,
        ..record()
    };
    let mut row: serde_json::Value = serde_json::from_str(&row_json(&record)).expect("json");
    let stored: DecisionRow = serde_json::from_value(row.clone()).expect("row");
    assert_eq!(DecisionRecord::from(stored), record);
    // A row stored before migration 0008 has the columns as NULL.
    for column in [
        "policy_name",
        "policy_sha256",
        "policy_hits",
        "recourse",
        "shadow",
    ] {
        row[column] = serde_json::Value::Null;
    }
    let older = DecisionRecord::from(serde_json::from_value::<DecisionRow>(row).expect("row"));
    assert_eq!(older.score.policy_version, None);
    assert!(older.score.policy_hits.is_empty() && older.score.recourse.is_empty());
    assert_eq!(older.shadow, None);
}

#[test]
fn a_thousand_decisions_take_a_few_statements() {
    let records: Vec<DecisionRecord> = (0..1_000)
        .map(|i| DecisionRecord {
            request_id: format!("batch:{i}"),
            ..record()
        })
        .collect();
    let statements = insert(&records, Guard::EachOnItsOwn);
    assert!((2..=8).contains(&statements.len()), "{}", statements.len());
    assert!(statements.iter().all(|s| s.params.len() == 1));
    assert!(statements[0]
        .sql
        .contains("ON CONFLICT(request_id) DO NOTHING"));
    assert_eq!(select_existing(&records).params.len(), 1);
}
