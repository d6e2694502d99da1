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
    let c = ServerConfig::resolve(
        &ServerSection::default(),
        &[],
        &ServerFlags::default(),
        &env(&[]),
    )
    .unwrap();
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
        &ServerFlags::default(),
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
        let e = ServerConfig::resolve(
            &ServerSection::default(),
            &[],
            &ServerFlags::default(),
            &env(&[(var, value)]),
        )
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
        &ServerFlags::default(),
        &env(&[]),
    )
    .unwrap();
    assert_eq!(c.pools[0].image, "debian");
    assert_eq!(c.pools[0].limits.memory, ByteSize::mib(256));
    let e = ServerConfig::resolve(
        &ServerSection::default(),
        &[p.clone(), p.clone()],
        &ServerFlags::default(),
        &env(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");
    let bad = PoolSection {
        memory: Some("1K".into()),
        ..p
    };
    let e = ServerConfig::resolve(
        &ServerSection::default(),
        &[bad],
        &ServerFlags::default(),
        &env(&[]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("pool[0]"), "{e}");
}

#[test]
fn flags_win_over_the_environment_and_leave_it_alone() {
    // The process environment as `sandlab serve` reads it. No other test of this crate
    // reads these two variables from the process.
    std::env::set_var("SANDLAB_LISTEN", "0.0.0.0:9000");
    std::env::set_var("SANDLAB_LABS", "/from/the/environment");
    let file = ServerSection {
        listen: Some("127.0.0.1:7000".into()),
        labs: Some(OneOrMany::One("/from/the/file".into())),
        ..Default::default()
    };
    let c = ServerConfig::from_env(&file, &[], &ServerFlags::default()).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(c.labs, PathBuf::from("/from/the/environment"));
    let flags = ServerFlags {
        listen: Some("127.0.0.1:9100".into()),
        labs: vec!["/from/the/flag".into()],
    };
    let c = ServerConfig::from_env(&file, &[], &flags).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(c.public_url, "http://127.0.0.1:9100");
    assert_eq!(c.labs, PathBuf::from("/from/the/flag"));
    assert_eq!(
        std::env::var("SANDLAB_LISTEN").as_deref(),
        Ok("0.0.0.0:9000")
    );
    assert_eq!(
        std::env::var("SANDLAB_LABS").as_deref(),
        Ok("/from/the/environment")
    );
    // A bad flag is reported under the key it sets.
    let flags = ServerFlags {
        listen: Some("nowhere".into()),
        labs: Vec::new(),
    };
    let e = ServerConfig::from_env(&file, &[], &flags).unwrap_err();
    assert!(e.to_string().contains("server.listen"), "{e}");
    std::env::remove_var("SANDLAB_LISTEN");
    std::env::remove_var("SANDLAB_LABS");
}

#[test]
fn tls_takes_both_files_and_makes_the_derived_origin_https() {
    let resolve = |pairs: &[(&str, &str)]| {
        ServerConfig::resolve(
            &ServerSection::default(),
            &[],
            &ServerFlags::default(),
            &env(pairs),
        )
    };
    let c = resolve(&[
        ("SANDLAB_TLS_CERT", "/etc/sandlab/cert.pem"),
        ("SANDLAB_TLS_KEY", "/etc/sandlab/key.pem"),
    ])
    .unwrap();
    assert_eq!(c.public_url, "https://127.0.0.1:8080");
    assert!(c.secure_cookies());
    let named = resolve(&[
        ("SANDLAB_TLS_CERT", "/c"),
        ("SANDLAB_TLS_KEY", "/k"),
        ("SANDLAB_PUBLIC_URL", "https://labs.example.com"),
    ])
    .unwrap();
    assert_eq!(named.public_url, "https://labs.example.com");
    let half = resolve(&[("SANDLAB_TLS_CERT", "/c")])
        .unwrap_err()
        .to_string();
    assert!(half.contains("server.tls_key"), "{half}");
    let half = resolve(&[("SANDLAB_TLS_KEY", "/k")])
        .unwrap_err()
        .to_string();
    assert!(half.contains("server.tls_cert"), "{half}");
}

#[test]
fn several_lab_directories_from_the_flag_the_environment_or_the_file() {
    let s = ServerSection {
        labs: Some(OneOrMany::Many(vec!["/a".into(), "/b".into()])),
        ..Default::default()
    };
    let c = ServerConfig::resolve(&s, &[], &ServerFlags::default(), &env(&[])).unwrap();
    assert_eq!(c.lab_dirs(), [PathBuf::from("/a"), PathBuf::from("/b")]);
    let c = ServerConfig::resolve(
        &s,
        &[],
        &ServerFlags::default(),
        &env(&[("SANDLAB_LABS", "/x, /y,https://git.example.com/labs.git")]),
    )
    .unwrap();
    assert_eq!(c.lab_dirs().len(), 3);
    let flags = ServerFlags {
        labs: vec!["/f1".into(), "/f2".into()],
        ..Default::default()
    };
    let c = ServerConfig::resolve(&s, &[], &flags, &env(&[("SANDLAB_LABS", "/x")])).unwrap();
    assert_eq!(c.lab_dirs(), [PathBuf::from("/f1"), PathBuf::from("/f2")]);
    let e = ServerConfig::resolve(
        &ServerSection::default(),
        &[],
        &ServerFlags::default(),
        &env(&[("SANDLAB_LABS", ",")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("server.labs"), "{e}");
    let parsed: ServerSection = toml::from_str("labs = \"/one\"").unwrap();
    assert_eq!(parsed.labs, Some(OneOrMany::One("/one".into())));
}

#[test]
fn the_port_proxy_is_never_on_the_uis_host() {
    let resolve = |pairs: &[(&str, &str)]| {
        ServerConfig::resolve(
            &ServerSection::default(),
            &[],
            &ServerFlags::default(),
            &env(pairs),
        )
    };
    // Defaults: a listener next to the main one, its origin derived once bound.
    let c = resolve(&[]).unwrap();
    assert_eq!(c.proxy.listen.unwrap().to_string(), "127.0.0.1:8081");
    assert!(!c.proxy.listen_explicit && c.proxy.url.is_none() && c.proxy.base_domain.is_none());
    assert!(resolve(&[("SANDLAB_PROXY_LISTEN", "off")])
        .unwrap()
        .proxy
        .listen
        .is_none());
    let ui = ("SANDLAB_PUBLIC_URL", "https://labs.example.com");
    for (var, value) in [
        ("SANDLAB_PROXY_URL", "https://labs.example.com:8443"),
        ("SANDLAB_PROXY_URL", "https://ports.labs.example.com"),
        ("SANDLAB_PROXY_URL", "https://example.com"),
        ("SANDLAB_PROXY_URL", "ftp://ports.example.net"),
        ("SANDLAB_BASE_DOMAIN", "labs.example.com"),
        ("SANDLAB_BASE_DOMAIN", "example.com"),
        ("SANDLAB_BASE_DOMAIN", "p.labs.example.com"),
        ("SANDLAB_BASE_DOMAIN", "not a domain"),
        ("SANDLAB_PROXY_LISTEN", "everywhere"),
        ("SANDLAB_PROXY_TIMEOUT", "0s"),
    ] {
        let e = resolve(&[ui, (var, value)]).unwrap_err().to_string();
        assert!(e.contains(var), "{var}={value}: {e}");
    }
    let c = resolve(&[
        ui,
        ("SANDLAB_PROXY_URL", "https://ports.example.net/"),
        ("SANDLAB_BASE_DOMAIN", "Ports.Example.NET"),
    ])
    .unwrap();
    assert_eq!(c.proxy.url.as_deref(), Some("https://ports.example.net"));
    assert_eq!(c.proxy.base_domain.as_deref(), Some("ports.example.net"));
}

#[test]
fn lab_pools_name_their_key() {
    let entry = |lab: &str, size| LabPoolSection {
        lab: lab.into(),
        size,
    };
    let pools = lab_pools(&[entry("cka-basics", 2), entry("other_lab", 0)]).unwrap();
    assert_eq!(
        pools,
        [
            LabPool {
                lab: "cka-basics".into(),
                size: 2
            },
            LabPool {
                lab: "other_lab".into(),
                size: 0
            }
        ]
    );
    for (bad, key) in [
        (vec![entry("", 1)], "lab_pool[0].lab"),
        (vec![entry("../etc", 1)], "lab_pool[0].lab"),
        (vec![entry("a", 17)], "lab_pool[0].size"),
        (vec![entry("a", 1), entry("a", 1)], "lab_pool[1].lab"),
    ] {
        let e = lab_pools(&bad).unwrap_err().to_string();
        assert!(e.starts_with(key), "{e}");
    }
}
