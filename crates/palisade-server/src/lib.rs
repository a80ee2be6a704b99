//! Palisade's HTTP server as a library: configuration, the axum router, error mapping, OpenAPI,
//! telemetry, and the application's start and graceful stop.
//!
//! Handlers stay thin: they parse, call one service of `palisade-core`, and shape the answer. This
//! crate holds no business rules, no SQL and no cryptography.

pub mod app;
pub mod client_keys;
pub mod config;
pub mod error;
pub mod extract;
pub mod geoip;
pub mod hsm;
mod middleware;
pub mod notify;
pub mod openapi;
mod routes;
pub mod telemetry;

pub use app::{AppState, Application, RouterOptions, bootstrap, router, shutdown_signal};
pub use routes::clients::client_view;
pub use routes::reports::{ReportFormat, Styles, render_html, report_view};
