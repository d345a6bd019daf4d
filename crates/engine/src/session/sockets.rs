//! The sockets a session's program uses: recorded for the manifest, and
//! the TCP ports it listens on for the exercise of the listening ports.

use std::net::SocketAddr;

use jailtrace_manifest::{Cause, Socket, SocketFamily, SocketOp};

use super::{Session, Who};

impl Session {
    /// Records a socket the program bound or connected (once per address).
    pub(crate) fn record_socket(
        &mut self,
        family: SocketFamily,
        op: SocketOp,
        address: String,
        who: &Who,
    ) {
        if self
            .sockets
            .iter()
            .any(|s| s.family == family && s.op == op && s.address == address)
        {
            return;
        }
        let reason = self.tag(who.reason(Cause::Runtime, self.run, None));
        self.sockets.push(Socket {
            family,
            op,
            address,
            reason,
        });
    }

    /// The TCP addresses this session's program listens on (as recorded so
    /// far, in any of its runs), one per port, an address of any interface
    /// as the loopback one and IPv4 before IPv6: where the exercise of the
    /// listening ports asks. A socket bound to port 0 (the kernel's pick,
    /// a new one each start: Varnish's own) is not among them.
    pub(crate) fn listening_tcp(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        let mut listened: Vec<SocketAddr> = self
            .sockets
            .iter()
            .filter(|s| s.op == SocketOp::Listen && s.family != SocketFamily::Unix)
            .filter(|s| s.reason.program == self.program)
            .filter_map(|s| s.address.parse::<SocketAddr>().ok())
            .filter(|a| a.port() != 0)
            .map(|mut a| {
                if a.ip().is_unspecified() {
                    a.set_ip(match a {
                        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                a
            })
            .collect();
        listened.sort_by_key(|a| (a.port(), a.is_ipv6()));
        for a in listened {
            if out.last().is_none_or(|b| b.port() != a.port()) {
                out.push(a);
            }
        }
        out
    }

    /// Remembers what socket `fd` of `pid` was bound to, for its `listen`.
    pub(crate) fn bound(&mut self, pid: i32, fd: i32, addr: SocketAddr) {
        self.bound.insert((pid, fd), addr);
    }

    /// The address socket `fd` of `pid` was bound to; a descriptor
    /// inherited across fork is matched by number alone.
    pub(crate) fn bound_address(&self, pid: i32, fd: i32) -> Option<SocketAddr> {
        self.bound
            .get(&(pid, fd))
            .or_else(|| {
                self.bound
                    .iter()
                    .find(|((_, f), _)| *f == fd)
                    .map(|(_, a)| a)
            })
            .copied()
    }

    pub(crate) fn port_conflict(&mut self, addr: SocketAddr) {
        if !self.port_conflicts.contains(&addr) {
            self.port_conflicts.push(addr);
        }
    }
}
