//! The compiler never panics, whatever it is given: arbitrary bytes,
//! arbitrary text, and (more to the point) documents that look almost right,
//! built from the vocabulary of real port tables plus noise.

use monitor::policy::{Document, Policy, compile};
use proptest::prelude::*;

fn compile_text(text: String) -> Option<Policy> {
    let doc = Document::from_bytes("fuzz.md".into(), text.into_bytes()).ok()?;
    compile(&[doc]).ok()
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        // Port cells, good and bad.
        Just("80".to_string()),
        Just("9200, 9300-9400".to_string()),
        Just("25 or 587".to_string()),
        Just("80/(443 or 4443)".to_string()),
        Just("((((80".to_string()),
        Just("70000".to_string()),
        Just("ICMP".to_string()),
        Just("53/udp".to_string()),
        (0u32..200_000).prop_map(|n| n.to_string()),
        // Protocols, directions, requirements.
        Just("TCP".to_string()),
        Just("Mem-cached ".to_string()),
        Just("DNS".to_string()),
        Just("Gopher".to_string()),
        Just("Inbound <b>and</b> Outbound".to_string()),
        Just("bidirectional".to_string()),
        Just("Yes".to_string()),
        Just("No".to_string()),
        Just("Required if x is used".to_string()),
        // Shapes of other vendors' documents.
        Just("`8600`[^1]".to_string()),
        Just("30000-32767†".to_string()),
        Just("8092<sup>1</sup>".to_string()),
        // Port cells listing items, with transports, peers and arrows.
        Just(
            "TCP: 22 (SSH server); TCP: 80<sup>1</sup> (HTTP); Note Port 80 redirects.".to_string()
        ),
        Just(
            "NetFlow: UDP 9996, from NetFlow exporters; DNS: UDP 53, to the DNS server (outbound)"
                .to_string()
        ),
        Just("1433/TCP&nbsp;---><br>161,162&nbsp;<--->; TCP 1270 <---; <--->; :".to_string()),
        Just("Kerberos: TCP/UDP 88, to ; from ; (outbound) (; ) (".to_string()),
        Just("TCP/8089".to_string()),
        Just("[9300:9400]/TCP".to_string()),
        Just("Port (5432)".to_string()),
        Just("8200 + 8201".to_string()),
        Just("ICMP 8/0".to_string()),
        Just("30000-32767 TCP / UDP<br/>(nodeport)".to_string()),
        Just("TCP and UDP".to_string()),
        Just("Provider dependent".to_string()),
        Just("*".to_string()),
        Just("No*".to_string()),
        Just("Disabled".to_string()),
        Just("<ul><li>etcd nodes</li><li>worker nodes</li></ul>".to_string()),
        Just("Self, Control plane".to_string()),
        Just("the etcd node itself (local traffic, never across nodes)".to_string()),
        Just("Load balancer → Vault servers".to_string()),
        Just("Primary ↔ Secondary<br>A -> B".to_string()),
        Just("vCenter Server to PSC".to_string()),
        Just("DNS queries from applications, called by every agent".to_string()),
        Just("Required only for RBAC.".to_string()),
        Just("`master-sg` (self)".to_string()),
        // Group rows, merged (blank) cells, loopback ports, initiators.
        Just("**Inter-node Ports**".to_string()),
        Just("OpsCenter specific".to_string()),
        Just("Public Facing Ports".to_string()),
        Just(String::new()),
        Just("localhost: 19001".to_string()),
        Just("Listening for Agent messages (private protocol)".to_string()),
        Just("The Server connects to each Agent; Lets the Server reach it".to_string()),
        Just("Once the first handshake is done, it reconnects".to_string()),
        // Endpoints.
        Just("All nodes and SMTP relay (provided by customer)".to_string()),
        Just("https://api.mix  panel.com/x".to_string()),
        Just("apt-mirror.example.com (192.0.2.7)".to_string()),
        Just("2001:db8::/32".to_string()),
        Just("(((".to_string()),
        Just("http://[::1".to_string()),
        // Noise.
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ]
}

