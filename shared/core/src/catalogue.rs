//! The words a route is declared in: the function family that serves it, who may call it and its
//! rate-limit class. The routes themselves are declared beside their handlers, in the HTTP crate.

use crate::config::Limits;

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
    /// The public pages of shared books, which anyone with a link opens in a browser.
    Share,
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
        Family::Share,
    ];

    /// Whether the family's routes use blob storage: the credits and admin functions are not
    /// given it (nor link its client).
    pub fn uses_blobs(self) -> bool {
        !matches!(self, Family::Credits | Family::Admin)
    }

    /// Whether the family's routes queue generation steps (books made, pages made again, a book
    /// narrated) or check the queue (readiness): the other functions are not given it (nor link
    /// its client).
    pub fn uses_queue(self) -> bool {
        matches!(self, Family::Health | Family::Books)
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
            Family::Share => "api-share",
        }
    }
}

/// Who may call a route, checked by the HTTP layer before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health and capabilities.
    Public,
    /// Anyone, limited per client address: a shared book's page and pictures.
    Visitor,
    /// An app user by `X-User-Key` (an unknown well-formed key makes the user).
    User,
    /// An admin-scoped API key by `Authorization: Bearer` or `X-API-Key` (`/v1/admin/...`).
    AdminApiKey,
    /// The app contract's `X-Admin-Key` alone (an operator's reads, such as the detailed health).
    AdminKey,
    /// The app contract's `X-Admin-Key`, then the app user it acts for: checked in that order,
    /// so an unauthenticated call makes no user.
    AdminForUser,
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
