//! The HTTP face of the CMS: one warp filter that hands every request to [`dispatch`],
//! which finds the route in [`table::ROUTES`], authenticates, checks the route's permission
//! and CSRF, then calls the API or UI handler. Errors map to statuses in one place
//! ([`reply::error`]).

pub(crate) mod api;
mod blob;
mod library;
pub mod openapi;
mod public;
pub mod reply;
pub(crate) mod reports;
pub(crate) mod schema;
pub mod table;
mod tokens;
pub(crate) mod upload;

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use warp::Filter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use crate::auth::{Principal, Via};
use crate::error::{CmsError, Result};
use crate::i18n::Lang;
use crate::{Cms, ui};
use table::Found;

pub type BodyStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// JSON and form bodies larger than this are refused (uploads have their own limit).
const MAX_BODY: usize = 1 << 20;

/// One request, as handlers see it.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    /// In a mutex only so that `&Req` is `Sync` (handlers borrow it across awaits).
    body: std::sync::Mutex<Option<BodyStream>>,
    pub lang: Lang,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The `i`-th `{param}` of the path as a record id.
    pub fn id(&self, i: usize) -> Result<i64> {
        self.params
            .get(i)
            .and_then(|s| s.parse().ok())
            .filter(|n: &i64| *n > 0)
            .ok_or_else(|| CmsError::not_found("Không tìm thấy", "Record"))
    }

    /// The client's address: the connection's peer, or, when that peer is one of the
    /// `trusted` proxies, the nearest address its `X-Forwarded-For` names that is not
    /// itself a trusted proxy (what the proxy saw; anything further left the client wrote).
    pub fn ip(&self, trusted: &[std::net::IpAddr]) -> String {
        let Some(peer) = self.remote.map(|a| a.ip()) else {
            return "unknown".into();
        };
        if !trusted.contains(&peer) {
            return peer.to_string();
        }
        let forwarded = self
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<std::net::IpAddr>() {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => return ip.to_string(),
                // A hop that is not an address: nothing beyond it can be trusted.
                Err(_) => break,
            }
        }
        peer.to_string()
    }

    pub fn take_body(&mut self) -> Option<BodyStream> {
        self.body
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The whole body, at most [`MAX_BODY`] bytes.
    pub async fn bytes(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(mut body) = self.take_body() {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    CmsError::invalid(
                        format!("Lỗi đọc dữ liệu: {e}"),
                        format!("Reading the request failed: {e}"),
                    )
                })?;
                if out.len() + chunk.len() > MAX_BODY {
                    return Err(CmsError::TooLarge {
                        limit: MAX_BODY as u64,
                    });
                }
                out.extend_from_slice(&chunk);
            }
        }
        Ok(out)
    }

    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T> {
        let body = self.bytes().await?;
        // Every body of this API is an object: serde would read an array into a struct's
        // fields in order (`[null, null]` as a request with two fields left out).
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(CmsError::invalid(
                "Dữ liệu JSON phải là một đối tượng {…}.",
                "The JSON body must be an object {…}.",
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            CmsError::invalid(
                format!("Dữ liệu JSON không hợp lệ: {e}"),
                format!("Invalid JSON body: {e}"),
            )
        })
    }

    pub async fn form(&mut self) -> Result<Vec<(String, String)>> {
        let body = self.bytes().await?;
        Ok(table::parse_query(&String::from_utf8_lossy(&body)))
    }
}

/// The client's address, when a server that runs its own connection loop (the
/// controller's) serves these routes: a request extension, which no client can set.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The whole site (API, blobs, UI) as one warp filter.
pub fn routes(cms: Cms) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let peer = warp::ext::optional::<Peer>()
        .and(warp::addr::remote())
        .map(|peer: Option<Peer>, remote: Option<SocketAddr>| peer.map(|p| p.0).or(remote));
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(peer)
        .and(warp::body::stream())
        .map(make_req)
        .then(move |req: Req| {
            // One span per request: every line logged while serving it carries the method
            // and the route (the pattern, not the path: ids stay out of the field).
            let span = tracing::info_span!(
                "http",
                method = %req.method,
                route = tracing::field::Empty,
            );
            dispatch(cms.clone(), req).instrument(span)
        })
}

fn make_req<S, B>(
    method: Method,
    path: warp::path::FullPath,
    query: String,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: S,
) -> Req
where
    S: Stream<Item = std::result::Result<B, warp::Error>> + Send + 'static,
    B: warp::Buf,
{
    let body: BodyStream = Box::pin(
        body.map_ok(|mut buf| buf.copy_to_bytes(buf.remaining()))
            .map_err(std::io::Error::other),
    );
    let query = table::parse_query(&query);
    let mut req = Req {
        method,
        path: path.as_str().to_owned(),
        params: Vec::new(),
        query,
        headers,
        remote,
        body: std::sync::Mutex::new(Some(body)),
        lang: Lang::default(),
    };
    req.lang = Lang::choose(
        req.q("lang"),
        req.cookie("lang"),
        req.header("accept-language"),
    );
    req
}

/// Serves until `shutdown` resolves (mini-redis style: the caller owns the listener).
pub async fn serve(
    cms: Cms,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(cms))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