fn header() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just("Port"),
            Just("Port Number and Direction"),
            Just("Feature A"),
            Just("Cisco ISE Node"),
            Just("Client Port(s)"),
            Just("Server Port"),
            Just("Protocol"),
            Just("Service Name"),
            Just("Direction"),
            Just("Source"),
            Just("Dest."),
            Just("IP/DNS"),
            Just("Required?"),
            Just("Notes"),
            Just("Use"),
            Just("Colour"),
            Just("Used By"),
            Just("Accessed by"),
            Just("Listens on"),
            Just("Source port"),
            Just("Required for"),
            Just("Default status"),
            Just("Port name"),
            Just("Component"),
            Just("Service"),
            Just("Description"),
            Just("Configurable in"),
            Just("Comment"),
            Just("Source → Destination"),
            Just("Ingress/Egress"),
            Just("From / To"),
        ]
        .prop_map(String::from),
        1..8,
    )
}

fn markdown_table() -> impl Strategy<Value = String> {
    (
        header(),
        prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..8),
    )
        .prop_map(|(header, rows)| {
            let mut t = format!(
                "|{}|\n|{}|\n",
                header.join("|"),
                vec!["--"; header.len()].join("|")
            );
            for row in rows {
                t.push_str(&format!("|{}|\n", row.join("|").replace('\n', " ")));
            }
            t
        })
}

fn html_table() -> impl Strategy<Value = String> {
    (
        header(),
        prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..8),
        any::<bool>(),
    )
        .prop_map(|(header, rows, close)| {
            let mut t = String::from("<table>\n<caption>Ports on worker hosts</caption>\n<tr>");
            for h in header {
                t.push_str(&format!("<th>{h}</th>"));
            }
            t.push_str("</tr>\n");
            for row in rows {
                t.push_str("<tr>\n");
                for (i, c) in row.into_iter().enumerate() {
                    // Spans, sometimes past the table's edge.
                    let span = match i % 4 {
                        1 => " rowspan=\"3\"",
                        2 => " colspan=\"2\"",
                        3 => " colspan=\"99999\" rowspan=\"0\"",
                        _ => "",
                    };
                    t.push_str(&format!("  <td{span}>{c}\n"));
                }
            }
            if close {
                t.push_str("</table>\n");
            }
            t
        })
}

/// A table as a browser copy flattens it into plain text: the header cells
/// one per line, then each row's cells one per line, with the pieces a code
/// span breaks off (`, 8021`, `-5711`), lone footnote marks, cells broken
/// over lines and rows a cell short; then a footnote under a lone mark.
fn cell_per_line_table() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        cell(),
        Just("443".to_string()),
        Just("7000, 7001, 9042".to_string()),
        Just(", 8021".to_string()),
        Just("-5711".to_string()),
        Just("-".to_string()),
        Just("1".to_string()),
        Just("†".to_string()),
        Just("by an iptables rule. Keep this port open.".to_string()),
        Just("In a multi-node cluster, only the cluster nodes need it.".to_string()),
        Just("You may block this port for traffic from outside the cluster.".to_string()),
        Just("Used by".to_string()),
        Just("Port".to_string()),
    ];
    (header(), prop::collection::vec(line, 0..24), any::<bool>()).prop_map(
        |(header, lines, note)| {
            let mut t = String::from("Incoming ports\n\n");
            for h in header {
                t.push_str(&format!("{h}\n"));
            }
            for l in lines {
                t.push_str(&format!("{}\n", l.replace('\n', " ")));
            }
            if note {
                t.push_str("\n1\nOnly needed while agents report on 8443.\n");
            }
            t
        },
    )
}

/// A table in columns of spaces, as plain-text exports print it: cells
/// padded to their column (or overflowing it), continuation lines with the
/// first column blank, rows that stop short.
fn space_aligned_table() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        cell(),
        Just("1024-65535/TCP".to_string()),
        Just("53, 49152-65535/TCP/UDP".to_string()),
        Just("389/TCP/UDP".to_string()),
        Just("RPC for LSA, SAM, Netlogon (*)".to_string()),
        Just("".to_string()),
    ];
    let line = (prop::collection::vec(piece, 1..5), 0usize..3, any::<bool>());
    (
        prop::collection::vec(
            prop_oneof![
                Just("Client Port(s)"),
                Just("Server Port"),
                Just("Service"),
                Just("Protocol")
            ],
            2..5,
        ),
        8usize..30,
        prop::collection::vec(line, 0..16),
    )
        .prop_map(|(header, width, lines)| {
            let pad = |cells: &[String], indent: usize| {
                let mut l = " ".repeat(indent * width);
                for c in cells {
                    l.push_str(&format!("{:<width$}", c.replace('\n', " ")));
                }
                l.trim_end().to_string()
            };
            let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            let mut t = format!("{}\n", pad(&header, 0));
            for (cells, indent, blank_after) in lines {
                t.push_str(&format!("{}\n", pad(&cells, indent)));
                if blank_after {
                    t.push('\n');
                }
            }
            t
        })
}

