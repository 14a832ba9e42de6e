//! `peers` sections: the peers a process shares its stick tables with, and the tables the
//! section declares. rhaproxy has no peer protocol: a section whose only peer is this
//! process (or that has none) is accepted and its tables work locally; synchronisation with
//! another peer is refused at `-c` time (see `config::validate`).

use super::LineCtx;
use crate::config::ir::{Located, PeersSection};

/// One line of a `peers` section.
pub fn peers_line(ctx: &mut LineCtx, s: &mut PeersSection, a: &[String]) {
    match a[0].as_str() {
        "peer" | "server" => {
            let Some(name) = a.get(1) else {
                ctx.alert(format!("'{}' : missing name for peer", a[0]));
                return;
            };
            let addr = a.get(2).cloned();
            if a[0] == "peer" && addr.is_none() {
                ctx.alert(format!("'peer {name}' : missing address"));
                return;
            }
            s.peers
                .push(Located::new((name.clone(), addr), ctx.loc.clone()));
        }
        "disabled" => s.disabled = true,
        "enabled" => s.disabled = false,
        "table" => {
            let Some(name) = a.get(1) else {
                ctx.alert("'table' expects a table name.");
                return;
            };
            // `table NAME type ...`: the stick-table arguments after the name.
            let mut words = vec!["stick-table".to_string()];
            words.extend(a[2..].iter().cloned());
            if let Some(t) = super::stick::parse_table(ctx, &words) {
                s.tables.push((
                    format!("{}/{name}", s.name),
                    Located::new(t, ctx.loc.clone()),
                ));
            }
        }
        // The local listener (`bind`), the settings of the peers' connections, their log:
        // only used by the peer protocol.
        "bind" | "default-bind" | "default-server" | "log" | "shards" => {}
        w => ctx.alert(format!("unknown keyword '{w}' in 'peers' section")),
    }
}
