//! API keys and app users on the way in, as a layer by each route's [`Access`]. The checks
//! themselves are the use cases' ([`storybook_core::usecases::access`]): cheapest first, every
//! refusal audited with a truncated hash of what was presented (never the key), and failed
//! authentications limited per client IP so that keys cannot be guessed.

use crate::context::{request_of, route_of};
use crate::error::{ApiError, Problem};
use crate::extract::ProfileScope;
use crate::limits::enforce;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use storybook_core::catalogue::{Access, RouteClass};
use storybook_core::domain::api_key::{ApiKeyRecord, Scope};
use storybook_core::domain::user::{User, UserKey};
use storybook_core::usecases::access::{user_for_key, verify_key};
use storybook_core::usecases::{self, Refusal};

/// Which header carried the key, which decides how a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// The app contract's `X-Admin-Key`: every refusal is 403 `FORBIDDEN`.
    AdminHeader,
    /// `Authorization: Bearer …` or `X-API-Key` on `/v1/admin/…`: 401 `UNAUTHORIZED` for a
    /// missing, malformed, unknown, revoked or expired key; 403 for a refused IP or scope.
    ApiHeaders,
}

impl KeyHeader {
    fn read(self, parts: &Parts) -> Option<&str> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            KeyHeader::AdminHeader => header("x-admin-key"),
            KeyHeader::ApiHeaders => header("authorization")
                .map(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                        .unwrap_or(v)
                        .trim()
                })
                .or_else(|| header("x-api-key")),
        }
    }
}

/// Verifies the key `header` carries for `needed`. Answers the key's record, or the refusal:
/// for `X-Admin-Key`, every refusal but the rate limit is the one 403 the app expects.
pub async fn verify(
    state: &AppState,
    parts: &Parts,
    header: KeyHeader,
    needed: Scope,
) -> Result<ApiKeyRecord, ApiError> {
    let request = request_of(state, parts, ());
    verify_key(state, &*state.limiter, &request, header.read(parts), needed)
        .await
        .map_err(|refusal| match (header, refusal) {
            (KeyHeader::AdminHeader, Refusal::Unauthorized(_) | Refusal::Forbidden(_)) => {
                Refusal::Forbidden("Admin access required".into()).into()
            }
            (_, refusal) => refusal.into(),
        })
}

/// Authentication as a layer on every route that needs it, by the route's [`Access`]: it runs
/// before the handler and its extractors, so the order of a handler's arguments never decides
/// who is let in (nor whether a user is made for a caller who is then refused).
pub async fn authenticate(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match let_in(&guard, &mut parts).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => error.into_response(),
    }
}

/// What guards a route: who may call it, and the rate limit their calls count against.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub access: Access,
    pub class: RouteClass,
}

/// Checks the guard's access and leaves who was let in in the request's extensions.
async fn let_in(guard: &Guard, parts: &mut Parts) -> Result<(), ApiError> {
    let state = &guard.state;
    match guard.access {
        Access::Public => {}
        Access::Visitor => {
            let address = crate::context::client_ip(parts).unwrap_or_else(|| "unknown".into());
            enforce(state, parts, guard.class, &format!("ip:{address}")).await?;
        }
        Access::User => {
            let user = app_user(state, guard.class, parts).await?;
            parts.extensions.insert(AppUser(user));
        }
        Access::AdminApiKey => {
            let record = verify(state, parts, KeyHeader::ApiHeaders, Scope::Admin).await?;
            enforce(state, parts, guard.class, &format!("key:{}", record.key_id)).await?;
            parts.extensions.insert(AdminCaller(record));
        }
        Access::AdminKey => {
            let record = verify(state, parts, KeyHeader::AdminHeader, Scope::Admin).await?;
            enforce(state, parts, guard.class, &format!("key:{}", record.key_id)).await?;
            parts.extensions.insert(AdminKey(record));
        }
        Access::AdminForUser => {
            let record = verify(state, parts, KeyHeader::AdminHeader, Scope::Admin).await?;
            parts.extensions.insert(AdminKey(record));
            let user = app_user(state, guard.class, parts).await?;
            parts.extensions.insert(AppUser(user));
        }
    }
    Ok(())
}

