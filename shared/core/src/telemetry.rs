//! Structured JSON logs. Each request runs in a span carrying its request id, so every line
//! logged while serving it carries the id too. Secrets never reach a field: the types that hold
//! them print `***` (see `domain::credential`, `domain::user`, `domain::api_key`), and as a last
//! line of defence every log line passes through [`mask`], which blanks API keys and URL
//! signatures wherever they appear.

use std::io::Write;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// What follows these (case-insensitively) up to a delimiter is a secret.
const SECRET_MARKERS: &[&str] = &[
    "sbk_live_",
    "sbk_test_",
    "signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
];

/// Blanks every secret in a log line.
pub fn mask(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    while at < line.len() {
        let next = SECRET_MARKERS
            .iter()
            .filter_map(|m| lower[at..].find(m).map(|i| (at + i, m.len())))
            .min();
        let Some((start, length)) = next else {
            out.push_str(&line[at..]);
            break;
        };
        let secret_start = start + length;
        out.push_str(&line[at..secret_start]);
        let secret_end = line[secret_start..]
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '%' | '-' | '_' | '.' | '/' | '+' | '='))
            })
            .map_or(line.len(), |i| secret_start + i);
        if secret_end > secret_start {
            out.push_str("***");
        }
        at = secret_end;
    }
    out
}

/// A writer that masks each line it is given before passing it on.
pub struct Masking<W>(pub W);

impl<W: Write> Write for Masking<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Makes [`Masking`] writers over another writer maker.
pub struct MaskingWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingWriter<M> {
    type Writer = Masking<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Masking(self.0.make_writer())
    }
}

/// Installs the JSON subscriber on standard output once; later calls do nothing.
pub fn init() {
    init_with(std::io::stdout);
}

/// Installs the JSON subscriber writing to `writer` (tests capture their logs this way).
pub fn init_with<W: for<'a> MakeWriter<'a> + Send + Sync + 'static>(writer: W) {
    let lines = tracing_subscriber::fmt::layer()
        .json()
        // Every span a line is in (the request's or the step message's, then a use case's or a
        // provider call's), so a provider's line names its book and step.
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .with_target(false)
        .with_writer(MaskingWriter(writer))
        .with_filter(filter(std::env::var("RUST_LOG").ok().as_deref()));
    let _ = tracing_subscriber::registry().with(lines).try_init();
}

/// `RUST_LOG` as levels per target (`info`, `storybook_pipeline=debug,info`); unset or
/// unreadable, `info`. Targets, not `EnvFilter`'s directives: its span and field filters need a
/// regex engine in every function's package.
fn filter(raw: Option<&str>) -> Targets {
    raw.and_then(|raw| raw.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_names_levels_per_target() {
        use tracing::Level;
        let default = filter(None);
        assert!(default.would_enable("storybook_core", &Level::INFO));
        assert!(!default.would_enable("storybook_core", &Level::DEBUG));
        let chosen = filter(Some("storybook_pipeline=debug,warn"));
        assert!(chosen.would_enable("storybook_pipeline::providers", &Level::DEBUG));
        assert!(!chosen.would_enable("storybook_core", &Level::INFO));
        assert!(filter(Some("not a=filter=")).would_enable("x", &Level::INFO));
    }

    #[test]
    fn secrets_are_blanked_and_the_rest_kept() {
        let key = format!("sbk_live_{}", "A1b2".repeat(10) + "xyz");
        let line = format!(
            r#"{{"message":"got {key} from http://x/y.png?expires=1&signature=abcdef0123&X-Amz-Signature=ff00","n":1}}"#
        );
        let masked = mask(&line);
        assert!(
            !masked.contains(&key) && !masked.contains("abcdef0123") && !masked.contains("ff00"),
            "{masked}"
        );
        assert!(
            masked.contains("sbk_live_***")
                && masked.contains("expires=1")
                && masked.ends_with(r#""n":1}"#),
            "{masked}"
        );
        assert_eq!(mask("nothing to hide"), "nothing to hide");
        assert_eq!(mask("SBK_TEST_abc"), "SBK_TEST_***");
    }
}
