//! `/metrics`, `/healthz` and `/readyz` over real HTTP; the exposition passes `promtool check
//! metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unstoppable_contract::{RunResult, RunSummary};
use unstoppable_operator::metrics::{Metrics, ResourceLabels};
use unstoppable_operator::server::{router, ServerState};
use unstoppable_operator::watch_health::WatchHealth;

async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or_default();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        code,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    )
}

/// The body of an HTTP/1.1 chunked response (a streamed exposition is sent that way).
fn dechunk(mut framed: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = framed.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        body.push_str(rest.get(..size).expect("chunk"));
        framed = rest.get(size + 2..).unwrap_or_default();
    }
    body
}

#[tokio::test]
async fn endpoints_serve_health_readiness_and_metrics() {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let watches = Arc::new(WatchHealth::default());
    let app = router(ServerState {
        metrics: metrics.clone(),
        ready: ready.clone(),
        watches: watches.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(get(port, "/readyz").await.0, 503);
    ready.store(true, Ordering::Relaxed);
    assert_eq!(get(port, "/readyz").await.0, 200);
    // A watch failing for minutes (e.g. an object it cannot decode) makes the operator unready.
    let now = std::time::Instant::now();
    for ago in [200u64, 150, 100, 50, 1] {
        watches.error(
            "backupresource",
            now.checked_sub(std::time::Duration::from_secs(ago))
                .unwrap_or(now),
        );
    }
    let (code, body) = get(port, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("backupresource"), "{body}");
    watches.ok("backupresource");
    assert_eq!(get(port, "/readyz").await.0, 200);

    let l = ResourceLabels {
        namespace: "backups".into(),
        customer: "acme".into(),
        resource: "www".into(),
    };
    metrics.set_schedule(&l, None, Some(3600), false);
    let summary = RunSummary {
        success: true,
        duration_seconds: 3.5,
        bytes_added: 10,
        ..Default::default()
    };
    metrics.record_run(
        &l,
        1_700_000_000.0,
        Some(&summary),
        RunResult::Success,
        true,
    );
    metrics.reconciled("backupresource", std::time::Duration::from_millis(3));
    let (code, body) = get(port, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains(r#"unstoppable_backup_last_success_timestamp_seconds{namespace="backups",customer="acme",resource="www"} 1700000000.0"#), "{body}");
    assert!(
        body.contains(r#"unstoppable_reconciles_total{controller="backupresource"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"unstoppable_reconcile_duration_seconds_bucket{le="0.005",controller="backupresource"} 1"#),
        "{body}"
    );

    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), &body).expect("write");
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file.path()).expect("open"))
        .output()
        .expect("promtool (run scripts/install-test-deps.sh)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool parses the classic text format, where a counter's HELP names the `_total` series;
    // OpenMetrics puts it on the family name. That one finding is the format, not our naming.
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let family = l.strip_suffix("_total no help text");
            !family.is_some_and(|f| {
                body.contains(&format!("# HELP {f} "))
                    && body.contains(&format!("# TYPE {f} counter"))
            })
        })
        .collect();
    assert!(
        findings.is_empty(),
        "promtool check metrics:\n{report}\n{body}"
    );
}