pub const USER_KEY_HEADER: &str = "x-user-key";

/// The app user behind `X-User-Key`. A missing key is a schema error (422), a malformed one a
/// 400, both before any store read; an unknown well-formed key creates the user.
async fn app_user(state: &AppState, class: RouteClass, parts: &Parts) -> Result<User, ApiError> {
    let Some(raw) = parts.headers.get(USER_KEY_HEADER) else {
        return Err(ApiError::schema(Problem::new(
            &["header", USER_KEY_HEADER],
            "Field required",
            "missing",
        )));
    };
    let key = raw
        .to_str()
        .ok()
        .and_then(|raw| UserKey::parse(raw).ok())
        .ok_or_else(|| ApiError::BadRequest("Invalid X-User-Key format".into()))?;
    let user = user_for_key(state, &request_of(state, parts, &key)).await?;
    enforce(state, parts, class, &format!("user:{}", user.id.as_str())).await?;
    Ok(user)
}

/// The app user the route's layer let in.
#[derive(Clone)]
struct AppUser(User);

/// The admin-scoped API key (`Authorization`/`X-API-Key`) the route's layer let in.
#[derive(Clone)]
struct AdminCaller(ApiKeyRecord);

/// The admin key in `X-Admin-Key` (the app contract's header for admin calls) the route's layer
/// let in. Anything but an active admin key of this environment answers 403 `FORBIDDEN`.
#[derive(Clone)]
struct AdminKey(ApiKeyRecord);

/// Who the layer let in, for a handler: the use cases' request by that caller.
fn let_in_as<C: Clone + Send + Sync + 'static>(parts: &Parts, name: &str) -> Result<C, ApiError> {
    parts.extensions.get::<C>().cloned().ok_or_else(|| {
        // A handler asking for a caller its route's access does not give is a wiring mistake,
        // answered 500 (every route's test would show it).
        Refusal::internal(format!(
            "{} asks for {name} without the access that gives it",
            route_of(parts)
        ))
        .into()
    })
}

/// The request of the app user the layer let in.
pub struct UserRequest(pub usecases::Request<User>);

/// The request of the admin-scoped API key the layer let in.
pub struct AdminRequest(pub usecases::Request<ApiKeyRecord>);

/// The request of an admin key acting for the app user in `X-User-Key`.
pub struct AdminForUserRequest(pub usecases::Request<(ApiKeyRecord, User)>);

impl FromRequestParts<AppState> for UserRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AppUser(user) = let_in_as(parts, "an app user")?;
        Ok(UserRequest(request_of(state, parts, user)))
    }
}

/// The request of the app user the layer let in, scoped to the child profile in `X-Profile-Id`
/// when one is sent: what the routes the contract scopes take (books, library, streaks).
pub struct ScopedRequest(pub usecases::Request<User>);

impl FromRequestParts<AppState> for ScopedRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ProfileScope(profile) = ProfileScope::from_request_parts(parts, state).await?;
        let UserRequest(mut request) = UserRequest::from_request_parts(parts, state).await?;
        request.profile = profile;
        Ok(ScopedRequest(request))
    }
}

impl FromRequestParts<AppState> for AdminRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AdminCaller(key) = let_in_as(parts, "an admin API key")?;
        Ok(AdminRequest(request_of(state, parts, key)))
    }
}

impl FromRequestParts<AppState> for AdminForUserRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AdminKey(key) = let_in_as(parts, "an admin key")?;
        let AppUser(user) = let_in_as(parts, "an app user")?;
        Ok(AdminForUserRequest(request_of(state, parts, (key, user))))
    }
}

/// The request of a caller no key names: a public route's (a store's notification).
pub struct AnonymousRequest(pub usecases::Request<()>);

impl FromRequestParts<AppState> for AnonymousRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(AnonymousRequest(request_of(state, parts, ())))
    }
}
