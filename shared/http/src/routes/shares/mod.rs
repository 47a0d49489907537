//! A book shared by link: the owner's `POST /v1/books/{book_id}/share` and `/share/revoke`, and
//! the public `GET /share/{token}` (a web page) with its pictures, `/share/{token}/img/cover` and
//! `/share/{token}/img/page/{page_number}`. The public routes need no key and are limited per
//! client address; the token never reaches a log (logs name the route's pattern).

mod page;

use crate::auth::UserRequest;
use crate::endpoints::Endpoint;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParam};
use crate::routes::pages::BookPage;
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::usecases::shares;

/// The routes this file serves: the owner's on the library function, the public ones on a
/// function of their own.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Library, "/v1/books/{book_id}/share", share),
        Endpoint::post(Family::Library, "/v1/books/{book_id}/share/revoke", revoke),
        Endpoint::get(Family::Share, "/share/{token}", shared_page).visitor(),
        Endpoint::get(Family::Share, "/share/{token}/img/cover", shared_cover).visitor(),
        Endpoint::get(
            Family::Share,
            "/share/{token}/img/page/{page_number}",
            shared_picture,
        )
        .visitor(),
    ]
}

/// The app contract's `CreateShareRequest`.
#[derive(Deserialize)]
pub struct CreateShare {
    #[serde(default)]
    expires_in_days: i64,
}

#[derive(Serialize)]
pub struct ShareLink {
    token: String,
    url: String,
    expires_at: String,
}

/// A new link to the caller's finished book.
pub async fn share(
    State(state): State<AppState>,
    Origin(origin): Origin,
    UserRequest(request): UserRequest,
    PathParam(book_id): PathParam,
    JsonBody(body): JsonBody<CreateShare>,
) -> Result<Json<ShareLink>, ApiError> {
    ApiError::unless_between(&["body", "expires_in_days"], body.expires_in_days, 0, 365)?;
    let shared = shares::share_book(&state, &request, &book_id, body.expires_in_days).await?;
    let token = shared.token.as_str().to_owned();
    Ok(Json(ShareLink {
        url: format!("{origin}/share/{token}"),
        token,
        expires_at: timestamp(shared.expires_at),
    }))
}

#[derive(Serialize)]
pub struct Revoked {
    status: &'static str,
}

/// Ends every link of the caller's book.
pub async fn revoke(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(book_id): PathParam,
) -> Result<Json<Revoked>, ApiError> {
    shares::revoke_shares(&state, &request, &book_id).await?;
    Ok(Json(Revoked { status: "revoked" }))
}

/// Where links point: `SHARE_BASE_URL` (local mode: its public address), else the domain API
/// Gateway received the request on (one of the API's own, never the client's Host header).
pub struct Origin(String);

impl FromRequestParts<AppState> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        use lambda_http::request::RequestContext;
        let configured = state.config.share_base_url.clone();
        let received = || match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .domain_name
                .as_ref()
                .map(|domain| format!("https://{domain}")),
            _ => None,
        };
        let origin = configured.or_else(received).unwrap_or_default();
        Ok(Origin(origin.trim_end_matches('/').to_owned()))
    }
}

/// What every public answer carries: kept out of search engines.
fn public(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    response
}

/// The shared book's page, or a friendly 404 page when the link opens nothing.
pub async fn shared_page(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (status, html) = match shares::shared_book(&state, &token, now).await? {
        Some(book) => (StatusCode::OK, page::book_page(&book, &token, &origin)),
        None => (StatusCode::NOT_FOUND, page::gone_page()),
    };
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&page::POLICY).map_err(|e| {
            storybook_core::usecases::Refusal::internal(format!("the page's policy: {e}"))
        })?,
    );
    // Read afresh each time: a revoke ends what a browser shows.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(public(response))
}

pub async fn shared_cover(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    picture(&state, &token, 0, &request_headers).await
}

pub async fn shared_picture(
    State(state): State<AppState>,
    BookPage(token, page): BookPage,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    match u32::try_from(page) {
        Ok(page) if page > 0 => picture(&state, &token, page, &request_headers).await,
        _ => Ok(public(StatusCode::NOT_FOUND.into_response())),
    }
}

/// One of the book's own stored pictures (never a fetch of a URL), or 404 with no body. A
/// browser may keep it but must ask again before each use (`no-cache` with an ETag), so a
/// picture ends with its link: a revoked or expired link answers 404, not 304.
async fn picture(
    state: &AppState,
    token: &str,
    page: u32,
    request_headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let Some(found) = shares::shared_picture(state, token, page, now).await? else {
        return Ok(public(StatusCode::NOT_FOUND.into_response()));
    };
    let etag = found.etag();
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match shares::picture_bytes(state, &found).await? {
            Some(bytes) => ([(header::CONTENT_TYPE, found.content_type)], bytes).into_response(),
            None => return Ok(public(StatusCode::NOT_FOUND.into_response())),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    Ok(public(response))
}
