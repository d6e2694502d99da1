//! The few route-netlink requests an egress sandbox needs (a veth pair, addresses, link
//! up, default routes), made in-process on a `NETLINK_ROUTE` socket instead of by two
//! `ip -batch` processes (about 4 ms each here, on every egress create).
//!
//! A netlink socket talks to the network namespace it was made in, whichever namespace
//! the thread using it is in later: a socket made on the host before a thread enters a
//! sandbox's namespace still configures the host's side.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 1;
/// `struct ifinfomsg`, `struct nlmsghdr` and `struct nlmsgerr`'s leading error.
const IFINFOMSG_LEN: usize = 16;
const NLMSGHDR_LEN: usize = 16;

/// A route-netlink socket of the namespace it was opened in.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// A socket of the calling thread's network namespace.
    pub fn open() -> std::io::Result<Rtnl> {
        Rtnl::open_protocol(libc::NETLINK_ROUTE)
    }

    fn open_protocol(protocol: libc::c_int) -> std::io::Result<Rtnl> {
        // SAFETY: plain socket(2); the result is checked and owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Rtnl { fd, seq: 0 })
    }

    /// Makes the veth pair `name` (here) and `peer` (in the namespace `peer_netns`).
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
    ) -> std::io::Result<()> {
        let mut peer_info = ifinfomsg(0, 0, 0);
        attr(&mut peer_info, IFLA_IFNAME, &c_name(peer));
        attr(
            &mut peer_info,
            IFLA_NET_NS_FD,
            &(peer_netns.as_raw_fd() as u32).to_ne_bytes(),
        );
        let mut data = Vec::new();
        attr(&mut data, VETH_INFO_PEER, &peer_info);
        let mut info = Vec::new();
        attr(&mut info, IFLA_INFO_KIND, b"veth");
        attr(&mut info, IFLA_INFO_DATA, &data);
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &c_name(name));
        attr(&mut body, IFLA_LINKINFO, &info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }

    /// The index of the link `name`.
    pub fn index(&mut self, name: &str) -> std::io::Result<i32> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &c_name(name));
        let reply = self.request(RTM_GETLINK, 0, &body)?;
        // The reply is an RTM_NEWLINK message: its ifinfomsg's index.
        reply
            .get(NLMSGHDR_LEN + 4..NLMSGHDR_LEN + 8)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| std::io::Error::other("a short RTM_NEWLINK reply"))
    }

    /// `ip link del <name>` (a veth's peer goes with it).
    pub fn del_link(&mut self, name: &str) -> std::io::Result<()> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &c_name(name));
        self.request(RTM_DELLINK, 0, &body).map(drop)
    }

    /// `ip link set <index> up`.
    pub fn set_up(&mut self, index: i32) -> std::io::Result<()> {
        let body = ifinfomsg(index, IFF_UP, IFF_UP);
        self.request(RTM_NEWLINK, 0, &body).map(drop)
    }

    /// `ip addr add <addr>/<prefix> dev <index>` (`nodad` for IPv6, as the egress /64
    /// has two known addresses only).
    pub fn add_addr(&mut self, index: i32, addr: IpAddr, prefix: u8) -> std::io::Result<()> {
        let (family, bytes) = family_and_bytes(addr);
        let mut body = vec![family, prefix, 0, 0];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        attr(&mut body, IFA_LOCAL, &bytes);
        attr(&mut body, IFA_ADDRESS, &bytes);
        if addr.is_ipv6() {
            attr(&mut body, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        }
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }

    /// `ip route add default via <gateway>`.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> std::io::Result<()> {
        let (family, bytes) = family_and_bytes(gateway);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let mut body = vec![family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST];
        body.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut body, RTA_GATEWAY, &bytes);
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }

    /// Sends one request and reads until its answer: the kernel's error (as an
    /// `io::Error`), or the first reply message (for a GET), or the acknowledgement.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> std::io::Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSGHDR_LEN + body.len());
        let len = (NLMSGHDR_LEN + body.len()) as u32;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: sends `msg`, which lives for the call, to the kernel (the default
        // destination of an unbound netlink socket is the kernel).
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut reply = None;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: receives into `buf`, which lives for the call and is that long.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSGHDR_LEN {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                if len < NLMSGHDR_LEN || len > rest.len() {
                    return Err(std::io::Error::other("a malformed netlink reply"));
                }
                let message = &rest[..len];
                rest = &rest[align(len).min(rest.len())..];
                if seq != self.seq {
                    continue;
                }
                if kind == NLMSG_ERROR {
                    let code = message
                        .get(NLMSGHDR_LEN..NLMSGHDR_LEN + 4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or_else(|| std::io::Error::other("a short netlink error"))?;
                    return match code {
                        0 => Ok(reply.unwrap_or_default()),
                        code => Err(std::io::Error::from_raw_os_error(-code)),
                    };
                }
                if reply.is_none() {
                    reply = Some(message.to_vec());
                }
            }
        }
    }
}

