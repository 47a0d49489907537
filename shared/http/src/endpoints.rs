//! What a route is, declared once beside its handler: each file in `routes/` has an `endpoints()`
//! naming its routes (method, path, family, access, rate-limit class, body limit, the feature it
//! gives the capabilities) and this module merges them. The router, the template and OpenAPI
//! checks and `/v1/config/capabilities` all read these declarations; `docs/adding-a-route.md`
//! lists what else a new route needs.

use crate::routes;
use crate::state::AppState;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use std::sync::LazyLock;
use storybook_core::catalogue::{Access, Family, RouteClass};

/// How large a route's request body may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// The API's (`MAX_BODY_BYTES`).
    Api,
    /// A child's picture: the upload's limit (`UPLOAD_MAX_BYTES`) and its multipart framing.
    Upload,
}

/// What the app's UI turns on when the route that gives it is served (`/v1/config/capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    BookGeneration,
    Library,
    PdfExport,
    Narration,
    PageRegeneration,
    Series,
    Characters,
    CharacterFromPhoto,
    Streaks,
    Settings,
    AccountDeletion,
    Credits,
    Purchases,
}

impl Feature {
    pub const ALL: &'static [Feature] = &[
        Feature::BookGeneration,
        Feature::Library,
        Feature::PdfExport,
        Feature::Narration,
        Feature::PageRegeneration,
        Feature::Series,
        Feature::Characters,
        Feature::CharacterFromPhoto,
        Feature::Streaks,
        Feature::Settings,
        Feature::AccountDeletion,
        Feature::Credits,
        Feature::Purchases,
    ];

    /// True when this build serves a route giving the feature.
    pub fn served(self) -> bool {
        static SERVED: LazyLock<Vec<Feature>> =
            LazyLock::new(|| all().iter().filter_map(|e| e.feature).collect());
        SERVED.contains(&self)
    }
}

/// One route and its handler. Made with [`Endpoint::get`] and its siblings: an app user's route
/// (`X-User-Key`), limited as a read (`GET`) or a write, with the API's body limit, unless a
/// modifier says otherwise.
pub struct Endpoint {
    pub family: Family,
    pub access: Access,
    pub class: RouteClass,
    pub body: BodyLimit,
    pub feature: Option<Feature>,
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

macro_rules! methods {
    ($($name:ident => $method:literal),* $(,)?) => {
        $(
            #[doc = concat!("A `", $method, "` route of `family` at `path`.")]
            pub fn $name<H, T>(family: Family, path: &'static str, handler: H) -> Self
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                Self::new(family, $method, path, axum::routing::$name(handler))
            }
        )*
    };
}

impl Endpoint {
    fn new(
        family: Family,
        method: &'static str,
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Endpoint {
            family,
            access: Access::User,
            class: if method == "GET" {
                RouteClass::Read
            } else {
                RouteClass::Write
            },
            body: BodyLimit::Api,
            feature: None,
            method,
            path,
            handler,
        }
    }

    methods!(get => "GET", post => "POST", put => "PUT", patch => "PATCH", delete => "DELETE");

    /// Anyone may call it (no key, no rate limit per caller).
    pub fn public(self) -> Self {
        self.access(Access::Public)
    }

    /// Anyone may call it, limited per client address.
    pub fn visitor(self) -> Self {
        self.access(Access::Visitor)
    }

    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// It starts paid work: limited as generation.
    pub fn generation(mut self) -> Self {
        self.class = RouteClass::Generation;
        self
    }

    /// Its body is a child's picture.
    pub fn upload(mut self) -> Self {
        self.body = BodyLimit::Upload;
        self
    }

    /// Serving it turns `feature` on in the capabilities.
    pub fn gives(mut self, feature: Feature) -> Self {
        self.feature = Some(feature);
        self
    }
}

/// Every route, in the order the router adds them.
pub fn all() -> Vec<Endpoint> {
    [
        routes::health::endpoints(),
        routes::config::endpoints(),
        routes::credits::endpoints(),
        routes::subscriptions::endpoints(),
        routes::print_orders::endpoints(),
        routes::profiles::endpoints(),
        routes::purchases::endpoints(),
        routes::books::endpoints(),
        routes::pages::endpoints(),
        routes::library::endpoints(),
        routes::shares::endpoints(),
        routes::characters::endpoints(),
        routes::studio::endpoints(),
        routes::users::endpoints(),
        routes::settings::endpoints(),
        routes::consent::endpoints(),
        routes::streak::endpoints(),
        routes::daily::endpoints(),
        routes::admin::endpoints(),
        routes::spend::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The routes of `families` with their handlers.
pub fn endpoints(families: &[Family]) -> Vec<Endpoint> {
    all()
        .into_iter()
        .filter(|endpoint| families.contains(&endpoint.family))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(method: &str, path: &str) -> Endpoint {
        all()
            .into_iter()
            .find(|e| e.method == method && e.path == path)
            .unwrap_or_else(|| panic!("{method} {path} is declared"))
    }

    #[test]
    fn classes() {
        assert_eq!(declared("POST", "/v1/books").class, RouteClass::Generation);
        assert_eq!(declared("POST", "/v1/credits/add").class, RouteClass::Write);
        assert_eq!(
            declared("DELETE", "/v1/library/{book_id}").class,
            RouteClass::Write
        );
        assert_eq!(
            declared("GET", "/v1/books/{job_id}").class,
            RouteClass::Read
        );
        // A page read aloud on demand may start paid work.
        assert_eq!(
            declared("GET", "/v1/books/{book_id}/pages/{page_number}/audio").class,
            RouteClass::Generation
        );
    }

    #[test]
    fn every_feature_is_given_by_exactly_one_route() {
        for feature in Feature::ALL {
            let givers = all().iter().filter(|e| e.feature == Some(*feature)).count();
            assert_eq!(givers, 1, "{feature:?}");
        }
    }
}
