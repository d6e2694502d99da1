//! Egress networking: one veth pair per sandbox (host side named after the sandbox id,
//! `eth0` inside), a /30 and a /64 per sandbox, NAT out, and one nftables table
//! `inet sandlab` that drops what a sandbox must never reach.
//!
//! The rules match the host-side interfaces by the `sb-*` name pattern, so they are
//! installed once and nothing per sandbox is left behind in nftables:
//! - forwarded traffic from a sandbox to RFC1918, CGNAT (100.64/10), link-local (incl.
//!   169.254.169.254), loopback, multicast and reserved ranges, and their IPv6
//!   counterparts (ULA, link-local, multicast, v4-mapped), is dropped, except DNS to the
//!   host's configured resolvers;
//! - everything from a sandbox to the host itself (any host address, the control plane's
//!   ports) is dropped in `input`, except IPv6 neighbour discovery for its gateway;
//! - nothing enters a sandbox unless it belongs to a connection it opened, so sandboxes
//!   never reach each other;
//! - a packet from a sandbox whose source address is not routed back through the veth it
//!   came in on is dropped (reverse-path check): root in a `machine` holds CAP_NET_ADMIN
//!   over its own netns and can set any address, and must not send as another sandbox or
//!   as an address outside the pool (which would leave the host unmasqueraded);
//! - nothing is routed into or out of a playground's bridge (`pgb*`, ports `pgv*`): the
//!   nodes talk to each other over layer 2 only, and a node that points a route at the
//!   bridge reaches nothing beyond it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sandlab_core::SandboxId;

use crate::command;
use crate::error::{Error, Result};

/// Number of /30 slots in the /16 egress pool (slot 0 is never used).
pub const SLOTS: u32 = 16384;
const V6_PREFIX: [u16; 3] = [0xfd5a, 0x6e64, 0x6c62];

/// Addresses of one egress slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotAddrs {
    pub host4: Ipv4Addr,
    pub sandbox4: Ipv4Addr,
    pub host6: Ipv6Addr,
    pub sandbox6: Ipv6Addr,
}

pub fn slot_addrs(prefix: [u8; 2], slot: u32) -> SlotAddrs {
    let base = u32::from(Ipv4Addr::new(prefix[0], prefix[1], 0, 0)) + slot * 4;
    let [a, b, c] = V6_PREFIX;
    let s = slot as u16;
    SlotAddrs {
        host4: Ipv4Addr::from(base + 1),
        sandbox4: Ipv4Addr::from(base + 2),
        host6: Ipv6Addr::new(a, b, c, s, 0, 0, 0, 1),
        sandbox6: Ipv6Addr::new(a, b, c, s, 0, 0, 0, 2),
    }
}

/// Nameservers from the host's resolver configuration that a sandbox can reach (no loopback).
pub fn host_nameservers() -> Vec<IpAddr> {
    let mut found = Vec::new();
    for file in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        found = parse_nameservers(&text);
        if !found.is_empty() {
            break;
        }
    }
    found
}

fn parse_nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect()
}

/// IPv4 destinations a sandbox with egress never reaches: this host's and every private
/// network, loopback, link-local (cloud metadata at 169.254.169.254), CGNAT, benchmark,
/// multicast and reserved ranges. Every driver blocks these (the container driver in
/// nftables, the Kubernetes driver as NetworkPolicy exceptions).
pub const BLOCKED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
];

