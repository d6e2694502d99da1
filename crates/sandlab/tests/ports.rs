//! The port proxy end to end: a web server inside a real sandbox, reached from outside
//! only through `sandlab serve`'s proxy listener and the sandbox's agent. Who may open a
//! port (the owner's token, a one-time sign-in exchanged for a cookie of the port's origin,
//! a share link until it expires), what never reaches the sandbox (Sandlab's cookies and
//! token) or comes back from it (cookies named like Sandlab's), WebSockets, and the bounds
//! that keep a hostile or slow sandbox from tying up the server: concurrency, a server
//! that never answers, a 1 GiB answer with the server's memory flat, and conflicting
//! request framing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::{Client, Server};
use common::*;
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const APP: &str = include_str!("probes/port_app.py");
const PORT: u16 = 8000;

/// A plain HTTP client that shows redirects instead of following them.
fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// Starts the test app on `PORT` in a new sandbox of `api`'s user, and waits until the
/// ports list shows it.
fn sandbox_with_app(api: &Client) -> (String, String) {
    sandbox_of(api, json!({}))
}

/// As [`sandbox_with_app`], for a sandbox made from `body`.
fn sandbox_of(api: &Client, body: Value) -> (String, String) {
    let sb = api.create(body);
    let id = sb["id"].as_str().expect("id").to_owned();
    let w = api.put_file(&id, "/srv/app.py", APP.as_bytes());
    assert_eq!(w.status, StatusCode::NO_CONTENT, "{}", w.text());
    let r = api.sh(
        &id,
        &format!("setsid python3 /srv/app.py {PORT} >/tmp/app.log 2>&1 </dev/null &"),
    );
    assert_eq!(r["exit_code"], 0, "{r}");
    let mut url = String::new();
    let up = wait_until(Duration::from_secs(20), || {
        let r = api.call(Method::GET, &format!("/api/v1/sandboxes/{id}/ports"), None);
        let ports = r.json();
        match ports["items"]
            .as_array()
            .and_then(|items| items.iter().find(|p| p["port"] == PORT))
        {
            Some(p) => {
                url = p["url"].as_str().unwrap_or_default().to_owned();
                true
            }
            None => false,
        }
    });
    assert!(
        up,
        "port {PORT} never listened: {}",
        api.sh(&id, "cat /tmp/app.log")
    );
    assert!(url.ends_with(&format!("/{id}/{PORT}/")), "{url}");
    (id, url)
}

fn get(
    client: &reqwest::blocking::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut b = client.get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = b.send().expect("proxy request");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().unwrap_or_default())
}

/// `name=value` of the `Set-Cookie` an answer carries, to send back as a `Cookie`.
fn cookie_pair(headers: &reqwest::header::HeaderMap) -> String {
    let set = headers[SET_COOKIE].to_str().expect("an ASCII Set-Cookie");
    set.split(';').next().unwrap_or_default().to_owned()
}

fn bearer(api: &Client) -> String {
    format!("Bearer {}", api.token())
}

