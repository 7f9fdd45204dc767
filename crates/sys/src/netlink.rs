//! A little rtnetlink over a `NETLINK_ROUTE` socket: find a link by name, set it up or down,
//! move it (renamed) into another network namespace, list and add its addresses. Enough for
//! `linux.netDevices`. Parent-side only: unlike the rest of this crate it allocates.
//!
//! Messages are built and read as bytes in native endianness (the netlink ABI): a 16-byte
//! `nlmsghdr`, a fixed header (`ifinfomsg`, 16 bytes; `ifaddrmsg`, 8 bytes), then attributes
//! (`rtattr`: length, type, value, padded to 4 bytes).

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::{check_int, owned, Errno, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const IFF_UP: u32 = 0x1;
const RT_SCOPE_UNIVERSE: u8 = 0;
const HDR: usize = 16;

/// A route netlink socket, bound to the network namespace it was opened in.
pub struct Route {
    fd: OwnedFd,
    seq: Cell<u32>,
}

/// A network interface as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    /// `IFF_*` flags.
    pub flags: u32,
}

/// An address of an interface, with the attributes needed to add it again elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    /// `IFA_F_*` flags (the 32-bit `IFA_FLAGS` attribute when present).
    pub flags: u32,
    /// `IFA_LOCAL`, `IFA_ADDRESS`, `IFA_BROADCAST` as the kernel gave them.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// A permanent (configured, not autoconfigured or temporary) address of global scope:
    /// the kind that keeps its meaning in another network namespace.
    pub fn is_permanent_global(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == RT_SCOPE_UNIVERSE
    }

    /// The address as text ("10.1.2.3/24", "fd00::1/64"), for messages.
    pub fn text(&self) -> String {
        let raw = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default();
        let ip = match raw.len() {
            4 => <[u8; 4]>::try_from(raw).map(|a| std::net::IpAddr::from(a).to_string()),
            16 => <[u8; 16]>::try_from(raw).map(|a| std::net::IpAddr::from(a).to_string()),
            _ => Ok("?".to_string()),
        }
        .unwrap_or_default();
        format!("{ip}/{}", self.prefix_len)
    }
}

impl Route {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Route> {
        // SAFETY: plain socket(2); the returned descriptor is checked and owned below.
        let fd = check_int(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        Ok(Route {
            // SAFETY: fd was just returned by the kernel and is owned by nobody else.
            fd: unsafe { owned(fd) },
            seq: Cell::new(1),
        })
    }

    /// A socket in the network namespace `netns`: the calling thread enters it, opens the
    /// socket (which stays bound to it) and comes back.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Route> {
        let own = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
        crate::setns(netns, libc::CLONE_NEWNET)?;
        let sock = Route::open();
        crate::setns(&own, libc::CLONE_NEWNET)?;
        sock
    }

    /// The link named `name`.
    pub fn link(&self, name: &str) -> Result<Link> {
        let mut body = ifinfomsg(0, 0, 0);
        attr_str(&mut body, IFLA_IFNAME, name);
        let replies = self.exchange(RTM_GETLINK, 0, &body)?;
        let reply = replies.first().ok_or(Errno(libc::ENODEV))?;
        if reply.len() < 16 {
            return Err(Errno(libc::EBADMSG));
        }
        Ok(Link {
            index: i32::from_ne_bytes(word(reply, 4)),
            flags: u32::from_ne_bytes(word(reply, 8)),
        })
    }

    /// Sets link `index` up or down.
    pub fn set_up(&self, index: i32, up: bool) -> Result<()> {
        let body = ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.exchange(RTM_NEWLINK, 0, &body).map(drop)
    }

    /// Moves link `index` into the network namespace `netns`, named `name` there: one
    /// request, so the rename and the move succeed or fail together.
    pub fn move_to(&self, index: i32, name: &str, netns: BorrowedFd<'_>) -> Result<()> {
        let mut body = ifinfomsg(index, 0, 0);
        attr_str(&mut body, IFLA_IFNAME, name);
        let fd = netns.as_raw_fd() as u32;
        attr(&mut body, IFLA_NET_NS_FD, &fd.to_ne_bytes());
        self.exchange(RTM_NEWLINK, 0, &body).map(drop)
    }

    /// The addresses of link `index` (every family).
    pub fn addresses(&self, index: i32) -> Result<Vec<Address>> {
        let body = [0u8; 8];
        let replies = self.exchange(RTM_GETADDR, NLM_F_DUMP, &body)?;
        Ok(replies
            .iter()
            .filter_map(|r| parse_address(r))
            .filter(|(i, _)| *i == index as u32)
            .map(|(_, a)| a)
            .collect())
    }

