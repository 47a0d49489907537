//! The route catalogue's data: every route the API serves, its function family and its class.
//! The HTTP layer maps each to its handler; a test checks that this list, `template.yaml` and
//! `openapi.json` name the same routes.

use crate::config::Limits;
use http::Method;

/// A group of routes served by one Lambda function (its own IAM policy and throttling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Health,
    Credits,
    Books,
    Library,
    Users,
    Admin,
    /// Routes that call a provider while the caller waits (characters, moderated, described from
    /// words or pictures; a page read aloud).
    Studio,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Health,
        Family::Credits,
        Family::Books,
        Family::Library,
        Family::Users,
        Family::Admin,
        Family::Studio,
    ];

    /// Whether the family's routes use blob storage and the step queue: the credits and admin
    /// functions are given neither (nor link their clients).
    pub fn uses_blobs_and_queue(self) -> bool {
        !matches!(self, Family::Credits | Family::Admin)
    }

    /// The binary in `functions/` that serves the family.
    pub fn function(self) -> &'static str {
        match self {
            Family::Health => "api-health",
            Family::Credits => "api-credits",
            Family::Books => "api-books",
            Family::Library => "api-library",
            Family::Users => "api-users",
            Family::Admin => "api-admin",
            Family::Studio => "api-studio",
        }
    }
}

/// Who may call a route, checked by the HTTP layer before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and capabilities.
    Public,
    /// An app user by `X-User-Key` (an unknown well-formed key makes the user).
    User,
    /// An admin-scoped API key by `Authorization: Bearer` or `X-API-Key` (`/v1/admin/...`).
    AdminApiKey,
    /// The app contract's `X-Admin-Key`, then the app user it acts for: checked in that order,
    /// so an unauthenticated call makes no user.
    AdminForUser,
}

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

impl Route {
    /// How expensive the route is, for the rate limits.
    pub fn class(&self) -> RouteClass {
        RouteClass::of(
            &Method::from_bytes(self.method.as_bytes()).expect("catalogued methods are valid"),
            self.path,
        )
    }
}

const fn route(family: Family, method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        family,
        method,
        path,
        access,
    }
}

/// Every route, in the order the router adds them.
pub const ROUTES: &[Route] = {
    use Access::{AdminApiKey, AdminForUser, Public, User};
    use Family::*;
    &[
        route(Health, "GET", "/health", Public),
        route(Health, "GET", "/health/live", Public),
        route(Health, "GET", "/health/ready", Public),
        route(Health, "GET", "/v1/config/capabilities", Public),
        route(Credits, "GET", "/v1/credits/balance", User),
        route(Credits, "GET", "/v1/credits/status", User),
        route(Credits, "GET", "/v1/credits/check", User),
        route(Credits, "GET", "/v1/credits/transactions", User),
        route(Credits, "POST", "/v1/credits/add", AdminForUser),
        route(Books, "POST", "/v1/books", User),
        route(Books, "POST", "/v1/books/series", User),
        route(Books, "GET", "/v1/books/{job_id}", User),
        route(Books, "GET", "/v1/books/{book_id}/detail", User),
        route(Books, "GET", "/v1/books/{book_id}/pdf", User),
        route(
            Books,
            "POST",
            "/v1/books/{job_id}/pages/{page_number}/regenerate",
            User,
        ),
        route(Books, "POST", "/v1/books/{book_id}/audio", User),
        route(
            Studio,
            "GET",
            "/v1/books/{book_id}/pages/{page_number}/audio",
            User,
        ),
        route(Library, "GET", "/v1/library", User),
        route(Library, "PATCH", "/v1/library/{book_id}", User),
        route(Library, "DELETE", "/v1/library/{book_id}", User),
        route(Studio, "POST", "/v1/characters", User),
        route(Library, "GET", "/v1/characters", User),
        route(Library, "GET", "/v1/characters/presets", Public),
        route(Studio, "POST", "/v1/characters/from-preset", User),
        route(Studio, "POST", "/v1/characters/from-text", User),
        route(Studio, "POST", "/v1/characters/from-photo", User),
        route(Studio, "POST", "/v1/characters/from-drawing", User),
        route(Library, "GET", "/v1/characters/{character_id}", User),
        route(Library, "DELETE", "/v1/characters/{character_id}", User),
        route(Users, "DELETE", "/v1/users/me", User),
        route(Users, "GET", "/v1/settings", User),
        route(Users, "PATCH", "/v1/settings", User),
        route(Users, "GET", "/v1/consent", User),
        route(Users, "POST", "/v1/consent", User),
        route(Users, "POST", "/v1/consent/revoke", User),
        route(Users, "POST", "/v1/streak/read", User),
        route(Users, "GET", "/v1/streak/info", User),
        route(Users, "GET", "/v1/streak/calendar", User),
        route(Users, "GET", "/v1/streak/history", User),
        route(Admin, "POST", "/v1/admin/api-keys", AdminApiKey),
        route(Admin, "GET", "/v1/admin/api-keys", AdminApiKey),
        route(Admin, "GET", "/v1/admin/api-keys/{key_id}", AdminApiKey),
        route(Admin, "PATCH", "/v1/admin/api-keys/{key_id}", AdminApiKey),
        route(Admin, "DELETE", "/v1/admin/api-keys/{key_id}", AdminApiKey),
        route(
            Admin,
            "POST",
            "/v1/admin/api-keys/{key_id}/rotate",
            AdminApiKey,
        ),
        route(
            Admin,
            "GET",
            "/v1/admin/api-keys/{key_id}/usage",
            AdminApiKey,
        ),
        route(
            Admin,
            "POST",
            "/v1/admin/users/{user_id}/credits",
            AdminApiKey,
        ),
        route(Admin, "GET", "/v1/admin/audit-log", AdminApiKey),
        route(
            Admin,
            "GET",
            "/v1/admin/users/{user_id}/reconciliation",
            AdminApiKey,
        ),
        route(Admin, "GET", "/v1/admin/spend", AdminApiKey),
        route(Admin, "PUT", "/v1/admin/kill-switch", AdminApiKey),
    ]
};