/// The IPv6 ranges of [`BLOCKED_V4`]'s kind: unspecified and loopback, v4-mapped, NAT64,
/// discard, unique-local, link-local, site-local and multicast.
pub const BLOCKED_V6: &[&str] = &[
    "::/127",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "100::/64",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// The whole `inet sandlab` table, replaced atomically, with a comment naming its
/// content ([`ruleset_tag`]) so a process finds it already loaded.
pub fn ruleset(prefix: [u8; 2], dns: &[IpAddr]) -> String {
    let rules = ruleset_untagged(prefix, dns);
    let tag = ruleset_tag(&rules);
    rules.replacen(
        "table inet sandlab {\n",
        &format!("table inet sandlab {{\n  comment \"{tag}\"\n"),
        1,
    )
}

/// `sandlab-` and a 64-bit FNV-1a hash of the table's text (stable across builds).
fn ruleset_tag(rules: &str) -> String {
    let hash = rules.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("sandlab-{hash:016x}")
}

fn ruleset_untagged(prefix: [u8; 2], dns: &[IpAddr]) -> String {
    let dns4: Vec<String> = dns
        .iter()
        .filter(|i| i.is_ipv4())
        .map(|i| i.to_string())
        .collect();
    let dns6: Vec<String> = dns
        .iter()
        .filter(|i| i.is_ipv6())
        .map(|i| i.to_string())
        .collect();
    let set = |name: &str, ty: &str, elems: &[String]| {
        let body = if elems.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", elems.join(", "))
        };
        format!("  set {name} {{ type {ty}; flags interval;{body} }}\n")
    };
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    format!(
        "table inet sandlab\ndelete table inet sandlab\ntable inet sandlab {{\n{}{}{}{}\
  chain forward {{\n    type filter hook forward priority filter - 10; policy accept;\n\
    iifname \"sb-*\" fib saddr . iif oif missing drop\n\
    iifname \"pgb*\" oifname != \"pgb*\" drop\n\
    iifname \"pgv*\" oifname != \"pgv*\" drop\n\
    oifname \"pgb*\" iifname != \"pgb*\" drop\n\
    oifname \"pgv*\" iifname != \"pgv*\" drop\n\
    iifname \"sb-*\" jump egress\n\
    oifname \"sb-*\" ct state established,related accept\n\
    oifname \"sb-*\" drop\n  }}\n\
  chain egress {{\n\
    ip daddr @dns4 meta l4proto {{ tcp, udp }} th dport 53 accept\n\
    ip6 daddr @dns6 meta l4proto {{ tcp, udp }} th dport 53 accept\n\
    ip daddr @private4 drop\n\
    ip6 daddr @private6 drop\n\
    accept\n  }}\n\
  chain input {{\n    type filter hook input priority filter - 10; policy accept;\n\
    iifname \"sb-*\" ct state established,related accept\n\
    iifname \"sb-*\" meta l4proto ipv6-icmp icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n\
    iifname \"sb-*\" drop\n\
    iifname \"pgb*\" drop\n\
    iifname \"pgv*\" drop\n  }}\n\
  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n\
    ip saddr {}.{}.0.0/16 oifname != \"sb-*\" masquerade\n\
    ip6 saddr {:x}:{:x}:{:x}::/48 oifname != \"sb-*\" masquerade\n  }}\n}}\n",
        set("private4", "ipv4_addr", &own(BLOCKED_V4)),
        set("private6", "ipv6_addr", &own(BLOCKED_V6)),
        set("dns4", "ipv4_addr", &dns4),
        set("dns6", "ipv6_addr", &dns6),
        prefix[0],
        prefix[1],
        V6_PREFIX[0],
        V6_PREFIX[1],
        V6_PREFIX[2],
    )
}

/// Installs the firewall table and turns on forwarding. Idempotent. A table whose comment
/// names this very content, hooked and with its four chains (read over nfnetlink), is
/// left as it is: loading it again is an `nft` process (about 18 ms here) in every CLI
/// process that makes an egress sandbox. (A rule deleted by hand from a table kept that
/// way is not noticed; host root can do that to any firewall.)
pub async fn install_firewall(prefix: [u8; 2]) -> Result<()> {
    let dns = host_nameservers();
    let tag = ruleset_tag(&ruleset_untagged(prefix, &dns));
    // Its comment, hooked (not dormant) and its four chains all there.
    let loaded = match crate::rtnl::nft_table("sandlab") {
        Ok(Some(table)) => {
            table.comment.as_deref() == Some(tag.as_str()) && table.flags == 0 && table.chains == 4
        }
        Ok(None) => false,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the firewall table; loading it");
            false
        }
    };
    if !loaded {
        command::run("nft", &["-f", "-"], &ruleset(prefix, &dns)).await?;
    }
    for (path, value) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/ipv6/conf/all/forwarding", "1"),
    ] {
        std::fs::write(path, value).map_err(Error::io(path))?;
    }
    Ok(())
}