/// What nfnetlink says of an nftables table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NftTable {
    /// Its comment.
    pub comment: Option<String>,
    /// Its flags (`NFT_TABLE_F_DORMANT` = 1: its chains are unhooked).
    pub flags: u32,
    /// How many chains it holds (the kernel's use count of the table).
    pub chains: u32,
}

/// The nftables table `inet <name>` (`None`: no such table), read over nfnetlink: what
/// `nft list table` would print of its header, without its process.
pub fn nft_table(name: &str) -> std::io::Result<Option<NftTable>> {
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_GETTABLE: u16 = 1;
    const NFTA_TABLE_NAME: u16 = 1;
    const NFTA_TABLE_FLAGS: u16 = 2;
    const NFTA_TABLE_USE: u16 = 3;
    const NFTA_TABLE_USERDATA: u16 = 6;
    const NFPROTO_INET: u8 = 1;
    let mut sock = Rtnl::open_protocol(libc::NETLINK_NETFILTER)?;
    // struct nfgenmsg: family, version (NFNETLINK_V0), resource id (big endian).
    let mut body = vec![NFPROTO_INET, 0, 0, 0];
    attr(&mut body, NFTA_TABLE_NAME, &c_name(name));
    let reply = match sock.request(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, 0, &body) {
        Ok(reply) => reply,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut table = NftTable::default();
    // nfnetlink's integers are big endian.
    let be32 = |v: &[u8]| v.try_into().map(u32::from_be_bytes).unwrap_or(u32::MAX);
    for (kind, value) in attrs(reply.get(NLMSGHDR_LEN + 4..).unwrap_or_default()) {
        match kind {
            NFTA_TABLE_FLAGS => table.flags = be32(value),
            NFTA_TABLE_USE => table.chains = be32(value),
            NFTA_TABLE_USERDATA => table.comment = udata_comment(value),
            _ => {}
        }
    }
    Ok(Some(table))
}

/// The comment in libnftnl's user data: entries of a type byte, a length byte and the
/// value (`NFTNL_UDATA_TABLE_COMMENT` = 0, NUL-terminated).
fn udata_comment(mut rest: &[u8]) -> Option<String> {
    const NFTNL_UDATA_TABLE_COMMENT: u8 = 0;
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let value = tail.get(..len)?;
        if *kind == NFTNL_UDATA_TABLE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = &tail[len..];
    }
    None
}

/// The attributes `(type, payload)` of a message body.
fn attrs(mut body: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let [l0, l1, t0, t1, ..] = *body else {
            return None;
        };
        let len = usize::from(u16::from_ne_bytes([l0, l1]));
        if len < 4 || len > body.len() {
            return None;
        }
        // The nested and byte-order flags are not part of the type.
        let kind = u16::from_ne_bytes([t0, t1]) & 0x3fff;
        let payload = &body[4..len];
        body = &body[align(len).min(body.len())..];
        Some((kind, payload))
    })
}

/// `struct ifinfomsg` for the link `index` (0: none yet) with `flags` under `change`.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(IFINFOMSG_LEN);
    v.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&change.to_ne_bytes());
    v
}

