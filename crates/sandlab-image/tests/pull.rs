//! Pulling from a real registry: `docker-registry` on loopback, an image pushed to it
//! with skopeo from an OCI layout the test writes, then `ImageStore::pull`.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::{gzip, oci_layout, Layer};
use sandlab_image::{Error, IdMap, ImageStore, Progress};

const REGISTRY: &str = "/usr/bin/docker-registry";

/// Kills the registry when the test ends, however it ends.
struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Registry {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("config.yml");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new(REGISTRY)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let registry = Registry { child, port };
    assert!(
        sandlab_testkit::wait_until_blocking(Duration::from_secs(20), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the registry did not listen on port {port}"
    );
    registry
}

fn push(layout: &Path, dest: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn stage(&self, msg: &str) {
        self.0.lock().unwrap().push(msg.to_owned());
    }
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    fn line(&self, _line: &str) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_a_local_registry() {
    if !Path::new(REGISTRY).exists() {
        eprintln!("SKIPPED pull_from_a_local_registry: {REGISTRY} is not installed (apt-get install docker-registry)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let registry = start_registry(tmp.path());
    let host = format!("127.0.0.1:{}", registry.port);

    let mut base = Layer::new();
    base.dir("etc/")
        .file("etc/hostname", b"pulled\n")
        .file("gone", b"x")
        .file("big", &vec![7; 3 << 20]);
    let mut top = Layer::new();
    top.file(".wh.gone", b"")
        .file_owned("home/app", b"app", 0o640, 1000, 1000);
    let layout = tmp.path().join("layout");
    oci_layout(
        &layout,
        &[gzip(&base.finish()), top.finish()],
        "latest",
        &["X=1"],
        &["/bin/true"],
    );
    push(&layout, &format!("{host}/test/img:latest"));

    let store = ImageStore::open(&tmp.path().join("data"), IdMap::default()).unwrap();
    let progress = Recorder::default();
    let info = store
        .pull(&format!("{host}/test/img:latest"), None, true, &progress)
        .await
        .unwrap();
    assert_eq!(info.name, "img");
    assert_eq!(info.source, format!("pull {host}/test/img:latest"));
    let image = store.resolve("img").unwrap();
    assert_eq!(
        fs::read(image.rootfs.join("etc/hostname")).unwrap(),
        b"pulled\n"
    );
    assert_eq!(
        fs::metadata(image.rootfs.join("big")).unwrap().len(),
        3 << 20
    );
    assert!(!image.rootfs.join("gone").exists());
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&fs::metadata(image.rootfs.join("home/app")).unwrap()),
        0x7000_0000 + 1000
    );
    assert_eq!(image.config.env, ["X=1"]);
    assert_eq!(image.config.cmd, ["/bin/true"]);
    let stages = progress.0.lock().unwrap().clone();
    assert!(
        stages
            .iter()
            .any(|s| s.starts_with("Downloading layer 1/2")),
        "{stages:?}"
    );
    assert!(
        stages.iter().any(|s| s.starts_with("Unpacking layer 2/2")),
        "{stages:?}"
    );

    // The same image again under another name: same digest, nothing downloaded.
    let progress = Recorder::default();
    let again = store
        .pull(
            &format!("{host}/test/img:latest"),
            Some("img2"),
            true,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(again.digest, info.digest);
    assert!(!progress
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.starts_with("Downloading")));

    // A tag that does not exist, and TLS against a plain-HTTP registry, fail cleanly.
    let err = store
        .pull(
            &format!("{host}/test/img:nope"),
            Some("x"),
            true,
            &Recorder::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Registry { .. }), "{err}");
    let err = store
        .pull(
            &format!("{host}/test/img:latest"),
            Some("x"),
            false,
            &Recorder::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Registry { .. }), "{err}");
    assert!(matches!(
        store
            .pull("UPPER CASE", None, true, &Recorder::default())
            .await,
        Err(Error::InvalidReference { .. })
    ));
    assert_eq!(fs::read_dir(store.path().join("tmp")).unwrap().count(), 0);
    drop(registry);
}