/// Creates the veth pair of an egress sandbox whose netns is `/run/netns/<id>` already (a
/// machine's) and configures both ends, from a thread of its own inside the namespace.
pub async fn setup_egress(id: &SandboxId, addrs: SlotAddrs) -> Result<()> {
    let path = crate::paths::Layout::netns(id);
    let netns = std::fs::File::open(&path).map_err(Error::io(&path))?;
    let host_ns = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(Error::io("/proc/thread-self/ns/net"))?;
    let mut host = crate::rtnl::Rtnl::open().map_err(Error::io("a netlink socket"))?;
    let name = id.as_str().to_owned();
    let result = tokio::task::spawn_blocking(move || {
        use std::os::fd::AsFd;
        crate::netns::run_in(netns.as_fd(), || {
            configure_egress(&mut host, host_ns.as_fd(), &name, addrs)
        })
    })
    .await
    .map_err(|e| Error::Host(format!("The egress task failed: {e}")))?;
    result.map_err(|source| Error::Io { path, source })
}

/// In the calling thread's (the sandbox's) network namespace: makes `eth0` with its peer
/// `name` sent to `host_ns`, puts the slot's addresses on both ends (through `host`, a
/// netlink socket of the host's namespace), brings them up and routes out through the
/// host's end. What `ip link add <id> type veth peer name eth0 netns <id>` and the
/// address and route commands did, without their processes.
pub(crate) fn configure_egress(
    host: &mut crate::rtnl::Rtnl,
    host_ns: std::os::fd::BorrowedFd<'_>,
    name: &str,
    addrs: SlotAddrs,
) -> std::io::Result<()> {
    let mut here = crate::rtnl::Rtnl::open()?;
    here.add_veth("eth0", name, host_ns)?;
    let outer = host.index(name)?;
    host.add_addr(outer, IpAddr::V4(addrs.host4), 30)?;
    host.add_addr(outer, IpAddr::V6(addrs.host6), 64)?;
    host.set_up(outer)?;
    let eth0 = here.index("eth0")?;
    here.add_addr(eth0, IpAddr::V4(addrs.sandbox4), 30)?;
    here.add_addr(eth0, IpAddr::V6(addrs.sandbox6), 64)?;
    here.set_up(eth0)?;
    here.add_default_route(IpAddr::V4(addrs.host4))?;
    here.add_default_route(IpAddr::V6(addrs.host6))
}

/// Deletes the host end of the sandbox's veth pair (the peer goes with it).
pub async fn teardown(id: &SandboxId) -> Result<()> {
    if !link_exists(id) {
        return Ok(());
    }
    // Deleting a link waits for the kernel's RCU grace period: off the async threads.
    let name = id.as_str().to_owned();
    let deleted = tokio::task::spawn_blocking(move || {
        crate::rtnl::Rtnl::open().and_then(|mut rtnl| rtnl.del_link(&name))
    })
    .await
    .map_err(|e| Error::Host(format!("The link removal task failed: {e}")))?;
    match deleted {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        other => other.map_err(|source| Error::Io {
            path: std::path::Path::new("/sys/class/net").join(id.as_str()),
            source,
        }),
    }
}

/// The egress slot whose host address the interface `id` holds, if it holds one.
pub async fn slot_of_link(id: &SandboxId, prefix: [u8; 2]) -> Option<u32> {
    let out = command::run("ip", &["-o", "-4", "addr", "show", "dev", id.as_str()], "")
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out);
    let addr: Ipv4Addr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    slot_of_host_addr(prefix, addr)
}

/// The slot whose host address is `addr` ([`slot_addrs`] backwards).
fn slot_of_host_addr(prefix: [u8; 2], addr: Ipv4Addr) -> Option<u32> {
    let base = u32::from(Ipv4Addr::new(prefix[0], prefix[1], 0, 0));
    let off = u32::from(addr).checked_sub(base)?;
    let slot = off / 4;
    (off % 4 == 1 && (1..SLOTS).contains(&slot)).then_some(slot)
}

pub fn link_exists(id: &SandboxId) -> bool {
    std::path::Path::new("/sys/class/net")
        .join(id.as_str())
        .exists()
}

