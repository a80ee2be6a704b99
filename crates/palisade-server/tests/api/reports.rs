//! Compliance reports over HTTP (`GET /compliance/reports/{standard}`, issue #11 item 5): the JSON
//! shape of technical control checks, controls that flip when what they measure changes (an
//! administrator enrols TOTP, users give consent, a weaker password policy), scopes, unknown and
//! disabled standards, the printable page with its escaping and CSP, and the audit record of each.

use std::sync::Arc;

use palisade_core::clock::{Clock, ManualClock};
use palisade_core::mfa::totp::TotpSecret;
use serde_json::{Value, json};

use crate::{
    TestApp, audit_event_kinds, login_user, make_admin, register_user, spawn_app, spawn_app_with, spawn_app_with_clock,
    status_json,
};

/// The test master key (`main.rs`), which no report may show.
const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

async fn admin_token(app: &TestApp) -> (String, String) {
    let id = register_user(app, "root").await;
    make_admin(app, &id).await;
    (id, login_user(app, "root").await["access_token"].as_str().unwrap().to_owned())
}

async fn get_report(app: &TestApp, bearer: &str, path_and_query: &str) -> (u16, Value) {
    let url = app.url(&format!("/compliance/reports/{path_and_query}"));
    status_json(app.http.get(url).bearer_auth(bearer).send().await.unwrap()).await
}

fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["controls"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no {id}"))
}

fn status_of(report: &Value, id: &str) -> String {
    control(report, id)["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_report_is_technical_control_checks_with_evidence_a_score_and_an_audit_record() {
    let app = spawn_app().await;
    let (admin_id, admin) = admin_token(&app).await;
    let (status, report) = get_report(&app, &admin, "gdpr").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["standard"], "GDPR");
    assert_eq!(report["wording"], "technical control checks");
    assert!(report["disclaimer"].as_str().unwrap().contains("not a certification"));
    assert_eq!(report["range"]["seconds"], 2_592_000, "30 days by default");
    for field in ["generated_at", "since", "until"] {
        let text = if field == "generated_at" { &report[field] } else { &report["range"][field] };
        assert!(
            time::OffsetDateTime::parse(text.as_str().unwrap(), &time::format_description::well_known::Rfc3339).is_ok()
        );
    }

    let controls = report["controls"].as_array().unwrap();
    let ids: Vec<&str> = controls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for id in [
        "password_policy",
        "password_hashing",
        "account_lockout",
        "admin_mfa",
        "encryption_at_rest",
        "key_rotation",
        "master_key_protection",
        "audit_chain",
        "personal_data_retention",
        "erasure",
        "consent_coverage",
        "transport_security",
    ] {
        assert!(ids.contains(&id), "GDPR lacks {id}: {ids:?}");
    }
    for c in controls {
        assert!(["met", "not_met", "not_applicable"].contains(&c["status"].as_str().unwrap()), "{c}");
        assert!(c["requirement"].as_str().unwrap().starts_with("GDPR Art. "), "{c}");
        assert!(!c["title"].as_str().unwrap().is_empty());
        let evidence = &c["evidence"];
        assert!(evidence["measured"].is_string() && evidence["expected"].is_string() && evidence["config"].is_object());
        assert_eq!(c["recommendation"].is_string(), c["status"] == "not_met", "{c}");
    }
    let met = controls.iter().filter(|c| c["status"] == "met").count();
    let counted = controls.iter().filter(|c| c["status"] != "not_applicable").count();
    assert_eq!(
        (report["requirements_met"].as_u64(), report["requirements_total"].as_u64()),
        (Some(met as u64), Some(counted as u64))
    );
    let score = report["score"].as_f64().unwrap();
    assert!((score - met as f64 / counted as f64).abs() < 1e-9);
    assert_eq!(report["score_percent"].as_f64().unwrap(), (score * 1000.0).round() / 10.0);
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), counted - met);
    assert_eq!(report["recommendations"].as_array().unwrap().len(), violations.len());

    // What a fresh test server measures.
    assert_eq!(status_of(&report, "audit_chain"), "met");
    let chain = &control(&report, "audit_chain")["evidence"]["query"];
    assert!(chain["result"].as_str().unwrap().contains("first broken link: none"), "{chain}");
    assert_eq!(status_of(&report, "master_key_protection"), "met");
    assert_eq!(status_of(&report, "transport_security"), "not_met", "the test issuer is plain http");
    assert_eq!(status_of(&report, "password_hashing"), "met");
    assert_eq!(status_of(&report, "key_rotation"), "met");
    assert_eq!(status_of(&report, "encryption_at_rest"), "met");
    let master = control(&report, "master_key_protection");
    assert_eq!(master["evidence"]["config"]["master_key"], "***");
    let body = report.to_string();
    assert!(!body.contains(MASTER_KEY), "no secret in a report");
    for word in ["compliant", "certified"] {
        assert!(!body.to_lowercase().contains(word), "{word}");
    }

    // The run is in the audit chain, with what it found.
    assert!(audit_event_kinds(&app).await.contains(&"compliance.report".to_owned()));
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    let record = records.iter().rev().find(|r| r.kind == "compliance.report").unwrap();
    assert_eq!(record.actor.as_deref(), Some(admin_id.as_str()));
    let details: Value = serde_json::from_str(&record.details).unwrap();
    assert_eq!(details["standard"], "GDPR");
    assert_eq!(details["requirements_met"].as_u64(), Some(met as u64));
    assert_eq!(details["range_seconds"], 2_592_000);
    assert!(details["violations"].as_array().unwrap().iter().any(|v| v == "transport_security"));
}

