//! The lab's wiring: a public segment, one home router per home (NAT, a stateful firewall,
//! a WAN cable with a userspace middle) and the homes behind them, all in network
//! namespaces of their own; and the routers' count of packets meant for outside the lab.

use super::link::Link;
use super::netns;

/// The public segment's prefix (RFC 5737 documentation range).
pub const PUBLIC_NET: &str = "203.0.113.0/24";
/// The address of the server and of coturn on the public segment.
pub const PUBLIC_HOST: &str = "203.0.113.10";

/// How a home router translates addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping (`masquerade`): one public port per private socket,
    /// whoever it talks to, so hole punching works.
    EndpointIndependent,
    /// A new public port for every destination (`masquerade random,fully-random`): only a
    /// relay gets through.
    Symmetric,
}

/// One home: its router's NAT and whether the router lets UDP out at all.
#[derive(Clone, Copy, Debug)]
pub struct Home {
    pub nat: Nat,
    pub udp_blocked: bool,
}

impl Home {
    pub const EIM: Home = Home {
        nat: Nat::EndpointIndependent,
        udp_blocked: false,
    };
    pub const SYMMETRIC: Home = Home {
        nat: Nat::Symmetric,
        udp_blocked: false,
    };
    pub const NO_UDP: Home = Home {
        nat: Nat::EndpointIndependent,
        udp_blocked: true,
    };
}

/// The namespaces and cables of one lab, removed on drop.
pub struct Topology {
    pub public: String,
    pub routers: Vec<String>,
    pub homes: Vec<String>,
    pub links: Vec<Link>,
    /// Every namespace made so far, in the order made.
    made: Vec<String>,
}

/// The router of home `i` (0-based) on the public segment.
pub fn router_wan(i: usize) -> String {
    format!("203.0.113.{}", 101 + i)
}

/// The address of home `i`'s computer.
pub fn home_address(i: usize) -> String {
    format!("192.168.{}.2", 10 + i)
}

impl Topology {
    /// Builds the public segment and one router and home per entry of `homes`; namespace
    /// names start with `prefix`. On failure everything made so far is removed.
    pub fn build(prefix: &str, homes: &[Home]) -> Result<Topology, String> {
        let mut topology = Topology {
            public: format!("{prefix}pub"),
            routers: Vec::new(),
            homes: Vec::new(),
            links: Vec::new(),
            made: Vec::new(),
        };
        topology.build_public()?;
        for (i, home) in homes.iter().enumerate() {
            topology.build_home(prefix, i, *home)?;
        }
        Ok(topology)
    }

    fn add_namespace(&mut self, name: &str, forwarding: bool) -> Result<(), String> {
        netns::ip(&["netns", "add", name])?;
        self.made.push(name.to_string());
        netns::ip(&["-n", name, "link", "set", "lo", "up"])?;
        let forward = format!("net.ipv4.ip_forward={}", u8::from(forwarding));
        netns::exec(
            name,
            "sysctl",
            &[
                "-qw",
                &forward,
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )
    }

    fn build_public(&mut self) -> Result<(), String> {
        let ns = self.public.clone();
        self.add_namespace(&ns, false)?;
        netns::ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"])?;
        let host = format!("{PUBLIC_HOST}/24");
        netns::ip(&["-n", &ns, "addr", "add", &host, "dev", "br0"])?;
        netns::ip(&["-n", &ns, "link", "set", "br0", "up"])
    }

    fn build_home(&mut self, prefix: &str, i: usize, home: Home) -> Result<(), String> {
        let router = format!("{prefix}r{i}");
        let house = format!("{prefix}h{i}");
        self.add_namespace(&router, true)?;
        self.routers.push(router.clone());
        self.add_namespace(&house, false)?;
        self.homes.push(house.clone());
        // Keep the home's own ports (and so an endpoint-independent NAT's public ones) below
        // coturn's relay range: a port in that range is then surely a relay address.
        netns::exec(
            &house,
            "sysctl",
            &["-qw", "net.ipv4.ip_local_port_range=32768 49151"],
        )?;

        // The WAN cable, through the userspace middle.
        let link = Link::create(&router, "wan", &self.public, &format!("up{i}"), "br0")?;
        self.links.push(link);
        let wan = format!("{}/24", router_wan(i));
        netns::ip(&["-n", &router, "addr", "add", &wan, "dev", "wan"])?;

        // The LAN: one veth, made inside the router and its far end moved into the home.
        netns::ip(&[
            "-n", &router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns",
            &house,
        ])?;
        let gateway = format!("192.168.{}.1", 10 + i);
        netns::ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            "lan",
        ])?;
        netns::ip(&["-n", &router, "link", "set", "lan", "up"])?;
        let computer = format!("{}/24", home_address(i));
        netns::ip(&["-n", &house, "addr", "add", &computer, "dev", "eth0"])?;
        netns::ip(&["-n", &house, "link", "set", "eth0", "up"])?;
        netns::ip(&["-n", &house, "route", "add", "default", "via", &gateway])?;
        netns::nft(&router, &router_rules(home))
    }

    /// Packets the routers saw that were meant for an address outside the lab (they are
    /// dropped there), per router: `(router, packets)`.
    pub fn leaks(&self) -> Result<Vec<(String, u64)>, String> {
        self.routers
            .iter()
            .map(|router| {
                let out = netns::nft_output(router, &["list", "counter", "inet", "lab", "leaked"])?;
                let packets = out
                    .split_whitespace()
                    .skip_while(|w| *w != "packets")
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("{router}: no packet count in {out:?}"))?;
                Ok((router.clone(), packets))
            })
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Stop the cables first: their threads hold TAP devices inside the namespaces.
        self.links.clear();
        for ns in self.made.drain(..).rev() {
            netns::destroy(&ns);
        }
    }
}

/// A home router's nftables rules: source NAT onto the WAN address, a firewall that lets
/// in only what answers traffic from inside, and a counter of anything meant for an
/// address outside the lab (dropped).
fn router_rules(home: Home) -> String {
    let masquerade = match home.nat {
        Nat::EndpointIndependent => "masquerade",
        Nat::Symmetric => "masquerade random,fully-random",
    };
    let udp = if home.udp_blocked {
        "iifname \"lan\" meta l4proto udp drop"
    } else {
        ""
    };
    format!(
        r#"
table inet lab {{
  set inside {{
    type ipv4_addr; flags interval;
    elements = {{ {PUBLIC_NET}, 192.168.0.0/16, 127.0.0.0/8, 224.0.0.0/24, 255.255.255.255 }}
  }}
  counter leaked {{ }}
  chain pre {{
    type filter hook prerouting priority -300;
    meta nfproto ipv6 counter name "leaked" drop
    ip daddr != @inside counter name "leaked" drop
  }}
  chain out {{
    type filter hook output priority -300;
    meta nfproto ipv6 counter name "leaked" drop
    ip daddr != @inside counter name "leaked" drop
  }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    {udp}
    iifname "lan" oifname "wan" accept
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    # An unsolicited packet to the WAN address (a stranger's early connectivity check)
    # would otherwise leave a conntrack entry that makes masquerade pick another port for
    # the home's own flow: an endpoint-independent NAT would act symmetric.
    iifname "wan" ct state new drop
  }}
}}
table ip labnat {{
  chain post {{
    type nat hook postrouting priority 100;
    oifname "wan" {masquerade}
  }}
}}
"#
    )
}
