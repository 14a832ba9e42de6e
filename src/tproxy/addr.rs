//! Address newtypes for the transparent paths.
//!
//! A TPROXY connection carries three socket addresses that are all plain `SocketAddr`s to the
//! kernel: the client's, the address the proxy listens on (or, under interception, the client's
//! original destination) and the server's. Mixing them up is the classic transparent-proxy bug
//! (spoofing the server address as source, connecting to the client, ...), so each gets its own
//! type and the socket helpers only accept the right one.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

macro_rules! addr_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub SocketAddr);

        impl $name {
            pub fn ip(&self) -> IpAddr {
                self.0.ip()
            }
            pub fn port(&self) -> u16 {
                self.0.port()
            }
            pub fn family(&self) -> Family {
                Family::of(&self.0.ip())
            }
            pub fn sock_addr(&self) -> SocketAddr {
                self.0
            }
        }

        impl From<SocketAddr> for $name {
            fn from(a: SocketAddr) -> Self {
                $name(a)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

addr_newtype!(
    /// The peer address of an accepted client connection.
    ClientAddr
);
addr_newtype!(
    /// The address a server (upstream) connection goes to.
    ServerAddr
);
addr_newtype!(
    /// The address a listener binds (`bind ADDR:PORT`).
    ListenAddr
);
addr_newtype!(
    /// The destination the client originally asked for. Under TPROXY this is the local address
    /// of the accepted socket (see [`crate::tproxy::sockopt::original_destination`]).
    OrigDstAddr
);

/// Address family of a transparent path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// A `ClientAddr` of an IPv4 client accepted on a dual-stack `[::]` listener looks like
/// `::ffff:a.b.c.d`. Spoofing it towards an IPv4 server needs the plain IPv4 form.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// An IP network (`10.10.2.0/24`, `fd00:2::/64`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> IpNet {
        IpNet { addr, prefix }
    }
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
    /// Whether `ip` lies in this network (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = u32::from(self.prefix.min(32));
                let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = u32::from(self.prefix.min(128));
                let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
    /// The network with host bits cleared.
    pub fn network(&self) -> IpNet {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let p = u32::from(self.prefix.min(32));
                let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let p = u32::from(self.prefix.min(128));
                let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                IpAddr::V6((u128::from(a) & m).into())
            }
        };
        IpNet {
            addr,
            prefix: self.prefix,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    /// `ADDR/LEN`, or a bare address (host route), or `default`-less forms only.
    fn from_str(s: &str) -> Result<IpNet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("invalid address '{a}'"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length '{p}'"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmap_mapped_v4() {
        let ip: IpAddr = "::ffff:10.10.1.2".parse().unwrap();
        assert_eq!(unmap(ip), "10.10.1.2".parse::<IpAddr>().unwrap());
        let ip6: IpAddr = "fd00:1::2".parse().unwrap();
        assert_eq!(unmap(ip6), ip6);
    }

    #[test]
    fn ipnet_contains() {
        let n: IpNet = "10.10.2.0/24".parse().unwrap();
        assert!(n.contains("10.10.2.77".parse().unwrap()));
        assert!(!n.contains("10.10.3.1".parse().unwrap()));
        assert!(!n.contains("fd00:2::1".parse().unwrap()));
        let n6: IpNet = "fd00:2::1/64".parse().unwrap();
        assert!(n6.contains("fd00:2::50".parse().unwrap()));
        assert_eq!(n6.network().to_string(), "fd00:2::/64");
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn newtypes_keep_address() {
        let c = ClientAddr("10.10.1.2:4000".parse().unwrap());
        assert_eq!(c.port(), 4000);
        assert_eq!(c.family(), Family::V4);
        assert_eq!(c.to_string(), "10.10.1.2:4000");
    }
}