/// The `/etc/resolv.conf` a sandbox gets.
pub fn resolv_conf(egress: bool) -> String {
    if !egress {
        return "# network: none\n".into();
    }
    let mut out = String::new();
    for ns in host_nameservers() {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    out.push_str("options edns0\n");
    out
}

/// The host bridge of private network `net`.
pub fn bridge_name(net: &str) -> String {
    format!("pgb{net}")
}

/// The host end of a sandbox's private-network veth (`eth1` inside).
pub fn port_name(id: &SandboxId) -> String {
    format!("pgv{}", &id.as_str()[3..])
}

fn disable_ipv6(dev: &str) -> Result<()> {
    // The host must not get a link-local address on the playground network: a sandbox
    // could otherwise reach the host's services over it.
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
    std::fs::write(&path, "1").map_err(Error::io(&path))
}

fn sys_net(dev: &str) -> std::path::PathBuf {
    std::path::Path::new("/sys/class/net").join(dev)
}

/// One node's place on its playground's layer-2 network: `eth1` inside, on a host bridge
/// without an address (the host neither routes for it nor answers on it), so only the
/// nodes reach each other. The network is `10.214.0.0/24` in every playground (each has a
/// bridge of its own); node `i` of the lab is `10.214.0.(10 + i)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateNet {
    pub name: String,
    pub addr: Ipv4Addr,
    /// Every node by hostname, written to `/etc/hosts`.
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl PrivateNet {
    /// The place of node `hostname` in `playground`.
    pub fn for_node(playground: &crate::Playground, hostname: &str) -> Result<PrivateNet> {
        playground.validate()?;
        let hosts = playground.addresses();
        let addr = hosts
            .iter()
            .find(|(n, _)| n == hostname)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Node {hostname:?} is not one of its playground's nodes"
                ))
            })?;
        Ok(PrivateNet {
            name: playground.name.clone(),
            addr,
            hosts,
        })
    }
}

/// Joins the sandbox to its playground's network: the bridge (made by the first member),
/// a veth with `eth1` inside holding `net.addr/24`.
pub async fn setup_private(id: &SandboxId, net: &PrivateNet) -> Result<()> {
    let br = bridge_name(&net.name);
    // From making the bridge to joining it, no other process may take it for empty.
    let _lock = BridgeLock::take().await?;
    if !sys_net(&br).exists() {
        match command::run(
            "ip",
            &["-batch", "-"],
            &format!("link add {br} type bridge\n"),
        )
        .await
        {
            Ok(_) => {}
            // Another member made it at the same moment.
            Err(Error::Command { stderr, .. }) if stderr.contains("File exists") => {}
            Err(e) => return Err(e),
        }
    }
    disable_ipv6(&br)?;
    let port = port_name(id);
    if !sys_net(&port).exists() {
        command::run(
            "ip",
            &["-batch", "-"],
            &format!("link add {port} type veth peer name eth1 netns {id}\n"),
        )
        .await?;
    }
    disable_ipv6(&port)?;
    command::run(
        "ip",
        &["-batch", "-"],
        &format!("link set {br} up\nlink set {port} master {br} up\n"),
    )
    .await?;
    drop(_lock);
    let inside = format!("addr add {}/24 dev eth1\nlink set eth1 up\n", net.addr);
    command::run("ip", &["-n", id.as_str(), "-batch", "-"], &inside)
        .await
        .map(drop)
}

/// Removes the sandbox's private-network port and, when no member is left, the bridge.
pub async fn teardown_private(id: &SandboxId, net: &str) -> Result<()> {
    let port = port_name(id);
    if sys_net(&port).exists() {
        match command::run("ip", &["-batch", "-"], &format!("link del {port}\n")).await {
            Ok(_) => {}
            Err(Error::Command { stderr, .. }) if stderr.contains("Cannot find device") => {}
            Err(e) => return Err(e),
        }
    }
    let _lock = BridgeLock::take().await?;
    remove_bridge_if_empty(&bridge_name(net)).await
}

/// Host-wide, across processes and data dirs: held from a bridge's creation until the
/// member that made it has joined, and while a bridge is found empty and deleted, so a
/// sweep never deletes a bridge another process has just made (issue 11: 4 of 24
/// concurrent two-node lab starts failed that way). One lock for all bridges: the
/// sections are a few `ip` calls, and per-bridge lock files could not be removed safely.
struct BridgeLock {
    _file: std::fs::File,
}

