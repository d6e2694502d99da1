//! `serve` over HTTPS (issue 13, item 12): the listener speaks TLS with the configured
//! certificate, refuses plain HTTP on that port, and a certificate replaced on disk is used
//! for the connections after it (no restart), while a half-written one is not.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use sandlab_server::listener::{serve, ConnectionLimits};
use sandlab_server::tls::{TlsFiles, RECHECK};
use tokio_util::sync::CancellationToken;

/// A self-signed certificate for 127.0.0.1 with `cn`, written to `dir/cert.pem` and
/// `dir/key.pem` (through temporary files, as a renewal would); the certificate's PEM.
fn make_cert(dir: &Path, cn: &str) -> Vec<u8> {
    let (cert, key) = (dir.join("new-cert.pem"), dir.join("new-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            // A leaf, not a CA: webpki refuses a CA certificate as a server's own.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&key, dir.join("key.pem")).unwrap();
    std::fs::rename(&cert, dir.join("cert.pem")).unwrap();
    std::fs::read(dir.join("cert.pem")).unwrap()
}

fn client_trusting(pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .tls_built_in_root_certs(false)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_with_a_certificate_that_is_reloaded_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_cert(dir.path(), "first");
    let files = TlsFiles::open(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route("/hi", get(|| async { "hello over tls" }));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        app,
        ConnectionLimits::default(),
        shutdown.clone(),
        Some(Arc::clone(&files)),
    ));
    let url = format!("https://127.0.0.1:{port}/hi");

    let body = client_trusting(&first)
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hello over tls");
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/hi"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered on the TLS port");

    // A half-written certificate is not taken: the first one keeps serving.
    std::fs::write(
        dir.path().join("cert.pem"),
        b"-----BEGIN CERTIFICATE-----\nAAAA",
    )
    .unwrap();
    tokio::time::sleep(RECHECK + Duration::from_millis(200)).await;
    let still = client_trusting(&first).get(&url).send().await;
    assert!(
        still.is_ok(),
        "a broken file replaced the working certificate: {still:?}"
    );

    // Renewed: connections after the next look use the new one, which only it trusts.
    let second = make_cert(dir.path(), "second");
    tokio::time::sleep(RECHECK + Duration::from_millis(200)).await;
    let _ = client_trusting(&second).get(&url).send().await; // the look happens at accept
    let renewed = client_trusting(&second).get(&url).send().await;
    assert!(
        renewed.is_ok(),
        "the renewed certificate was not used: {renewed:?}"
    );
    let old = client_trusting(&first).get(&url).send().await;
    assert!(old.is_err(), "the old certificate is still served");

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}

#[test]
fn a_certificate_that_cannot_be_used_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsFiles::open(&dir.path().join("nope.pem"), &dir.path().join("nope.key"))
        .err()
        .unwrap();
    assert!(
        missing.contains("cannot read the TLS certificate"),
        "{missing}"
    );
    make_cert(dir.path(), "x");
    std::fs::write(dir.path().join("other.pem"), b"not a key").unwrap();
    let nokey = TlsFiles::open(&dir.path().join("cert.pem"), &dir.path().join("other.pem"))
        .err()
        .unwrap();
    assert!(nokey.contains("holds no usable private key"), "{nokey}");
}
