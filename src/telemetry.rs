//! Logging: JSON lines when stderr is not a terminal (Fargate → CloudWatch), text otherwise.
use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

/// Whether progress bars should be drawn.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Installs the global subscriber. `format` is auto, json or text.
pub fn init(format: &str) {
    init_at(format, "info");
}

/// Like [`init`], but only warnings and errors unless FDNIX_LOG says otherwise (for commands
/// whose output is the result, such as `search`).
pub fn init_quiet(format: &str) {
    init_at(format, "warn");
}

fn init_at(format: &str, default_level: &str) {
    let filter = EnvFilter::try_from_env("FDNIX_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => !interactive(),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).with_current_span(false).try_init() } else { builder.compact().try_init() };
}