#[test]
fn a_port_opens_for_its_owner_and_no_one_else() {
    let data = data_dir();
    let server = Server::start(&data);
    let owner = server.add_user("learner");
    let other = server.add_user("learner");
    let (id, url) = sandbox_with_app(&owner);
    let web = browser();

    // The owner's token opens it; nothing else does.
    let (status, _, body) = get(&web, &url, &[("authorization", &bearer(&owner))]);
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "hello from the sandbox\n")
    );
    let (status, _, _) = get(&web, &url, &[("authorization", &bearer(&other))]);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = get(&web, &url, &[]);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = get(&web, &url, &[("cookie", "sandlab_proxy=0000")]);
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The other user cannot make a sign-in for it either, nor list its ports.
    let r = other.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/ports/{PORT}/open"),
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = other.call(Method::GET, &format!("/api/v1/sandboxes/{id}/ports"), None);
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A one-time sign-in: exchanged once for a cookie scoped to this port's path.
    let r = owner.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/ports/{PORT}/open"),
        Some(&json!({"path": "/headers?x=1"})),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sign_in = r.json()["url"].as_str().expect("url").to_owned();
    let (status, headers, _) = get(&web, &sign_in, &[]);
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/{id}/{PORT}/headers?x=1"));
    let cookie = headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("sandlab_proxy="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains(&format!("Path=/{id}/{PORT}/")),
        "{cookie}"
    );
    let pair = cookie_pair(&headers);
    let (status, _, _) = get(&web, &sign_in, &[]);
    assert_eq!(status, StatusCode::FORBIDDEN, "a sign-in link works once");

    // With the cookie the page opens; Sandlab's cookies and the proxy's own stay behind.
    let origin = url.split(&format!("/{id}/")).next().unwrap().to_owned();
    let page = format!("{origin}{location}");
    let jar = format!("{pair}; sandlab_session=stolen; sandlab_csrf=stolen; app=kept");
    let (status, _, body) = get(&web, &page, &[("cookie", &jar)]);
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("headers as JSON");
    assert_eq!(seen["cookie"], "app=kept", "{seen}");
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert_eq!(
        seen["x-forwarded-prefix"],
        format!("/{id}/{PORT}"),
        "{seen}"
    );
    // The bearer token is not passed on either. One caller's requests reuse a connection
    // inside the sandbox; another caller (the cookie's grant) never gets that one.
    let peer = |headers: &[(&str, &str)]| -> (Value, String) {
        let (_, _, body) = get(&web, &format!("{url}headers"), headers);
        let seen: Value = serde_json::from_str(&body).expect("headers as JSON");
        let peer = seen["_peer"].as_str().unwrap_or_default().to_owned();
        (seen, peer)
    };
    let token = bearer(&owner);
    let (seen, first) = peer(&[("authorization", &token)]);
    assert!(seen.get("authorization").is_none(), "{seen}");
    let (_, second) = peer(&[("authorization", &token)]);
    assert_eq!(
        first, second,
        "the owner's second request reuses the connection"
    );
    // The same user signed in by cookie (another tab) may share it; a share link may not.
    let (_, by_cookie) = peer(&[("cookie", &pair)]);
    assert_eq!(by_cookie, first, "the owner's tabs share a connection");
    let share = owner.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/ports/{PORT}/shares"),
        Some(&json!({"ttl": "5m"})),
    );
    let link = share.json()["url"].as_str().expect("share url").to_owned();
    let (_, headers, _) = get(&web, &link, &[]);
    let shared = cookie_pair(&headers);
    let (_, by_share) = peer(&[("cookie", &shared)]);
    assert!(!by_share.is_empty());
    assert_ne!(
        by_share, first,
        "a share link's visitor got the owner's connection"
    );
    // A page of another site (fetch metadata) cannot use the cookie; a navigation can.
    let (status, _, _) = get(
        &web,
        &format!("{url}headers"),
        &[
            ("cookie", &pair),
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "cors"),
        ],
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = get(
        &web,
        &format!("{url}headers"),
        &[
            ("cookie", &pair),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
        ],
    );
    assert_eq!(status, StatusCode::OK);
    // The cookie is for this port only.
    let (status, _, _) = get(&web, &format!("{origin}/{id}/8001/"), &[("cookie", &pair)]);
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A sandbox cannot set Sandlab's cookies; its redirects stay under its prefix.
    let (_, headers, _) = get(&web, &format!("{url}cookies"), &[("cookie", &pair)]);
    let set: Vec<_> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(set, ["app=1; Path=/"]);
    let (status, headers, _) = get(&web, &format!("{url}redirect"), &[("cookie", &pair)]);
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[LOCATION], format!("/{id}/{PORT}/landed").as_str());
    // A page's absolute link (no prefix) finds its way back through its Referer.
    let (status, headers, _) = get(
        &web,
        &format!("{origin}/static/app.js"),
        &[("referer", &page)],
    );
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        headers[LOCATION],
        format!("/{id}/{PORT}/static/app.js").as_str()
    );

    // Nothing listens on another port: a clear 502, not a hang.
    let (status, _, body) = get(
        &web,
        &format!("{origin}/{id}/8001/"),
        &[("authorization", &bearer(&owner))],
    );
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("Nothing listens on port 8001"), "{body}");
}

