//! Static files from `www/`: the dashboard at `/`, the demo at `/demo/`, the
//! built wasm package at `/pkg/` (served as `application/wasm`, so browsers
//! can compile it while it streams).

use std::path::Path;

use axum::http::{HeaderValue, header};
use tower::Layer;
use tower_http::compression::{Compression, CompressionLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

/// The static-file service: gzip when the browser accepts it (the dashboard and the
/// wasm shrink to about a third), revalidated on every load so a rebuilt `pkg/` is picked up.
pub(crate) type Service = Compression<SetResponseHeader<ServeDir, HeaderValue>>;

/// A service serving `dir`.
pub(crate) fn service(dir: &Path) -> Service {
    let files = SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
        .layer(ServeDir::new(dir).append_index_html_on_directories(true));
    CompressionLayer::new().gzip(true).layer(files)
}
