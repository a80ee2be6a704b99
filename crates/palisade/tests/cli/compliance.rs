//! `palisade compliance report`: JSON and a printable page on standard output, a standard turned
//! off refused with the setting that turns it on, and the run audited.

use super::{palisade, run};

#[tokio::test]
async fn compliance_report_prints_json_or_a_page_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (output, stdout, _) = run(palisade(dir.path()).args(["compliance", "report", "--help"]));
    assert!(output.status.success());
    for needle in ["--standard", "--format", "--range", "GDPR", "PCI_DSS", "ISO27001", "never a certification"] {
        assert!(stdout.contains(needle), "--help lacks {needle}:\n{stdout}");
    }

    let (output, stdout, stderr) = run(palisade(dir.path()).args(["compliance", "report", "--standard", "gdpr"]));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (report["standard"].as_str(), report["wording"].as_str()),
        (Some("GDPR"), Some("technical control checks"))
    );
    assert_eq!(report["range"]["seconds"], 2_592_000);
    let status = |id: &str| {
        let controls = report["controls"].as_array().unwrap();
        controls.iter().find(|c| c["id"] == id).unwrap()["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status("master_key_protection"), "met", "PALISADE_MASTER_KEY is set");
    assert_eq!(status("admin_mfa"), "not_applicable", "no administrator yet");
    assert_eq!(status("transport_security"), "not_met", "the default issuer is plain http");
    let master = report["controls"].as_array().unwrap().iter().find(|c| c["id"] == "master_key_protection").unwrap();
    assert_eq!(master["evidence"]["config"]["master_key"], "***");
    assert!(!stdout.contains(super::MASTER_KEY), "the master key is never printed");

    let (output, html, _) = run(palisade(dir.path()).args([
        "compliance",
        "report",
        "--standard",
        "HIPAA",
        "--format",
        "html",
        "--range",
        "3600",
    ]));
    assert!(output.status.success());
    assert!(html.starts_with("<!doctype html>") && html.contains("<style>"), "a page that opens without a server");
    assert!(html.contains("HIPAA: technical control checks") && html.contains("§164.312(b)"));

    // A standard turned off: exit 1, naming the setting; the guide's name turns it on.
    let (output, _, stderr) = run(palisade(dir.path()).args(["compliance", "report", "--standard", "PCI_DSS"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("compliance_pci_dss_enabled"), "{stderr}");
    let (output, stdout, _) = run(palisade(dir.path())
        .args(["compliance", "report", "--standard", "PCI_DSS"])
        .env("COMPLIANCE_PCI_DSS_ENABLED", "true"));
    assert!(output.status.success(), "{stdout}");
    // An unknown standard or format is a usage error.
    let (output, _, stderr) = run(palisade(dir.path()).args(["compliance", "report", "--standard", "SOC2"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("not a standard"), "{stderr}");
    let (output, _, _) =
        run(palisade(dir.path()).args(["compliance", "report", "--standard", "SOX", "--format", "pdf"]));
    assert_eq!(output.status.code(), Some(2));

    // Each report made is in the audit chain, which still verifies.
    let url = format!("sqlite://{}/palisade.db", dir.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let standards: Vec<String> = sqlx::query_scalar(
        "SELECT json_extract(details, '$.standard') FROM audit_log WHERE kind = 'compliance.report' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(standards, ["GDPR", "HIPAA", "PCI_DSS"]);
    let (output, stdout, _) = run(palisade(dir.path()).args(["audit", "verify"]));
    assert!(output.status.success(), "{stdout}");
}
