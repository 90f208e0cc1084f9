//! A loopback port of the test's own namespace that leads to the same port on a lab
//! namespace's loopback: how the test reaches a program that listens only there
//! (geckodriver and Firefox's BiDi socket, which run inside a home). The port number is
//! the same on both sides because those programs check that the `Host` header names their
//! own port. Each connection accepted here is matched by one made from inside the
//! namespace; bytes are copied both ways until either side closes.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use super::netns;

/// A forwarded port; dropping it stops accepting and cuts every connection it carries.
pub struct Forward {
    /// The port, on this namespace's 127.0.0.1 and on the other's.
    pub port: u16,
    /// Accepts connections and owns the tasks copying them (aborting it aborts them all).
    task: JoinHandle<()>,
}

impl Forward {
    /// Forwards a fresh port of 127.0.0.1 here to the same port of 127.0.0.1 inside `ns`
    /// (where nothing listens yet: the caller starts the program on it). Needs a tokio
    /// runtime.
    pub fn open(ns: &str) -> Result<Forward, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("a loopback port to forward: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let ns = ns.to_string();
        let task = tokio::spawn(async move {
            let mut carried = JoinSet::new();
            while let Ok((outside, _)) = listener.accept().await {
                let ns = ns.clone();
                carried.spawn(async move {
                    let inside = tokio::task::spawn_blocking(move || connect_inside(&ns, port));
                    if let Ok(Ok(inside)) = inside.await {
                        carry(outside, inside).await;
                    }
                });
                // Forget the connections that are over.
                while carried.try_join_next().is_some() {}
            }
        });
        Ok(Forward { port, task })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection to `127.0.0.1:port` from a socket made inside `ns`.
fn connect_inside(ns: &str, port: u16) -> Result<TcpStream, String> {
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    netns::within(ns, || {
        TcpStream::connect_timeout(&target, Duration::from_secs(5))
    })?
    .map_err(|e| format!("{target} inside {ns}: {e}"))
}

/// Copies both ways between the two connections until one side closes.
async fn carry(outside: tokio::net::TcpStream, inside: TcpStream) {
    let Ok(mut inside) = inside
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(inside))
    else {
        return;
    };
    let mut outside = outside;
    let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
}
