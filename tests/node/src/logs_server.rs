//! The one kubelet endpoint the API server needs for `kubectl logs`:
//! `GET /containerLogs/{namespace}/{pod}/{container}` (with `follow`, `tailLines`), over TLS,
//! for clients with a certificate from the cluster CA (the API server's kubelet client).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Certificates for the endpoint.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// Binds the endpoint (before the node reports its port) and serves it in the background.
pub async fn start(port: u16, tls: &Tls, work_dir: PathBuf) -> Result<()> {
    let acceptor = acceptor(tls)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding the logs endpoint on 127.0.0.1:{port}"))?;
    let work_dir = Arc::new(work_dir);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let work_dir = work_dir.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(stream) => {
                        if let Err(error) = serve(stream, &work_dir).await {
                            tracing::debug!(error = format!("{error:#}"), "logs request failed");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "TLS handshake failed"),
                }
            });
        }
    });
    Ok(())
}

fn acceptor(tls: &Tls) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading {}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("reading {}", tls.key.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&tls.client_ca)
        .with_context(|| format!("reading {}", tls.client_ca.display()))?
    {
        roots.add(ca.context("parsing the client CA")?)?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("loading the serving certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The request's target: container log file, follow, tail lines.
#[derive(Debug, PartialEq)]
struct LogRequest {
    namespace: String,
    pod: String,
    container: String,
    follow: bool,
    tail_lines: Option<usize>,
}

fn parse_target(target: &str) -> Option<LogRequest> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut parts = path.strip_prefix("/containerLogs/")?.split('/');
    let (namespace, pod, container) = (parts.next()?, parts.next()?, parts.next()?);
    let mut request = LogRequest {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: container.to_owned(),
        follow: false,
        tail_lines: None,
    };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("follow", v)) => request.follow = v == "true" || v == "1",
            Some(("tailLines", v)) => request.tail_lines = v.parse().ok(),
            _ => {}
        }
    }
    Some(request)
}

/// The log of the newest pod instance of that name (pods are recreated with new UIDs).
fn log_path(work_dir: &Path, r: &LogRequest) -> Option<PathBuf> {
    let prefix = format!("{}_{}_", r.namespace, r.pod);
    std::fs::read_dir(work_dir.join("pods"))
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path().join(format!("{}.log", r.container)))
        .filter(|p| p.exists())
}

fn tail(text: &str, lines: Option<usize>) -> &str {
    let Some(n) = lines else { return text };
    let mut cut = text.len();
    for _ in 0..n {
        match text[..cut].trim_end_matches('\n').rfind('\n') {
            Some(i) if cut > 0 => cut = i + 1,
            _ => return text,
        }
    }
    &text[cut..]
}

async fn serve<S>(stream: S, work_dir: &Path) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let request = parse_target(target);
    let found = request.as_ref().and_then(|r| log_path(work_dir, r));
    let mut stream = reader.into_inner();
    let (Some(request), Some(path)) = (request, found) else {
        let body = format!("no container log for {target}\n");
        let head = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        return Ok(stream.shutdown().await?);
    };
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        .await?;
    let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    stream
        .write_all(tail(&text, request.tail_lines).as_bytes())
        .await?;
    if request.follow {
        // Until the container's process is gone (its pidfile is removed when it exits).
        let pidfile = path.with_extension("pid");
        let mut file = tokio::fs::File::open(&path).await?;
        file.seek(std::io::SeekFrom::Start(text.len() as u64))
            .await?;
        let mut chunk = Vec::new();
        loop {
            let running = pidfile.exists();
            chunk.clear();
            file.read_to_end(&mut chunk).await?;
            if !chunk.is_empty() {
                stream.write_all(&chunk).await?;
                stream.flush().await?;
            } else if !running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(stream.shutdown().await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_the_kubelet_log_path() {
        let r = parse_target("/containerLogs/ns/p-1/main?follow=true&tailLines=2").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.pod.as_str(), r.container.as_str()),
            ("ns", "p-1", "main")
        );
        assert!(r.follow);
        assert_eq!(r.tail_lines, Some(2));
        assert!(parse_target("/pods").is_none());
    }

    #[test]
    fn tails_whole_lines() {
        assert_eq!(tail("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail("a\nb\nc\n", Some(5)), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", None), "a\nb\nc\n");
        assert_eq!(tail("a\nb\nc\n", Some(0)), "");
    }
}
