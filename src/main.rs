//! The `strangers` binary: read the configuration, bind, serve until Ctrl-C or SIGTERM.

use strangers::config::{Config, LogFormat};
use strangers::server;

#[tokio::main]
async fn main() {
    let config = Config::from_env();
    init_logging(config.log_format);

    let listener = match server::bind(config.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {} (--listen): {e}", config.listen);
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");
    tracing::info!(?config, "starting");
    println!("strangers is listening: open http://{addr}/ in two browser windows");

    server::run(listener, config, shutdown_signal()).await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what Fly.io and most supervisors send).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