#[test]
fn a_share_link_opens_one_port_until_it_expires_or_is_revoked() {
    let data = data_dir();
    let server = Server::start(&data);
    let owner = server.add_user("learner");
    let (id, _) = sandbox_with_app(&owner);
    let web = browser();
    let share = |ttl: &str| {
        let r = owner.call(
            Method::POST,
            &format!("/api/v1/sandboxes/{id}/ports/{PORT}/shares"),
            Some(&json!({"ttl": ttl})),
        );
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()
    };
    let open = |link: &str| -> (StatusCode, String) {
        let (status, headers, body) = get(&web, link, &[]);
        if status != StatusCode::SEE_OTHER {
            return (status, body);
        }
        let pair = cookie_pair(&headers);
        let origin = link.split(&format!("/{id}/")).next().unwrap();
        let (status, _, body) = get(
            &web,
            &format!("{origin}{}", headers[LOCATION].to_str().unwrap()),
            &[("cookie", &pair)],
        );
        (status, body)
    };

    let short = share("3s");
    let link = short["url"].as_str().expect("url").to_owned();
    assert_eq!(
        open(&link),
        (StatusCode::OK, "hello from the sandbox\n".to_owned())
    );
    let long = share("1h");
    let listed = owner
        .call(Method::GET, &format!("/api/v1/sandboxes/{id}/shares"), None)
        .json();
    let ids: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, [short["id"].clone(), long["id"].clone()]);
    assert!(
        listed["items"][0]["url"].is_null(),
        "the secret is shown once: {listed}"
    );

    // Expiry ends it (the cookie it gave too).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(open(&link).0, StatusCode::FORBIDDEN);
    // Revoking ends it at once.
    let long_link = long["url"].as_str().unwrap().to_owned();
    assert_eq!(open(&long_link).0, StatusCode::OK);
    // A WebSocket opened through the link, from the port's own page.
    let (_, headers, _) = get(&web, &long_link, &[]);
    let pair = cookie_pair(&headers);
    let origin = long_link
        .split(&format!("/{id}/"))
        .next()
        .unwrap()
        .to_owned();
    let ws_url = format!("{}/{id}/{PORT}/ws", origin.replacen("http://", "ws://", 1));
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    req.headers_mut().insert("cookie", pair.parse().unwrap());
    req.headers_mut().insert("origin", origin.parse().unwrap());
    let (mut ws, _) = tungstenite::connect(req).expect("a WebSocket through the share link");
    ws.send(tungstenite::Message::text("still here")).unwrap();
    assert_eq!(
        ws.read().unwrap().into_text().unwrap().as_str(),
        "still here"
    );
    // Another site's page cannot open one with the same cookie.
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    req.headers_mut().insert("cookie", pair.parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert!(
        tungstenite::connect(req).is_err(),
        "a WebSocket from another origin was let in"
    );
    let r = owner.call(
        Method::DELETE,
        &format!(
            "/api/v1/sandboxes/{id}/shares/{}",
            long["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(open(&long_link).0, StatusCode::FORBIDDEN);
    // The open WebSocket ends too, within the proxy's re-check (5 s) and its cache (5 s).
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        if Instant::now() > deadline {
            break false;
        }
        let _ = ws.send(tungstenite::Message::text("ping"));
        match ws.read() {
            Ok(tungstenite::Message::Close(_)) => break true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break true,
        }
    };
    assert!(ended, "the WebSocket outlived its revoked share link");
    // Bad requests get one clear sentence.
    for (body, code) in [
        (json!({"ttl": "forever"}), "invalid"),
        (json!({"ttl": "90d"}), "invalid"),
        (json!({"path": "//evil"}), "invalid_path"),
    ] {
        let r = owner.call(
            Method::POST,
            &format!("/api/v1/sandboxes/{id}/ports/{PORT}/shares"),
            Some(&body),
        );
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}: {}",
            r.text()
        );
    }
    let r = owner.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/ports/0/open"),
        Some(&json!({})),
    );
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_port".to_owned())
    );
}

