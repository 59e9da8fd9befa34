//! The web UI's files: served from the binary with their types, caching and security headers,
//! to anyone (they hold no data; the API they call checks every request).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use kubetrain_gateway::{GatewayConfig, StaticTokens};

fn with_tokens() -> Gateway {
    let tokens =
        StaticTokens::from_yaml("tokens:\n- {token: t, user: ada, namespaces: [ml]}\n").unwrap();
    gateway_with(Arc::new(tokens), GatewayConfig::default())
}

#[tokio::test]
async fn pages_and_assets_are_served_with_their_types_and_headers() {
    let gw = with_tokens();
    let response = gw.send(get("/ui")).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "/ui/");
    for (path, content_type, contains) in [
        ("/ui/", "text/html; charset=utf-8", "<title>Training runs"),
        ("/ui/run", "text/html; charset=utf-8", "Confusion matrix"),
        ("/ui/new", "text/html; charset=utf-8", "New training run"),
        (
            "/ui/assets/app.js",
            "text/javascript; charset=utf-8",
            "export async function api",
        ),
        (
            "/ui/assets/style.css",
            "text/css; charset=utf-8",
            ":focus-visible",
        ),
        (
            "/ui/assets/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
            "uPlot",
        ),
    ] {
        let response = gw.send(get(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"));
        let (_, _, bytes) = gw.raw(get(path)).await;
        assert!(
            std::str::from_utf8(&bytes).unwrap().contains(contains),
            "{path}"
        );

        // Revalidation: the same ETag answers 304 without the body.
        let etag = headers["etag"].clone();
        let again = gw
            .send(
                Request::get(path)
                    .header("if-none-match", etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
}

#[tokio::test]
async fn unknown_ui_files_are_404_and_the_api_behind_the_pages_still_needs_a_token() {
    let gw = with_tokens();
    for path in [
        "/ui/nope",
        "/ui/assets/nope.js",
        "/ui/assets/../../openapi.json",
    ] {
        let (status, body) = gw.json(get(path)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = gw.json(get("/v1/namespaces/ml/trainingruns")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = gw.json(get("/v1/watch/namespaces/ml/trainingruns")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
}