/// The routes whose body is a child's picture: their body limit is the upload's, not the API's.
pub fn takes_upload(path: &str) -> bool {
    matches!(
        path,
        "/v1/characters/from-photo" | "/v1/characters/from-drawing"
    )
}

/// True when the API serves `method path`; what the capabilities answer is derived from.
pub fn serves(method: &str, path: &str) -> bool {
    ROUTES.iter().any(|r| r.method == method && r.path == path)
}

/// How expensive a route is to serve; each class has its own limit per caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Starts paid generation work.
    Generation,
    Write,
    Read,
}

impl RouteClass {
    const GENERATION: &'static [&'static str] = &[
        "/v1/books",
        "/v1/books/series",
        "/v1/books/{job_id}/pages/{page_number}/regenerate",
        "/v1/books/{book_id}/audio",
        "/v1/characters/from-text",
        "/v1/characters/from-photo",
        "/v1/characters/from-drawing",
    ];

    /// Reads that may start paid work (a page read aloud on demand): limited as generation.
    const GENERATION_READS: &'static [&'static str] =
        &["/v1/books/{book_id}/pages/{page_number}/audio"];

    pub fn of(method: &Method, route: &str) -> Self {
        if (*method == Method::POST && Self::GENERATION.contains(&route))
            || (*method == Method::GET && Self::GENERATION_READS.contains(&route))
        {
            RouteClass::Generation
        } else if *method == Method::GET || *method == Method::HEAD {
            RouteClass::Read
        } else {
            RouteClass::Write
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Generation => "generation",
            RouteClass::Write => "write",
            RouteClass::Read => "read",
        }
    }

    pub fn limit(self, limits: &Limits) -> u32 {
        match self {
            RouteClass::Generation => limits.generation_per_minute,
            RouteClass::Write => limits.writes_per_minute,
            RouteClass::Read => limits.reads_per_minute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            RouteClass::of(&Method::POST, "/v1/books"),
            RouteClass::Generation
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/v1/credits/add"),
            RouteClass::Write
        );
        assert_eq!(
            RouteClass::of(&Method::DELETE, "/v1/library/{book_id}"),
            RouteClass::Write
        );
        assert_eq!(
            RouteClass::of(&Method::GET, "/v1/books/{job_id}"),
            RouteClass::Read
        );
    }
}