#[test]
fn websockets_and_uploads_pass_through() {
    let data = data_dir();
    let server = Server::start(&data);
    let owner = server.add_user("learner");
    let (_, url) = sandbox_with_app(&owner);

    // A WebSocket echo, text and a large binary message.
    let ws_url = format!("{}ws", url.replacen("http://", "ws://", 1));
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    req.headers_mut()
        .insert("authorization", bearer(&owner).parse().unwrap());
    let (mut ws, resp) = tungstenite::connect(req).expect("WebSocket through the proxy");
    assert_eq!(resp.status(), 101);
    ws.send(tungstenite::Message::text("ping through the proxy"))
        .unwrap();
    assert_eq!(
        ws.read().unwrap().into_text().unwrap().as_str(),
        "ping through the proxy"
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(tungstenite::Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap().into_data().to_vec(), big);
    ws.close(None).unwrap();

    // A 20 MiB upload arrives whole.
    let body: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 253) as u8).collect();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let resp = browser()
        .post(&url)
        .header("authorization", bearer(&owner))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().unwrap(), format!("{} {digest}\n", 20 << 20));
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_hostile_or_slow_sandbox_cannot_tie_up_the_server() {
    let data = data_dir();
    let server = Server::start_alone(
        &data,
        "[server]\nproxy_listen = \"127.0.0.1:0\"\nproxy_timeout = \"3s\"\nproxy_per_sandbox = 16\nproxy_max_body = \"1M\"\n",
    );
    let owner = server.add_user("learner");
    let (id, url) = sandbox_with_app(&owner);
    let auth = bearer(&owner);

    // A server that never answers: 504 after the timeout, not a hang.
    let started = Instant::now();
    let (status, _, body) = get(
        &browser(),
        &format!("{url}never"),
        &[("authorization", &auth)],
    );
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // 100 requests at once to a slow page: at most 16 in flight, the rest refused with
    // 503 at once; the API answers all the while.
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (u, a) = (format!("{url}slow"), auth.clone());
            std::thread::spawn(move || get(&browser(), &u, &[("authorization", &a)]).0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let r = owner.call(Method::GET, &format!("/api/v1/sandboxes/{id}"), None);
    assert_eq!(r.status, StatusCode::OK);
    let codes: Vec<StatusCode> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = codes.iter().filter(|c| **c == StatusCode::OK).count();
    let busy = codes
        .iter()
        .filter(|c| **c == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(ok + busy, 100, "{codes:?}");
    assert!(ok >= 1 && busy >= 1, "{ok} ok, {busy} busy");

    // A body over the limit: 413 on its declared length, before a byte of it is read
    // (the client has not sent it).
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let path = format!("/{id}/{PORT}/");
    let mut sock = TcpStream::connect(&authority).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    );
    sock.write_all(head.as_bytes()).unwrap();
    let mut first = [0u8; 12];
    sock.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 413");
    drop(sock);

    // 1 GiB through the proxy, read slowly at first: the server's memory stays flat.
    let pid = server.pid();
    let before = rss_kib(pid);
    let mut resp = browser()
        .get(format!("{url}big?n={}", 1u64 << 30))
        .header("authorization", &auth)
        .timeout(Duration::from_secs(600))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut peak = before;
    let mut reads = 0u32;
    loop {
        let n = resp.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        reads += 1;
        if reads < 20 {
            std::thread::sleep(Duration::from_millis(100));
        }
        if reads.is_multiple_of(64) {
            peak = peak.max(rss_kib(pid));
        }
    }
    assert_eq!(total, 1 << 30);
    assert!(
        peak < before + 64 * 1024,
        "server RSS went from {before} KiB to {peak} KiB"
    );

    // Conflicting framing: one request with both Content-Length and chunked encoding, a
    // second request hidden in its body. The sandbox sees one request, never the hidden one
    // without the proxy's checks.
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let path = format!("/{id}/{PORT}/");
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {auth}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {path}smuggled HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    );
    let mut sock = TcpStream::connect(&authority).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    let log = owner.sh(&id, "cat /tmp/requests.log")["stdout"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !log.contains("/smuggled"),
        "the hidden request reached the sandbox:\n{log}"
    );
    assert!(server.admin.call(Method::GET, "/healthz", None).status == StatusCode::OK);
}