    /// Adds `addr` to link `index`.
    pub fn add_address(&self, index: i32, addr: &Address) -> Result<()> {
        let mut body = vec![addr.family, addr.prefix_len, 0, addr.scope];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (t, v) in &addr.attrs {
            attr(&mut body, *t, v);
        }
        self.exchange(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }

    /// Sends one request and collects the payloads of its replies: until the kernel's
    /// acknowledgement (an error of 0), or the end of a dump.
    fn exchange(&self, kind: u16, flags: u16, body: &[u8]) -> Result<Vec<Vec<u8>>> {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        let mut msg = Vec::with_capacity(HDR + body.len());
        msg.extend_from_slice(&((HDR + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        crate::send(self.fd.as_fd(), &msg)?;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = crate::read(self.fd.as_fd(), &mut buf)?;
            if n == 0 {
                return Err(Errno(libc::EBADMSG));
            }
            let mut at = 0;
            while at + HDR <= n {
                let len = u32::from_ne_bytes(word(&buf, at)) as usize;
                let typ = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let their_seq = u32::from_ne_bytes(word(&buf, at + 8));
                if len < HDR || at + len > n {
                    return Err(Errno(libc::EBADMSG));
                }
                let payload = &buf[at + HDR..at + len];
                at += (len + 3) & !3;
                if their_seq != seq {
                    continue;
                }
                match typ {
                    NLMSG_ERROR => {
                        let err = payload
                            .get(..4)
                            .map_or(0, |_| i32::from_ne_bytes(word(payload, 0)));
                        return if err == 0 {
                            Ok(replies)
                        } else {
                            Err(Errno(-err))
                        };
                    }
                    NLMSG_DONE => return Ok(replies),
                    _ => replies.push(payload.to_vec()),
                }
            }
        }
    }
}

/// Four bytes of `buf` at `at` (the caller checked the length).
fn word(buf: &[u8], at: usize) -> [u8; 4] {
    [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
}

/// An `ifinfomsg` for link `index` (0: by name), changing the `change` bits of its flags.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

fn attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn attr_str(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let mut v = value.as_bytes().to_vec();
    v.push(0);
    attr(buf, kind, &v);
}

/// The attributes after a fixed header of `skip` bytes.
fn attrs(payload: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = skip;
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[at], payload[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[at + 2], payload[at + 3]]);
        if len < 4 || at + len > payload.len() {
            break;
        }
        out.push((kind, &payload[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// An `RTM_NEWADDR` payload: the link index and the address.
fn parse_address(p: &[u8]) -> Option<(u32, Address)> {
    if p.len() < 8 {
        return None;
    }
    let index = u32::from_ne_bytes(word(p, 4));
    let mut addr = Address {
        family: p[0],
        prefix_len: p[1],
        flags: u32::from(p[2]),
        scope: p[3],
        attrs: Vec::new(),
    };
    for (kind, value) in attrs(p, 8) {
        match kind {
            IFA_FLAGS if value.len() == 4 => addr.flags = u32::from_ne_bytes(word(value, 0)),
            IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => addr.attrs.push((kind, value.to_vec())),
            _ => {}
        }
    }
    Some((index, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_read_back() {
        let mut b = ifinfomsg(7, IFF_UP, IFF_UP);
        attr_str(&mut b, IFLA_IFNAME, "veth0");
        attr(&mut b, IFLA_NET_NS_FD, &5u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let read = attrs(&b, 16);
        assert_eq!(read[0], (IFLA_IFNAME, &b"veth0\0"[..]));
        assert_eq!(read[1], (IFLA_NET_NS_FD, &5u32.to_ne_bytes()[..]));
    }

    #[test]
    fn an_address_payload_is_parsed() {
        let mut p = vec![libc::AF_INET as u8, 24, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        attr(&mut p, IFA_LOCAL, &[10, 1, 2, 3]);
        attr(&mut p, IFA_FLAGS, &IFA_F_PERMANENT.to_ne_bytes());
        let (index, a) = parse_address(&p).unwrap();
        assert_eq!(index, 3);
        assert!(a.is_permanent_global());
        assert_eq!(a.text(), "10.1.2.3/24");
    }

    /// The loopback of this network namespace, found through a real socket.
    #[test]
    fn finds_the_loopback() {
        let r = Route::open().unwrap();
        let lo = r.link("lo").unwrap();
        assert!(lo.index > 0);
        assert_eq!(r.link("no-such-link0").unwrap_err(), Errno(libc::ENODEV));
    }
}
