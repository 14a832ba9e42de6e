//! `mode tcp` sessions: choose a server, connect, forward both ways.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;

use super::backend::{Backend, ConnCtx, ConnectError};
use super::forward::{self, SideTimeouts, Timeouts};
use super::{Accepted, Frontend};
use crate::lb::RequestKey;
use crate::tproxy::addr::unmap;

/// The forwarding timeouts of a frontend/backend pair in a tunnel (TCP mode, or HTTP after an
/// upgrade): `timeout tunnel` replaces client and server when set.
pub fn tunnel_timeouts(fe: &Frontend, be: Option<&Backend>) -> Timeouts {
    let tunnel = be.and_then(|b| b.tunnel_timeout);
    Timeouts {
        client: SideTimeouts {
            normal: tunnel.or(fe.client_timeout),
            fin: fe.client_fin_timeout,
        },
        server: SideTimeouts {
            normal: tunnel.or(be.and_then(|b| b.server_timeout)),
            fin: be.and_then(|b| b.server_fin_timeout),
        },
    }
}

pub async fn session(fe: Arc<Frontend>, client: TcpStream, acc: Accepted) {
    let Some(be) = fe.backend.clone() else {
        return;
    };
    be.cum_conns.fetch_add(1, Ordering::Relaxed);
    let key = RequestKey::tcp(unmap(acc.client.ip()));
    let ctx = ConnCtx {
        client: acc.client,
        orig_dst: acc.orig_dst,
    };
    let (server, slot) = match be.connect(&key, ctx, None).await {
        Ok(x) => x,
        Err(e) => {
            report_connect_error(&be, &e);
            return;
        }
    };
    let mut kill = slot.as_ref().map(|s| s.server().admin.kill_watch());
    let _slot = slot;
    let tmo = tunnel_timeouts(&fe, Some(&be));
    tokio::select! {
        _ = forward::forward(client, server, tmo, &[], &[]) => {}
        _ = super::admin::killed(kill.as_mut()) => {}
    }
}

/// Connect errors are for the log (resource errors were already printed as alerts).
pub fn report_connect_error(be: &Backend, e: &ConnectError) {
    let _ = (be, e);
}
