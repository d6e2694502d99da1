//! Builds a Debian image into a data dir, printing mmdebstrap's output:
//! `cargo run -p sandlab-image --example build_debian -- DATA_DIR NAME [SUITE]`.

use std::path::Path;
use std::time::Instant;

use sandlab_image::{IdMap, ImageStore, Progress, DEFAULT_PACKAGES};

struct Print;

impl Progress for Print {
    fn stage(&self, msg: &str) {
        println!("== {msg}");
    }
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    fn line(&self, line: &str) {
        println!("   {line}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(data), Some(name)) = (args.first(), args.get(1)) else {
        return Err("usage: build_debian DATA_DIR NAME [SUITE]".into());
    };
    let suite = args.get(2).map_or("bookworm", String::as_str);
    let store = ImageStore::open(Path::new(data), IdMap::default())?;
    let include: Vec<String> = DEFAULT_PACKAGES.iter().map(|s| s.to_string()).collect();
    let start = Instant::now();
    let info = store.build_debian(name, suite, &include, &Print)?;
    println!(
        "built {} {} in {:.1}s: {} bytes unpacked",
        info.name,
        info.digest,
        start.elapsed().as_secs_f64(),
        info.size
    );
    let image = store.resolve(name)?;
    println!(
        "rootfs {} config {:?}",
        image.rootfs.display(),
        image.config
    );
    Ok(())
}