async fn dispatch(cms: Cms, mut req: Req) -> Response {
    let started = Instant::now();
    let (route, params) = match table::find(&req.method, &req.path) {
        Found::Route(r, p) => (r, p),
        Found::WrongMethod(allowed) => return method_not_allowed(&allowed, req.lang),
        Found::None => {
            let missing = CmsError::not_found("Không có trang này.", "No such page.");
            // A person who followed a bad link gets a page (Vietnamese unless they chose
            // English, as every page); programs get JSON.
            let browser = req
                .header("accept")
                .is_some_and(|a| a.contains("text/html"));
            if browser && !req.path.starts_with("/api/") {
                let lang = Lang::choose(req.q("lang"), req.cookie("lang"), None);
                return crate::ui::error_page(&missing, lang);
            }
            return reply::error(&missing, req.lang);
        }
    };
    req.params = params;
    tracing::Span::current().record("route", route.path);
    let api = route.is_api();
    if !api {
        // Pages are Vietnamese unless the user picked English: commune PCs often run an
        // English system whose browser asks for English.
        req.lang = Lang::choose(req.q("lang"), req.cookie("lang"), None);
    }
    let from_node = node_bearer(&req).is_some();
    let result = async {
        let mut node = None;
        let principal = if let Some(token) = node_bearer(&req) {
            // A speaker node: only the routes open to nodes.
            node = Some(cms.authenticate_node(token).await?);
            if !route.nodes {
                return Err(CmsError::forbidden(
                    "Mã của cụm loa không dùng được ở đây.",
                    "A node token cannot be used here.",
                ));
            }
            None
        } else if route.perm == crate::auth::Perm::Public {
            authenticate(&cms, &req).await.ok()
        } else {
            let p = authenticate(&cms, &req).await?;
            check_csrf(&p, &req)?;
            p.require(route.perm)?;
            // A scoped token opens its one route only.
            if p.scope.as_deref() == Some("province") && route.path != "/api/v1/province" {
                return Err(CmsError::forbidden(
                    "Mã này chỉ dùng để đọc số liệu toàn tỉnh.",
                    "This token only reads the province's figures.",
                ));
            }
            Some(p)
        };
        let ctx = table::Ctx {
            cms: &cms,
            principal,
            node,
            req: &mut req,
        };
        (route.handler)(ctx).await
    };
    let result = match from_node {
        true => crate::store::as_fleet(result).await,
        false => result.await,
    };
    let res = match result {
        Ok(res) => res,
        Err(CmsError::Unauthenticated) if !api && req.method == Method::GET => {
            reply::redirect("/login")
        }
        Err(e) if !api => ui::error_page(&e, req.lang),
        Err(e) => reply::error(&e, req.lang),
    };
    let (status, ms) = (res.status().as_u16(), started.elapsed().as_millis() as u64);
    cms.inner.metrics.request(
        crate::metrics::RouteLabels {
            method: req.method.as_str().to_owned(),
            route: route.path.to_owned(),
            status: status.to_string(),
        },
        started.elapsed().as_secs_f64(),
    );
    if status >= 500 {
        tracing::warn!(status, ms, "request failed");
    } else {
        tracing::debug!(status, ms, "request");
    }
    res
}

/// 405 with the methods the path does take (RFC 9110 §15.5.6).
fn method_not_allowed(allowed: &[Method], lang: Lang) -> Response {
    let err = CmsError::invalid("Phương thức không được hỗ trợ.", "Method not allowed.");
    let mut res = reply::error(&err, lang);
    *res.status_mut() = warp::http::StatusCode::METHOD_NOT_ALLOWED;
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    if let Ok(v) = warp::http::HeaderValue::from_str(&list.join(", ")) {
        res.headers_mut().insert(warp::http::header::ALLOW, v);
    }
    res
}

/// A bearer token that is a node's (see [`crate::NODE_TOKEN_PREFIX`]).
pub fn node_bearer(req: &Req) -> Option<&str> {
    req.header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(crate::NODE_TOKEN_PREFIX))
}

async fn authenticate(cms: &Cms, req: &Req) -> Result<Principal> {
    if let Some(auth) = req.header("authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or(CmsError::Unauthenticated)?;
        return cms.authenticate(token.trim(), Via::Bearer).await;
    }
    match req.cookie(reply::SESSION_COOKIE) {
        Some(secret) => cms.authenticate(secret, Via::Cookie).await,
        None => Err(CmsError::Unauthenticated),
    }
}

/// A browser session changing anything must show the CSRF token of its session (the
/// pages put it in every form; the script sends it as `X-CSRF-Token`).
fn check_csrf(p: &Principal, req: &Req) -> Result<()> {
    let safe = matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || p.via == Via::Bearer {
        return Ok(());
    }
    match req.header("x-csrf-token") {
        Some(t) if !p.csrf.is_empty() && constant_time_eq(t.as_bytes(), p.csrf.as_bytes()) => {
            Ok(())
        }
        _ => Err(CmsError::forbidden(
            "Thiếu mã chống giả mạo (CSRF). Hãy tải lại trang.",
            "Missing or wrong CSRF token. Reload the page.",
        )),
    }
}

/// Compares secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