/// A grid table as reStructuredText and saved "Reference guide" pages draw
/// it: cells wrapped over lines, row spans (a separator under only some
/// columns), a `+===+` header border or none, and the faults of a copy
/// edited by hand: a ragged line, a missing bottom border, a tab, a border
/// char turned multi-byte, a line cut short.
fn grid_table() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        cell(),
        Just("50470".to_string()),
        Just("8020/ 9000".to_string()),
        Just("dfs.datanode.http.address".to_string()),
        Just("Master Nodes (NameNode and any back-up NameNodes)".to_string()),
        Just("Yes (typically admins, Dev/Support teams)".to_string()),
        Just("| + | +--+".to_string()),
        Just("".to_string()),
    ];
    let row = (
        prop::collection::vec(piece, 1..6),
        prop::collection::vec(any::<bool>(), 6),
    );
    (
        header(),
        prop::collection::vec(4usize..18, 8),
        0usize..4,
        any::<bool>(),
        prop::collection::vec(row, 0..8),
        (0usize..7, any::<usize>()),
    )
        .prop_map(|(header, widths, indent, head_border, rows, (fault, at))| {
            let widths = &widths[..header.len()];
            let pad = " ".repeat(indent);
            // A border: dashes (or `=`) under the columns not spanning on.
            let border = |fill: char, open: &[bool]| {
                let mut l = pad.clone();
                for (k, &w) in widths.iter().enumerate() {
                    let here = !open.get(k).copied().unwrap_or(false);
                    let before = k > 0 && !open.get(k - 1).copied().unwrap_or(false);
                    l.push(if here || before { '+' } else { '|' });
                    l.push_str(&if here {
                        fill.to_string().repeat(w)
                    } else {
                        " ".repeat(w)
                    });
                }
                l.push(if open.get(widths.len() - 1).copied().unwrap_or(false) {
                    '|'
                } else {
                    '+'
                });
                l
            };
            // A row: each cell cut into pieces as wide as its column.
            let text_lines = |cells: &[String]| {
                let chunks: Vec<Vec<String>> = widths
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| {
                        let chars: Vec<char> = cells
                            .get(k)
                            .map(|c| c.replace('\n', " "))
                            .unwrap_or_default()
                            .chars()
                            .collect();
                        let mut out: Vec<String> =
                            chars.chunks(w - 2).map(|c| c.iter().collect()).collect();
                        if out.is_empty() {
                            out.push(String::new());
                        }
                        out
                    })
                    .collect();
                let height = chunks.iter().map(Vec::len).max().unwrap_or(1);
                (0..height)
                    .map(|i| {
                        let mut l = pad.clone();
                        for (k, &w) in widths.iter().enumerate() {
                            let piece = chunks[k].get(i).map(String::as_str).unwrap_or("");
                            l.push_str(&format!("| {:<width$} ", piece, width = w - 2));
                        }
                        l.push('|');
                        l
                    })
                    .collect::<Vec<String>>()
            };
            let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            let mut lines = vec![border('-', &[])];
            lines.extend(text_lines(&header));
            lines.push(border(if head_border { '=' } else { '-' }, &[]));
            let count = rows.len();
            for (i, (cells, spans)) in rows.into_iter().enumerate() {
                lines.extend(text_lines(&cells));
                let open: &[bool] = if i + 1 < count { &spans } else { &[] };
                lines.push(border('-', open));
            }
            let n = lines.len();
            let k = at % n;
            match fault {
                1 => lines[k].push('|'),
                2 => {
                    lines.pop();
                }
                3 => lines[k] = lines[k].replacen(' ', "\t", 1),
                4 => lines[k] = lines[k].replacen('-', "é", 1),
                5 => {
                    let keep = lines[k].chars().count() / 2;
                    lines[k] = lines[k].chars().take(keep).collect();
                }
                _ => {}
            }
            format!("Ports\n\n{}\n", lines.join("\n"))
        })
}

