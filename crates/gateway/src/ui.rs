//! The web UI at `/ui/`: three pages (the runs of a namespace, one run, a form to submit a
//! run) and their scripts and styles, embedded in the binary (it works air-gapped: no CDN).
//!
//! # Expected flow
//! The pages hold no data: their scripts call the same REST API as every other client, with
//! the bearer token the user pastes (kept in the tab's `sessionStorage`), so the UI has exactly
//! the API's authentication and authorization and no path around them. Lists and runs stay
//! current through the API's Server-Sent Events (the namespace watch and a run's events).
//!
//! # Guarantees
//! Every file is answered with its content type, an `ETag` (a `304` for a matching
//! `If-None-Match`), `Cache-Control: no-cache` (revalidated on each load, so an upgraded binary
//! is seen at once) and a Content-Security-Policy allowing scripts, styles and connections to
//! this origin only. The chart library is uPlot 1.6.32 from npm, vendored unchanged under
//! `crates/gateway/ui/vendor/` (its MIT licence beside it; `tests/run.sh` checks it against
//! the npm release).

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Where the UI is served.
pub const UI_PATH: &str = "/ui/";

/// One embedded asset.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $path:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../ui/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One page: its `<main>` inside the shared `layout.html` (head, header with the navigation
/// and the token form).
struct Page {
    /// The path under `/ui/`.
    name: &'static str,
    title: &'static str,
    /// Tags for `<head>` before the shared stylesheet (the page's scripts).
    head: &'static str,
    main: &'static str,
}

const LAYOUT: &str = include_str!("../ui/layout.html");

static PAGE_SOURCES: [Page; 3] = [
    Page {
        name: "",
        title: "Training runs",
        head: r#"<script type="module" src="assets/list.js"></script>
"#,
        main: include_str!("../ui/runs.main.html"),
    },
    Page {
        name: "run",
        title: "Training run",
        head: r#"<link rel="stylesheet" href="assets/uPlot.min.css">
<script src="assets/uPlot.iife.min.js"></script>
<script type="module" src="assets/run.js"></script>
"#,
        main: include_str!("../ui/run.main.html"),
    },
    Page {
        name: "new",
        title: "New training run",
        head: r#"<script type="module" src="assets/new.js"></script>
"#,
        main: include_str!("../ui/new.main.html"),
    },
];

static ASSETS: [Asset; 7] = [
    asset!("app.js", "app.js", JS),
    asset!("list.js", "list.js", JS),
    asset!("run.js", "run.js", JS),
    asset!("new.js", "new.js", JS),
    asset!("style.css", "style.css", CSS),
    asset!(
        "uPlot.iife.min.js",
        "vendor/uplot-1.6.32/uPlot.iife.min.js",
        JS
    ),
    asset!("uPlot.min.css", "vendor/uplot-1.6.32/uPlot.min.css", CSS),
];

/// A file as served: its bytes (an asset's borrowed from the binary, a page's assembled) and
/// `ETag` (`"<first 16 hex digits of the sha256>"`).
struct Served {
    content_type: &'static str,
    bytes: Cow<'static, [u8]>,
    etag: String,
}

impl Served {
    fn new(content_type: &'static str, bytes: Cow<'static, [u8]>) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..16]);
        Served {
            content_type,
            bytes,
            etag,
        }
    }
}

/// The pages, assembled once, in `PAGE_SOURCES` order.
static PAGES: LazyLock<Vec<Served>> = LazyLock::new(|| {
    PAGE_SOURCES
        .iter()
        .map(|page| {
            let current = |name: &str| {
                if page.name == name {
                    r#" aria-current="page""#
                } else {
                    ""
                }
            };
            let html = LAYOUT
                .replace("{{title}}", page.title)
                .replace("{{head}}", page.head)
                .replace("{{runs-current}}", current(""))
                .replace("{{new-current}}", current("new"))
                .replace("{{main}}", page.main);
            Served::new(HTML, Cow::Owned(html.into_bytes()))
        })
        .collect()
});

/// The assets, in `ASSETS` order.
static SERVED_ASSETS: LazyLock<Vec<Served>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| Served::new(a.content_type, Cow::Borrowed(a.bytes)))
        .collect()
});

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The UI's routes, to merge into the API router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent(UI_PATH) }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { page("", &headers) }),
        )
        .route(
            "/ui/{page}",
            get(
                |Path(name): Path<String>, headers: HeaderMap| async move { page(&name, &headers) },
            ),
        )
        .route(
            "/ui/assets/{file}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move {
                match ASSETS.iter().position(|a| a.name == name) {
                    Some(index) => serve(&SERVED_ASSETS[index], &headers),
                    None => not_found(&name),
                }
            }),
        )
}

fn page(name: &str, headers: &HeaderMap) -> Response {
    match PAGE_SOURCES.iter().position(|p| p.name == name) {
        Some(index) => serve(&PAGES[index], headers),
        None => not_found(name),
    }
}

fn not_found(name: &str) -> Response {
    ApiError::not_found(format!(
        "the web UI has no page or file \"{}\"; start at {UI_PATH}",
        name.chars().take(80).collect::<String>()
    ))
    .into_response()
}

fn serve(file: &'static Served, request: &HeaderMap) -> Response {
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == file.etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.bytes.as_ref().into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&file.etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_file_a_page_names_is_served() {
        // Each `assets/X` a page links to is one of ASSETS (a renamed file fails here, not in
        // a browser).
        for (page, source) in PAGES.iter().zip(&PAGE_SOURCES) {
            let html = std::str::from_utf8(&page.bytes).unwrap();
            assert!(
                !html.contains("{{"),
                "a placeholder left in {:?}",
                source.name
            );
            for part in html.split("assets/").skip(1) {
                let name = part.split('"').next().unwrap();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "page {:?} links assets/{name}, which is not served",
                    source.name
                );
            }
        }
        // And each module a script imports.
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let script = std::str::from_utf8(asset.bytes).unwrap();
            for part in script.split("from './").skip(1) {
                let name = part.split('\'').next().unwrap();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}",
                    asset.name
                );
            }
        }
    }
}
