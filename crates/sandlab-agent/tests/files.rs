//! File operations through the real agent.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use sandlab_proto::{Error, ErrorCode, FileKind};

fn code(e: Error) -> Option<ErrorCode> {
    e.agent_code()
}

#[tokio::test]
async fn write_read_stat_list_remove() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let root = agent.dir.path().join("files");
    let root = root.to_str().unwrap();

    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = format!("{root}/a/b/data.bin");
    let err = client
        .write_file(&file, &data, 0o640, false)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::NotFound));
    client.write_file(&file, &data, 0o640, true).await.unwrap();
    assert_eq!(client.read_file(&file, 1 << 20).await.unwrap(), data);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);

    // Overwrite atomically; no temporary file is left behind.
    client
        .write_file(&file, b"short", 0o600, false)
        .await
        .unwrap();
    assert_eq!(client.read_file(&file, 100).await.unwrap(), b"short");
    let names: Vec<String> = client
        .list_dir(&format!("{root}/a/b"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["data.bin"]);

    // An empty file.
    client
        .write_file(&format!("{root}/empty"), b"", 0o644, false)
        .await
        .unwrap();
    assert_eq!(
        client.read_file(&format!("{root}/empty"), 0).await.unwrap(),
        b""
    );

    let st = client.stat(&file).await.unwrap();
    assert_eq!(
        (st.name.as_str(), st.kind, st.size, st.mode),
        ("data.bin", FileKind::File, 5, 0o600)
    );
    assert!(st.mtime > 1_600_000_000);

    std::os::unix::fs::symlink("data.bin", format!("{root}/a/b/link")).unwrap();
    client
        .mkdir(&format!("{root}/a/b/sub"), false)
        .await
        .unwrap();
    let err = client
        .mkdir(&format!("{root}/a/b/sub"), false)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::AlreadyExists));
    client
        .mkdir(&format!("{root}/a/b/sub"), true)
        .await
        .unwrap();
    client.mkdir(&format!("{root}/x/y/z"), true).await.unwrap();

    let entries = client.list_dir(&format!("{root}/a/b")).await.unwrap();
    let summary: Vec<(String, FileKind)> = entries.into_iter().map(|e| (e.name, e.kind)).collect();
    assert_eq!(
        summary,
        [
            ("data.bin".to_string(), FileKind::File),
            ("link".to_string(), FileKind::Symlink),
            ("sub".to_string(), FileKind::Dir)
        ]
    );
    assert_eq!(
        client.stat(&format!("{root}/a/b/link")).await.unwrap().kind,
        FileKind::Symlink
    );

    let err = client
        .remove(&format!("{root}/a"), false)
        .await
        .unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::DirectoryNotEmpty));
    client
        .remove(&format!("{root}/a/b/link"), false)
        .await
        .unwrap();
    assert!(
        std::fs::metadata(&file).is_ok(),
        "removing a link keeps its target"
    );
    client.remove(&format!("{root}/a"), true).await.unwrap();
    let err = client.stat(&format!("{root}/a")).await.unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::NotFound));
    let err = client.remove("/", true).await.unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::InvalidRequest));
    for root_dir in ["/.", "/tmp/.."] {
        let err = client.remove(root_dir, true).await.unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidRequest), "{root_dir}");
    }
}

#[tokio::test]
async fn errors_are_clear() {
    let agent = TestAgent::start();
    let client = agent.client().await;
    let dir = agent.dir.path().to_str().unwrap().to_string();
    let big = format!("{dir}/big");
    std::fs::write(&big, vec![1u8; 5000]).unwrap();

    let err = client.read_file(&big, 4999).await.unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::TooLarge), "{err}");
    assert_eq!(client.read_file(&big, 5000).await.unwrap().len(), 5000);
    let err = client
        .read_file(&format!("{dir}/missing"), 10)
        .await
        .unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::NotFound));
    assert!(err.to_string().contains("missing"), "{err}");
    let err = client.read_file(&dir, 10).await.unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::IsADirectory), "{err}");
    let err = client
        .write_file(&dir, b"x", 0o644, false)
        .await
        .unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::IsADirectory), "{err}");

    // A FIFO must not hang the agent.
    let fifo = format!("{dir}/fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = client.read_file(&fifo, 10).await.unwrap_err();
    assert_eq!(err.agent_code(), Some(ErrorCode::InvalidRequest), "{err}");

    // procfs files report size 0 but have content.
    let cmdline = client.read_file("/proc/self/cmdline", 4096).await.unwrap();
    assert!(cmdline.starts_with(b"/"), "{cmdline:?}");

    // Paths are checked on the client and again by the agent.
    for bad in ["relative/path", "/with\0nul", ""] {
        let err = client.read_file(bad, 10).await.unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{bad:?}: {err}");
        let err = client
            .write_file(bad, b"x", 0o644, false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{bad:?}: {err}");
        let err = client.list_dir(bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{bad:?}: {err}");
    }
    // The connection is still fine after all those errors.
    client.ping().await.unwrap();
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.open_streams, 0, "{stats:?}");
}