const BRIDGE_LOCK: &str = "/run/sandlab/bridges.lock";

impl BridgeLock {
    async fn take() -> Result<BridgeLock> {
        let path = std::path::Path::new(BRIDGE_LOCK);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io(path))?;
        tokio::task::spawn_blocking(move || {
            use std::os::fd::AsRawFd;
            loop {
                // SAFETY: flock on a descriptor we own; released when the file closes.
                if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                    return Ok(BridgeLock { _file: file });
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Error::Io {
                        path: path.to_owned(),
                        source: e,
                    });
                }
            }
        })
        .await
        .map_err(|e| Error::Host(format!("The bridge lock task failed: {e}")))?
    }
}

async fn remove_bridge_if_empty(br: &str) -> Result<()> {
    let members = std::fs::read_dir(sys_net(br).join("brif"))
        .map(|d| d.count())
        .unwrap_or(0);
    if sys_net(br).exists() && members == 0 {
        match command::run("ip", &["-batch", "-"], &format!("link del {br}\n")).await {
            Ok(_) => {}
            Err(Error::Command { stderr, .. }) if stderr.contains("Cannot find device") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes playground bridges left without members (a crash between making a bridge and
/// joining it).
pub async fn remove_empty_bridges() {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return;
    };
    let _lock = match BridgeLock::take().await {
        Ok(lock) => lock,
        Err(e) => {
            tracing::warn!(error = %e, "not sweeping playground bridges");
            return;
        }
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("pgb") && name.len() == 15 {
            if let Err(err) = remove_bridge_if_empty(&name).await {
                tracing::warn!(bridge = %name, error = %err, "could not remove an empty playground bridge");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_address_gives_its_slot_back() {
        for slot in [1, 2, 777, SLOTS - 1] {
            let a = slot_addrs([10, 213], slot);
            assert_eq!(slot_of_host_addr([10, 213], a.host4), Some(slot));
            assert_eq!(slot_of_host_addr([10, 213], a.sandbox4), None);
        }
        assert_eq!(
            slot_of_host_addr([10, 213], Ipv4Addr::new(10, 212, 0, 5)),
            None
        );
    }

    #[test]
    fn slots_do_not_overlap() {
        let a = slot_addrs([10, 213], 1);
        let b = slot_addrs([10, 213], 2);
        assert_eq!(a.host4, Ipv4Addr::new(10, 213, 0, 5));
        assert_eq!(a.sandbox4, Ipv4Addr::new(10, 213, 0, 6));
        assert_eq!(b.host4, Ipv4Addr::new(10, 213, 0, 9));
        assert_eq!(
            slot_addrs([10, 213], SLOTS - 1).sandbox4,
            Ipv4Addr::new(10, 213, 255, 254)
        );
        assert_ne!(a.sandbox6, b.sandbox6);
    }

    #[test]
    fn nameservers_skip_loopback() {
        let text =
            "nameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nsearch x\n";
        let ns = parse_nameservers(text);
        assert_eq!(ns.len(), 2);
        assert_eq!(ns[0], "10.255.255.53".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ruleset_drops_private_ranges_and_the_host() {
        let r = ruleset([10, 213], &["10.255.255.53".parse().unwrap()]);
        let tag = ruleset_tag(&ruleset_untagged(
            [10, 213],
            &["10.255.255.53".parse().unwrap()],
        ));
        assert!(
            r.contains(&format!("table inet sandlab {{\n  comment \"{tag}\"\n")),
            "{r}"
        );
        assert_ne!(
            tag,
            ruleset_tag(&ruleset_untagged(
                [10, 213],
                &["10.255.255.54".parse().unwrap()]
            )),
            "another resolver is another table"
        );
        for needle in [
            "10.0.0.0/8",
            "169.254.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fe80::/10",
            "iifname \"sb-*\" drop",
            "elements = { 10.255.255.53 }",
            "masquerade",
        ] {
            assert!(r.contains(needle), "missing {needle} in\n{r}");
        }
    }
}