/// A table as a browser copy gives it with tabs between cells: cells that
/// spill over lines (bulleted lists, notes), rows short of or past the
/// header's width, tabs in odd places.
fn tab_separated_table() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        cell(),
        Just("443/TCP (HTTPS)".to_string()),
        Just("143/TCP (IMAP), 993/TCP (secure IMAP)".to_string()),
        Just("53/UDP,53/TCP (DNS)".to_string()),
        Just("see comments".to_string()),
        Just("Used by these clients:".to_string()),
        Just("• Autodiscover".to_string()),
        Just("◦ SOCKS4, SOCKS5: 1081, 1080".to_string()),
        Just("Internet (any)".to_string()),
        Just("".to_string()),
    ];
    let line = prop::collection::vec(piece, 1..5).prop_map(|cells| cells.join("\t"));
    (
        prop::collection::vec(
            prop_oneof![
                Just("Purpose"),
                Just("Ports"),
                Just("Source"),
                Just("Destination"),
                Just("Comments")
            ],
            2..5,
        ),
        prop::collection::vec(line, 0..16),
    )
        .prop_map(|(header, lines)| {
            let mut t = format!("{}\n", header.join("\t"));
            for l in lines {
                t.push_str(&format!("{}\n", l.replace('\n', " ")));
            }
            t
        })
}

fn prose() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("In releases 4.5.1 and later, port 8086 is not required. Open the following port instead:".to_string()),
        Just("A number of ports are dynamically assigned from the range (20K+).".to_string()),
        Just("1. `s3.example.com`\n2. `s3-alt.example.com`\n\nUploads use https and port 443.".to_string()),
        Just("* If you use X, the cluster must be able to connect to X's endpoints.".to_string()),
        Just("### Heading".to_string()),
        Just("### 2.1 Monitored host".to_string()),
        Just("The server acting as the central site must be able to reach the following ports on every monitored host.".to_string()),
        Just("For the features described, the remote sites must be able to reach these ports on the central site:".to_string()),
        Just("Open these ports on , for .".to_string()),
        Just("The following ports from to :".to_string()),
        Just("Notes: • The destination for these clients is the services on a Mailbox server. • The source can be any location.".to_string()),
        Just("The destination is on . The source is .".to_string()),
        Just("<table><caption>Table 1. Ports used for all-machine to control plane communications</caption><tr><th>Protocol</th><th>Port</th></tr><tr><td>TCP</td><td>6443</td></tr></table>".to_string()),
        Just("<table><caption>Ports used for all to  communications</caption><tr><th>Port</th></tr><tr><td>1</td></tr></table>".to_string()),
        Just("### etcd nodes - Inbound rules".to_string()),
        Just("## Worker node(s) {#node}".to_string()),
        Just("## Ports bound to localhost".to_string()),
        Just("[^1]: Only required if applications resolve names.\n\n† Only if NodePort.".to_string()),
        Just("**Footnotes:**\n\n1. Only opened when set.\n2. Here it connects out.".to_string()),
        Just("A Zabbix installation is made of a Zabbix server, optional Zabbix proxies and the web frontend.".to_string()),
        Just("The Zabbix agent listens on port 10050 (TCP): the Zabbix server opens the connection.".to_string()),
        Just("If you enable replication, also open TCP 8201 in both directions between the primary and each secondary.".to_string()),
        Just("Agents connect to the server on TCP port 10051, or to their proxy. You only need this when x.".to_string()),
        Just("open TCP ports 20000 through 32000 on every client".to_string()),
        Just("- Client -> Controller port is `:9200`\n- Worker -> port is :\n- -> :1".to_string()),
        Just("#### Ingress worker\n\n- Outbound connectivity (TCP-9201) to the control plane\n- Inbound connectivity (TCP-) from\n- Inbound from :".to_string()),
        Just("Domain controllers and domain controllers. The domain controllers.".to_string()),
        Just("HDX Direct is off by default. The rows below apply only once you enable it.".to_string()),
        Just("Required only when the Rendezvous policy is enabled.".to_string()),
        Just("<table><thead><tr><th>From / To</th><th>etcd nodes</th><th>worker nodes</th></tr></thead><tr><td rowspan=\"2\">etcd nodes <sup>(1)</sup></td><td colspan=\"2\">8472 UDP</td></tr><tr><td>2379 TCP <sup>(4)</sup></td></tr><tr><td colspan=\"3\">Notes:<br/>1. Only if x.<br/>4. Local traffic from the node to itself.</td></tr></table>".to_string()),
        "[ -~]{0,40}",
    ]
}

