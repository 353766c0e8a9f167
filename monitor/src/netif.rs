//! Facts about this host's interfaces and names that the policy needs when
//! no inventory says otherwise.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs},
    sync::{Mutex, mpsc},
    time::{Duration, Instant},
};

use ipnet::IpNet;

/// Subnets configured on `ifaces` (link-local IPv6 left out): DESIGN.md's
/// default for the `nodes` role when there is no inventory.
pub fn subnets(ifaces: &[String]) -> Vec<IpNet> {
    let nets: BTreeSet<IpNet> = configured(ifaces).iter().map(IpNet::trunc).collect();
    nets.into_iter().collect()
}

/// The addresses configured on `ifaces` (link-local IPv6 left out): the
/// monitored host's, which say what roles it plays in the inventory.
pub fn addresses(ifaces: &[String]) -> Vec<std::net::IpAddr> {
    configured(ifaces).iter().map(IpNet::addr).collect()
}

/// Address and prefix of each address on `ifaces`.
fn configured(ifaces: &[String]) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return out;
    }
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy();
        if !ifaces.iter().any(|i| *i == name) {
            continue;
        }
        // SAFETY: both point to sockaddrs of the family ifa_addr says.
        if let Some(net) = unsafe { sockaddr_net(ifa.ifa_addr, ifa.ifa_netmask) } {
            out.insert(net);
        }
    }
    // SAFETY: the list came from getifaddrs.
    unsafe { libc::freeifaddrs(addrs) };
    out
}

unsafe fn sockaddr_net(addr: *const libc::sockaddr, mask: *const libc::sockaddr) -> Option<IpNet> {
    // SAFETY: the caller passes sockaddrs whose family field is valid.
    match i32::from(unsafe { (*addr).sa_family }) {
        libc::AF_INET => {
            // SAFETY: AF_INET sockaddrs are sockaddr_in.
            let (a, m) = unsafe {
                (
                    &*addr.cast::<libc::sockaddr_in>(),
                    &*mask.cast::<libc::sockaddr_in>(),
                )
            };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let prefix = u32::from_be(m.sin_addr.s_addr).count_ones() as u8;
            IpNet::new(IpAddr::V4(ip), prefix).ok()
        }
        libc::AF_INET6 => {
            // SAFETY: AF_INET6 sockaddrs are sockaddr_in6.
            let (a, m) = unsafe {
                (
                    &*addr.cast::<libc::sockaddr_in6>(),
                    &*mask.cast::<libc::sockaddr_in6>(),
                )
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            if ip.segments()[0] & 0xffc0 == 0xfe80 {
                return None;
            }
            let prefix = m
                .sin6_addr
                .s6_addr
                .iter()
                .map(|b| b.count_ones())
                .sum::<u32>() as u8;
            IpNet::new(IpAddr::V6(ip), prefix).ok()
        }
        _ => None,
    }
}

/// Resolves names with one deadline for all of them, so an unreachable
/// resolver delays start-up by `budget` at most. A name that misses the
/// deadline resolves to nothing (the caller warns). Names given to
/// [`prefetch`](Self::prefetch) are looked up together, so start-up waits
/// for the slowest answer rather than for the sum of them; a name asked
/// again gets the answer it got the first time.
pub struct Resolver {
    deadline: Instant,
    lookups: Mutex<HashMap<String, Lookup>>,
}

enum Lookup {
    Pending(mpsc::Receiver<Vec<IpAddr>>),
    Done(Vec<IpAddr>),
}

fn start_lookup(name: &str) -> mpsc::Receiver<Vec<IpAddr>> {
    let (tx, rx) = mpsc::channel();
    let host = format!("{name}:0");
    std::thread::spawn(move || {
        let addrs: Vec<IpAddr> = host
            .to_socket_addrs()
            .map(|it| it.map(|sa| sa.ip()).collect())
            .unwrap_or_default();
        let _ = tx.send(addrs);
    });
    rx
}

impl Resolver {
    pub fn new(budget: Duration) -> Self {
        Self {
            deadline: Instant::now() + budget,
            lookups: Mutex::new(HashMap::new()),
        }
    }

    /// Starts looking these names up, each in its own thread.
    pub fn prefetch<'n>(&self, names: impl IntoIterator<Item = &'n str>) {
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            if !lookups.contains_key(name) {
                lookups.insert(name.to_string(), Lookup::Pending(start_lookup(name)));
            }
        }
    }

    pub fn resolve(&self, name: &str) -> Vec<IpAddr> {
        let mut lookups = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        let lookup = lookups
            .entry(name.to_string())
            .or_insert_with(|| Lookup::Pending(start_lookup(name)));
        if let Lookup::Pending(rx) = lookup {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let mut addrs = rx.recv_timeout(left).unwrap_or_default();
            addrs.sort();
            addrs.dedup();
            *lookup = Lookup::Done(addrs);
        }
        match lookup {
            Lookup::Done(addrs) => addrs.clone(),
            Lookup::Pending(_) => unreachable!("settled above"),
        }
    }
}

/// This machine's hostname, to name it in events merged from several hosts.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it when the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