#[tokio::test]
async fn admin_mfa_coverage_turns_met_once_the_administrator_enrols_totp() {
    let clock = Arc::new(ManualClock::fixed());
    let app = spawn_app_with_clock(&[], clock.clone()).await;
    let (_, admin) = admin_token(&app).await;
    let (status, before) = get_report(&app, &admin, "HIPAA").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(status_of(&before, "admin_mfa"), "not_met");
    let evidence = &control(&before, "admin_mfa")["evidence"];
    assert!(evidence["measured"].as_str().unwrap().starts_with("0 of 1 administrators"), "{evidence}");
    assert_eq!(evidence["query"]["result"], "0 of 1");
    assert!(control(&before, "admin_mfa")["recommendation"].as_str().unwrap().contains("mfa_required_roles"));
    assert!(before["violations"].as_array().unwrap().iter().any(|v| v["control"] == "admin_mfa"));

    let setup: Value =
        app.http.post(app.url("/auth/mfa/totp/setup")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(u64::try_from(clock.now().unix_timestamp()).unwrap()).unwrap();
    let confirm =
        app.http.post(app.url("/auth/mfa/totp/confirm")).bearer_auth(&admin).json(&json!({"code": code})).send().await;
    assert_eq!(confirm.unwrap().status(), 204);

    let (_, after) = get_report(&app, &admin, "HIPAA").await;
    assert_eq!(status_of(&after, "admin_mfa"), "met");
    assert_eq!(control(&after, "admin_mfa")["evidence"]["query"]["result"], "1 of 1");
    assert!(after["requirements_met"].as_u64() > before["requirements_met"].as_u64());
    assert!(!after["violations"].as_array().unwrap().iter().any(|v| v["control"] == "admin_mfa"));
}

#[tokio::test]
async fn consent_coverage_counts_the_users_holding_a_live_data_processing_consent() {
    let app = spawn_app().await;
    let (_, admin) = admin_token(&app).await;
    register_user(&app, "alice").await;
    let alice = login_user(&app, "alice").await["access_token"].as_str().unwrap().to_owned();
    let (_, report) = get_report(&app, &admin, "GDPR").await;
    assert_eq!(status_of(&report, "consent_coverage"), "not_met");
    assert_eq!(control(&report, "consent_coverage")["evidence"]["query"]["result"], "0 of 2");

    let consent =
        json!({"type": "data_processing", "text": "We process your data to run your account.", "version": "1"});
    for token in [&admin, &alice] {
        let response = app.http.post(app.url("/compliance/consents")).bearer_auth(token).json(&consent).send().await;
        let response = response.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let (_, report) = get_report(&app, &admin, "GDPR").await;
    assert_eq!(status_of(&report, "consent_coverage"), "met");
    assert_eq!(control(&report, "consent_coverage")["evidence"]["query"]["result"], "2 of 2");

    // A withdrawal counts as no consent.
    let response = app.http.delete(app.url("/compliance/consents/data_processing")).bearer_auth(&alice).send().await;
    assert!(response.unwrap().status().is_success());
    let (_, report) = get_report(&app, &admin, "GDPR").await;
    assert_eq!(control(&report, "consent_coverage")["evidence"]["query"]["result"], "1 of 2");
}

#[tokio::test]
async fn a_weak_password_minimum_fails_the_password_policy_control() {
    let app = spawn_app_with(&[("SECURITY_PASSWORD_MIN_LENGTH", "8")]).await;
    let (_, admin) = admin_token(&app).await;
    let (_, report) = get_report(&app, &admin, "ISO27001").await;
    assert_eq!(status_of(&report, "password_policy"), "not_met");
    let policy = control(&report, "password_policy");
    assert_eq!(policy["requirement"], "ISO/IEC 27001:2022 A.5.17");
    assert_eq!(policy["evidence"]["config"]["password_min_length"], "8");
    assert!(policy["evidence"]["measured"].as_str().unwrap().starts_with("minimum length 8"));
    assert!(policy["recommendation"].as_str().unwrap().contains("password_min_length to at least 12"));

    let app = spawn_app().await;
    let (_, admin) = admin_token(&app).await;
    let (_, report) = get_report(&app, &admin, "ISO27001").await;
    assert_eq!(status_of(&report, "password_policy"), "met", "12 characters, the common list, history 5");
}

#[tokio::test]
async fn reports_need_the_admin_or_a_compliance_scope() {
    let app = spawn_app().await;
    let (_, admin) = admin_token(&app).await;
    let unauthenticated = app.http.get(app.url("/compliance/reports/GDPR")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    register_user(&app, "alice").await;
    let alice = login_user(&app, "alice").await["access_token"].as_str().unwrap().to_owned();
    let (status, problem) = get_report(&app, &alice, "GDPR").await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("INSUFFICIENT_SCOPE")), "{problem}");
    // Nor can a user mint themselves a key with the scope.
    let body = json!({"name": "reports", "scopes": ["compliance:read"]});
    let (status, refused) =
        status_json(app.http.post(app.url("/auth/api-keys")).bearer_auth(&alice).json(&body).send().await.unwrap())
            .await;
    assert_eq!(status, 422, "only an administrator grants compliance scopes: {refused}");

    for (scopes, expected) in
        [(&["compliance:read"][..], 200), (&["compliance:admin"][..], 200), (&["monitoring:read"][..], 403)]
    {
        let body = json!({"name": "auditor", "scopes": scopes});
        let (status, created) =
            status_json(app.http.post(app.url("/auth/api-keys")).bearer_auth(&admin).json(&body).send().await.unwrap())
                .await;
        assert_eq!(status, 201, "{created}");
        let key = created["api_key"].as_str().unwrap();
        let response = app.http.get(app.url("/compliance/reports/SOX")).header("x-api-key", key).send().await.unwrap();
        assert_eq!(response.status(), expected, "{scopes:?}");
        if expected == 200 {
            let report: Value = response.json().await.unwrap();
            assert_eq!(report["standard"], "SOX");
        }
    }
    // The key's report is audited with the key as actor.
    let records = app.palisade.durable_store().audit_records(0, 10_000).await.unwrap();
    let actors: Vec<String> =
        records.iter().filter(|r| r.kind == "compliance.report").filter_map(|r| r.actor.clone()).collect();
    assert_eq!(actors.len(), 2, "refused requests make no report");
    assert!(actors.iter().all(|a| a.starts_with("api_key:")), "{actors:?}");
}

#[tokio::test]
async fn unknown_and_disabled_standards_answer_404_and_bad_parameters_422() {
    let app = spawn_app().await;
    let (_, admin) = admin_token(&app).await;
    let (status, problem) = get_report(&app, &admin, "SOC2").await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("NOT_FOUND")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("GDPR, HIPAA, PCI_DSS, SOX, ISO27001"), "{problem}");

    let (status, problem) = get_report(&app, &admin, "PCI_DSS").await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("NOT_FOUND")), "PCI DSS is off by default");
    assert!(problem["detail"].as_str().unwrap().contains("compliance_pci_dss_enabled = true"), "{problem}");

    for query in ["GDPR?range=299", "GDPR?range=31622401", "GDPR?range=soon", "GDPR?format=pdf", "GDPR?colour=red"] {
        let (status, problem) = get_report(&app, &admin, query).await;
        assert!([400, 422].contains(&status), "{query}: {status} {problem}");
        assert_eq!(problem["code"], "VALIDATION_ERROR", "{query}");
    }
    let (status, report) = get_report(&app, &admin, "GDPR?range=300").await;
    assert_eq!((status, report["range"]["seconds"].as_u64()), (200, Some(300)));

    // Turned on (the guide's name), PCI DSS reports with its own thresholds; others can be off.
    let app = spawn_app_with(&[("COMPLIANCE_PCI_DSS_ENABLED", "true"), ("COMPLIANCE_GDPR_ENABLED", "false")]).await;
    let (_, admin) = admin_token(&app).await;
    let (status, report) = get_report(&app, &admin, "pci_dss").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(control(&report, "account_lockout")["requirement"], "PCI DSS v4.0 8.3.4");
    assert_eq!(status_of(&report, "account_lockout"), "not_met", "PCI DSS asks 30 minutes; the default is 15");
    assert_eq!(status_of(&report, "session_lifetimes"), "not_met", "PCI DSS asks 15 idle minutes; the default is 30");
    let (status, _) = get_report(&app, &admin, "GDPR").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_page_is_printable_html_escaped_under_a_strict_csp() {
    let app = spawn_app_with(&[("PALISADE_ISSUER", "https://id.example.com/o'brien&co")]).await;
    let (_, admin) = admin_token(&app).await;
    let response = app.http.get(app.url("/compliance/reports/GDPR?format=html")).bearer_auth(&admin).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'self'") && !csp.contains("unsafe"), "{csp}");
    assert!(!csp.contains("script-src"), "no script at all");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = response.text().await.unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("GDPR: technical control checks") && html.contains("not a certification"));
    assert!(!html.contains("<script") && !html.contains("<style") && !html.contains(" style="));
    assert!(html.contains(r#"<link rel="stylesheet" href="/compliance/report.css">"#));
    assert!(html.contains("o&#39;brien&amp;co"), "the issuer is escaped");
    assert!(!html.contains("o'brien"));
    assert!(!html.contains(MASTER_KEY));

    // Accept: text/html asks for the page too; the JSON stays the default.
    let page = app
        .http
        .get(app.url("/compliance/reports/GDPR"))
        .bearer_auth(&admin)
        .header("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let json = app.http.get(app.url("/compliance/reports/GDPR")).bearer_auth(&admin).send().await.unwrap();
    assert!(json.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let report: Value = json.json().await.unwrap();
    assert!(control(&report, "transport_security")["evidence"]["measured"].as_str().unwrap().contains("o'brien&co"));

    let css = app.http.get(app.url("/compliance/report.css")).send().await.unwrap();
    assert_eq!(
        (css.status().as_u16(), css.headers()["content-type"].to_str().unwrap()),
        (200, "text/css; charset=utf-8")
    );
}