/// Plain text laid out as reStructuredText: titles under (and over) lines
/// of punctuation, literal blocks after `::`, command lines, and sentences
/// that state ports the ways such pages do.
fn rst_part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z][a-z ]{0,12}\n[~=^\"'*+#-]{1,16}".prop_map(|t| t),
        "=====\n[A-Za-z ]{0,8}\n=====".prop_map(|t| t),
        Just("For example::\n\n    sudo iptables -A INPUT -p tcp --dport 6789 -j ACCEPT\n  indented less\n::".to_string()),
        Just("$ curl https://host:8443/status\nsudo ss -tlnp | grep 3300".to_string()),
        Just("Ceph clients and the other Ceph daemons reach the Ceph Monitors on TCP port 3300.".to_string()),
        Just("The monitors also listen on TCP port 6789 for clients and daemons; keep it open only while they remain.".to_string()),
        Just("OSD Daemons bind to TCP ports in the 6800-7300 range, and clients, monitors and the other OSDs all connect to them there.".to_string()),
        Just("A manager listens on the first free TCP port in the 7300-6800 range, so open it.".to_string()),
        Just("ms_bind_port_min\n    Lowest port. Default: 6800.".to_string()),
        Just("<table><tr><th>Port</th><th>Use</th></tr><tr><td>8140</td><td><ul><li>The primary server uses this port to accept requests from agents.</li>\n<li>Agents connect to the load balancer here, and the load balancer passes the connection on to a compiler.</li>\n<li>The console sends requests to the primary server on this port. (Not required.)</li>\n<li>Data is replicated between the primary and the replica over this port.</li></ul></td></tr></table>".to_string()),
        Just("| Port | Use |\n|---|---|\n| 5432 | The service on each compiler uses this port to reach the database on the primary server. |\n| 22 | this port must be open on the primary server to that workstation |".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(doc) = Document::from_bytes("fuzz.bin".into(), bytes) {
            let _ = compile(&[doc]);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,600}") {
        let _ = compile_text(text);
    }

    #[test]
    fn plain_text_copies_never_panic(
        parts in prop::collection::vec(prop_oneof![cell_per_line_table(), tab_separated_table(), space_aligned_table(), grid_table(), prose()], 1..5)
    ) {
        let text = format!("Cluster node ports\n\n{}", parts.join("\n\n"));
        let lines = u32::try_from(text.lines().count()).unwrap();
        if let Some(policy) = compile_text(text) {
            for rule in &policy.rules {
                prop_assert!(rule.source.line >= 1 && rule.source.line <= lines, "{}", rule.source);
            }
        }
    }

    #[test]
    fn restructured_text_never_panics(
        parts in prop::collection::vec(rst_part(), 1..7)
    ) {
        let text = format!("Reference\n=========\n\n{}", parts.join("\n\n"));
        let lines = u32::try_from(text.lines().count()).unwrap();
        if let Some(policy) = compile_text(text) {
            for rule in &policy.rules {
                prop_assert!(rule.source.line >= 1 && rule.source.line <= lines, "{}", rule.source);
            }
        }
    }

    #[test]
    fn near_miss_documents_never_panic_and_stay_consistent(
        parts in prop::collection::vec(
            prop_oneof![markdown_table(), html_table(), cell_per_line_table(), tab_separated_table(), space_aligned_table(), grid_table(), prose(), rst_part()],
            1..6
        )
    ) {
        let text = parts.join("\n\n");
        let lines = u32::try_from(text.lines().count()).unwrap();
        if let Some(policy) = compile_text(text.clone()) {
            // What the compiler writes, it can read back.
            let toml = policy.to_toml();
            let again = Policy::from_toml(&toml, "fuzz").unwrap();
            prop_assert_eq!(&policy, &again);
            // Same input, same policy: profiles and reviews depend on it.
            prop_assert_eq!(compile_text(text).unwrap().to_toml(), toml);
            // Provenance points into the document.
            for rule in &policy.rules {
                prop_assert!(rule.source.line >= 1 && rule.source.line <= lines, "{}", rule.source);
            }
        }
    }
}