#[test]
fn a_directory_downloads_as_a_tar_gz() {
    let data = data_dir();
    let server = Server::start(&data);
    let owner = server.add_user("learner");
    let other = server.add_user("learner");
    let sb = owner.create(json!({}));
    let id = sb["id"].as_str().expect("id").to_owned();
    let r = owner.sh(
        &id,
        "mkdir -p /srv/site/css /srv/site/empty && echo '<h1>hi</h1>' > /srv/site/index.html \
         && printf 'body{}' > /srv/site/css/a.css && chmod 600 /srv/site/css/a.css \
         && ln -s /etc/shadow /srv/site/shadow-link && mkfifo /srv/site/pipe",
    );
    assert_eq!(r["exit_code"], 0, "{r}");

    let resp = owner.call(
        Method::GET,
        &format!("/api/v1/sandboxes/{id}/archive?path=/srv/site"),
        None,
    );
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("site.tar.gz");
    std::fs::write(&file, &resp.bytes).unwrap();
    let listed = std::process::Command::new("tar")
        .args(["-tzvf"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        names,
        [
            "site/",
            "site/css/",
            "site/empty/",
            "site/index.html",
            "site/css/a.css"
        ],
        "{listing}"
    );
    assert!(
        listing.contains("-rw-------"),
        "the file's mode is kept: {listing}"
    );
    let extracted = std::process::Command::new("tar")
        .args(["-xzf"])
        .arg(&file)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(extracted.success());
    assert_eq!(
        std::fs::read_to_string(out.path().join("site/index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("site/css/a.css")).unwrap(),
        "body{}"
    );

    // A file is not a directory; another user finds nothing.
    let r = owner.call(
        Method::GET,
        &format!("/api/v1/sandboxes/{id}/archive?path=/srv/site/index.html"),
        None,
    );
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "not_a_directory".to_owned())
    );
    let r = other.call(
        Method::GET,
        &format!("/api/v1/sandboxes/{id}/archive?path=/srv/site"),
        None,
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = owner.call(
        Method::GET,
        &format!("/api/v1/sandboxes/{id}/archive?path=/srv/../etc"),
        None,
    );
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[test]
fn a_port_of_a_machine_opens_the_same_way() {
    // In a machine the agent runs beside systemd (started with `runc exec` into the
    // sandbox's network namespace): it must reach the machine's own servers, not the host's.
    let data = data_dir();
    let server = Server::start(&data);
    let api = &server.admin;
    let (id, url) = sandbox_of(api, json!({"profile": "machine", "image": "machine"}));
    let web = browser();
    let (status, _, body) = get(&web, &url, &[("authorization", &bearer(api))]);
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "hello from the sandbox\n")
    );
    let r = api.sh(&id, "tail -n 1 /tmp/requests.log");
    assert_eq!(r["stdout"], "GET / HTTP/1.1\n", "{r}");
    let other = server.add_user("learner");
    let (status, _, _) = get(&web, &url, &[("authorization", &bearer(&other))]);
    assert_eq!(status, StatusCode::NOT_FOUND);
}