/// Appends the attribute `kind` holding `payload`, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = (4 + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align(buf.len()), 0);
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// An interface name as the kernel takes it: NUL-terminated.
fn c_name(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

fn family_and_bytes(addr: IpAddr) -> (u8, Vec<u8>) {
    match addr {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_back_as_written() {
        let mut buf = Vec::new();
        attr(&mut buf, 1, b"sandlab\0");
        attr(&mut buf, 6, &[0, 3, b'a', b'b', 0]);
        let all: Vec<(u16, Vec<u8>)> = attrs(&buf).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            all,
            vec![(1, b"sandlab\0".to_vec()), (6, vec![0, 3, b'a', b'b', 0])]
        );
        assert_eq!(
            attrs(&[8, 0, 1]).count(),
            0,
            "a truncated header is the end"
        );
        assert_eq!(
            attrs(&[200, 0, 1, 0, 0]).count(),
            0,
            "a length past the end is the end"
        );
    }

    /// As root: a table with a comment and two chains, read back over nfnetlink, then made
    /// dormant; a missing one is None.
    #[test]
    fn reads_an_nftables_table_comment() {
        if !nix::unistd::geteuid().is_root() {
            println!("rtnl: not root; nothing to check");
            return;
        }
        let name = format!("sandlabtest{}", std::process::id());
        let load = |text: String| {
            let mut child = std::process::Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
        };
        load(format!(
            "table inet {name} {{\n  comment \"sandlab-0123\"\n  chain a {{ }}\n  chain b {{ }}\n}}\n"
        ));
        let with = nft_table(&name);
        load(format!("add table inet {name} {{ flags dormant; }}\n"));
        let dormant = nft_table(&name);
        load(format!("delete table inet {name}\n"));
        let expected = NftTable {
            comment: Some("sandlab-0123".into()),
            flags: 0,
            chains: 2,
        };
        assert_eq!(with.unwrap(), Some(expected));
        assert_eq!(dormant.unwrap().map(|t| t.flags), Some(1));
        assert_eq!(nft_table(&name).unwrap(), None);
    }

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let mut buf = Vec::new();
        attr(&mut buf, IFLA_IFNAME, &c_name("eth0"));
        assert_eq!(buf.len(), 12);
        assert_eq!(&buf[..4], &[9, 0, 3, 0]);
        assert_eq!(&buf[4..9], b"eth0\0");
        attr(&mut buf, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        assert_eq!(buf.len(), 20);
    }

    /// As root: a veth pair into a new namespace, configured from both sides, read back
    /// with `ip`; the namespace goes with the thread and its links with it.
    #[test]
    fn makes_and_configures_a_veth_pair_across_namespaces() {
        if !nix::unistd::geteuid().is_root() {
            println!("rtnl: not root; nothing to check");
            return;
        }
        // Unique on a host where other test runs may make links too (IFNAMSIZ: 15).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("sbt{:05x}{:06x}", std::process::id() & 0xfffff, nanos >> 8);
        let host = Rtnl::open().unwrap();
        let (inside, netns) = std::thread::spawn({
            let name = name.clone();
            move || -> std::io::Result<(String, std::fs::File)> {
                let mut host = host;
                let host_ns = std::fs::File::open("/proc/self/ns/net")?;
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
                let mut here = Rtnl::open()?;
                use std::os::fd::AsFd;
                // Made here with the peer sent to the host: both ends in one request.
                here.add_veth("eth0", &name, host_ns.as_fd())?;
                let eth0 = here.index("eth0")?;
                here.add_addr(eth0, "10.250.0.2".parse().unwrap(), 30)?;
                here.add_addr(eth0, "fd5a:6e64:6c62::2".parse().unwrap(), 64)?;
                here.set_up(eth0)?;
                let outer = host.index(&name)?;
                host.add_addr(outer, "10.250.0.1".parse().unwrap(), 30)?;
                host.set_up(outer)?;
                here.add_default_route("10.250.0.1".parse().unwrap())?;
                let out = std::process::Command::new("sh")
                    .args([
                        "-c",
                        "ip -o addr show dev eth0; ip route; ip -6 addr show dev eth0",
                    ])
                    .output()?;
                // Held by the caller, the namespace outlives this thread.
                let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
                Ok((String::from_utf8_lossy(&out.stdout).into_owned(), netns))
            }
        })
        .join()
        .unwrap()
        .unwrap();
        let outer = std::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", &name])
            .output()
            .unwrap();
        let outer = String::from_utf8_lossy(&outer.stdout).into_owned();
        let mut host = Rtnl::open().unwrap();
        host.del_link(&name).unwrap();
        let gone = host.del_link(&name).unwrap_err();
        drop(netns);
        assert!(inside.contains("inet 10.250.0.2/30"), "{inside}");
        assert!(
            inside.contains("default via 10.250.0.1 dev eth0"),
            "{inside}"
        );
        assert!(inside.contains("fd5a:6e64:6c62::2/64"), "{inside}");
        assert!(outer.contains("inet 10.250.0.1/30"), "{outer}");
        assert_eq!(gone.raw_os_error(), Some(libc::ENODEV), "{gone}");
        // The kernel's error comes back as the request's: no such link.
        let missing = Rtnl::open().unwrap().index("no-such-link0").unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENODEV), "{missing}");
    }
}
