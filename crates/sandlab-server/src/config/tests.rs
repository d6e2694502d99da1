//! Configuration resolution: defaults, overrides, and errors that name the key.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn defaults_and_overrides() {
    let c = ServerConfig::resolve(&ServerSection::default(), &[], &env(&[])).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert!(!c.secure_cookies());
    let s = ServerSection {
        max_sandboxes_per_user: Some(3),
        default_ttl: Some("5m".into()),
        ..Default::default()
    };
    let c = ServerConfig::resolve(
        &s,
        &[],
        &env(&[
            ("SANDLAB_MAX_SANDBOXES_PER_USER", "9"),
            ("SANDLAB_LISTEN", "0.0.0.0:9000"),
        ]),
    )
    .unwrap();
    assert_eq!(c.max_sandboxes_per_user, 9);
    assert_eq!(c.default_ttl, Duration::from_secs(300));
    assert_eq!(c.public_url, "http://0.0.0.0:9000");
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("SANDLAB_LISTEN", "nowhere", "server.listen"),
        ("SANDLAB_PUBLIC_URL", "ftp://x", "server.public_url"),
        ("SANDLAB_PUBLIC_URL", "https://x/path", "server.public_url"),
        ("SANDLAB_MAX_TTL", "10x", "server.max_ttl"),
        (
            "SANDLAB_MAX_SANDBOXES_PER_USER",
            "-1",
            "server.max_sandboxes_per_user",
        ),
        (
            "SANDLAB_MAX_SANDBOXES_PER_USER",
            "0",
            "server.max_sandboxes_per_user",
        ),
        ("SANDLAB_MAX_FILE_SIZE", "10", "server.max_file_size"),
        ("SANDLAB_LOGIN_RATE", "many", "server.login_rate"),
    ];
    for (var, value, key) in cases {
        let e = ServerConfig::resolve(&ServerSection::default(), &[], &env(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(var), "{var}={value}: {e}");
    }
}

#[test]
fn pools() {
    let p = PoolSection {
        name: Some("small".into()),
        image: None,
        memory: Some("256M".into()),
        cpus: None,
        pids: None,
        disk: None,
        network: Some("egress".into()),
        size: 2,
    };
    let c = ServerConfig::resolve(
        &ServerSection::default(),
        std::slice::from_ref(&p),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(c.pools[0].image, "debian");
    assert_eq!(c.pools[0].limits.memory, ByteSize::mib(256));
    let e = ServerConfig::resolve(
        &ServerSection::default(),
        &[p.clone(), p.clone()],
        &env(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");
    let bad = PoolSection {
        memory: Some("1K".into()),
        ..p
    };
    let e = ServerConfig::resolve(&ServerSection::default(), &[bad], &env(&[])).unwrap_err();
    assert!(e.to_string().contains("pool[0]"), "{e}");
}
