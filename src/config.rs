//! Session configuration: the reference's keys and defaults, plus
//! `acquire_timeout_ms`, validated into typed errors that name the field.
//!
//! A [`SessionConfig`] can be built in Rust (start from
//! [`SessionConfig::default`] or a mode constructor) or parsed from any serde
//! format. Parsing goes through the same [`SessionConfig::validate`], so a
//! config file can never produce a config that Rust code could not.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Largest accepted `pool_size`. A pool holds one MCP session (and one HTTP
/// connection) per slot; ten thousand is far beyond what a single load
/// generator process can drive, so anything larger is a typo.
pub const MAX_POOL_SIZE: usize = 10_000;

/// Largest accepted duration in any `*_ms` key: 30 days. Durations are added
/// to clock instants, so an unbounded value could overflow; a month is longer
/// than any load test.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// The MCP protocol revisions this library speaks, oldest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The protocol revision requested when none is configured.
pub const DEFAULT_PROTOCOL_VERSION: &str = "2025-11-25";

/// The stateless (2026-07-28 and later) revisions this library speaks,
/// oldest first. They have no `initialize`: every request carries its
/// version in `params._meta`.
pub const MODERN_PROTOCOL_VERSIONS: [&str; 1] = ["2026-07-28"];

/// The newest legacy (handshake) revision: a revision after it is modern.
pub const LAST_LEGACY_VERSION: &str = "2025-11-25";

/// Which era of MCP the client speaks to the server.
///
/// The 2026-07-28 revision removed `initialize` and `Mcp-Session-Id`; real
/// servers are legacy-only, dual-era or modern-only. `auto` finds out per
/// manager with the spec's HTTP backward-compatibility rules (a modern
/// `server/discover` first, `initialize` only when the answer is not a
/// modern one) and re-probes when the verdict stops holding.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Probe with a modern request, fall back to `initialize` when the
    /// server does not answer as a modern server.
    #[default]
    Auto,
    /// 2026-07-28 and later only: stateless requests, never `initialize`.
    Modern,
    /// 2025-11-25 and earlier only: `initialize`, `Mcp-Session-Id`, DELETE.
    Legacy,
}

impl Era {
    /// Every era setting, in declaration order.
    pub const ALL: [Era; 3] = [Era::Auto, Era::Modern, Era::Legacy];

    /// The config spelling of the era.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Auto => "auto",
            Era::Modern => "modern",
            Era::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Era {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Era::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownValue {
                field: "era",
                value: s.to_owned(),
                expected: "one of auto, modern, legacy",
            })
    }
}

/// Whether `version` is a stateless-era revision (after 2025-11-25).
/// Revision dates sort as strings.
pub fn is_modern_version(version: &str) -> bool {
    version > LAST_LEGACY_VERSION
}

/// How sessions are handed out to virtual users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One session per VU, kept across operations.
    #[default]
    Reuse,
    /// A new session for every operation, closed on release.
    PerRequest,
    /// Up to `pool_size` sessions shared by all VUs.
    Pool,
    /// Like reuse, but each VU's session is replaced after a number of
    /// operations or an amount of time.
    Churn,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 4] = [Mode::Reuse, Mode::PerRequest, Mode::Pool, Mode::Churn];

    /// The config spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Reuse => "reuse",
            Mode::PerRequest => "per_request",
            Mode::Pool => "pool",
            Mode::Churn => "churn",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownValue {
                field: "mode",
                value: s.to_owned(),
                expected: "one of reuse, per_request, pool, churn",
            })
    }
}

/// How the protocol version answered by the server is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionPolicy {
    /// The answer must equal the requested version.
    #[default]
    Strict,
    /// The answer must be one of [`SUPPORTED_PROTOCOL_VERSIONS`].
    Supported,
    /// Any answer is accepted.
    None,
}

impl VersionPolicy {
    /// Every policy, in declaration order.
    pub const ALL: [VersionPolicy; 3] = [
        VersionPolicy::Strict,
        VersionPolicy::Supported,
        VersionPolicy::None,
    ];

    /// The config spelling of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionPolicy::Strict => "strict",
            VersionPolicy::Supported => "supported",
            VersionPolicy::None => "none",
        }
    }

    /// Whether the server's `answered` version is acceptable after asking for
    /// `requested`.
    pub fn accepts(self, requested: &str, answered: &str) -> bool {
        match self {
            VersionPolicy::Strict => requested == answered,
            // The revision asked for is supported by definition: the user
            // chose it.
            VersionPolicy::Supported => {
                answered == requested || SUPPORTED_PROTOCOL_VERSIONS.contains(&answered)
            }
            VersionPolicy::None => true,
        }
    }
}

impl fmt::Display for VersionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VersionPolicy {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        VersionPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownValue {
                field: "protocol_version_policy",
                value: s.to_owned(),
                expected: "one of strict, supported, none",
            })
    }
}

/// A configuration value that cannot be used. Every variant names the field
/// and shows the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A string key holds a value outside its set.
    #[error("{field}: unknown value {value:?}, expected {expected}")]
    UnknownValue {
        /// The config key.
        field: &'static str,
        /// The value found.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A numeric key is below zero.
    #[error("{field}: {value} is negative")]
    Negative {
        /// The config key.
        field: &'static str,
        /// The value as written in the input (the number in decimal for a
        /// config built in Rust).
        value: String,
    },
    /// A numeric key is above its documented maximum.
    #[error("{field}: {value} is above the maximum of {max}")]
    TooLarge {
        /// The config key.
        field: &'static str,
        /// The value as written in the input (the number in decimal for a
        /// config built in Rust).
        value: String,
        /// The largest value the key accepts.
        max: u64,
    },
    /// An integer key holds a number that is not written as an integer
    /// (`3.0`, `3.5`, `1e3`).
    #[error("{field}: {value} is not an integer")]
    NotInteger {
        /// The config key.
        field: &'static str,
        /// The value as written in the input.
        value: String,
    },
    /// Something other than whitespace follows the config's JSON value.
    #[error(
        "trailing input at line {line} column {column}: only whitespace may follow the config"
    )]
    TrailingInput {
        /// Line of the first trailing character (1-based).
        line: usize,
        /// Column of the first trailing character (1-based).
        column: usize,
    },
    /// A key must be positive in this mode.
    #[error("{field}: must be greater than 0 in {mode} mode (got {value})")]
    MustBePositive {
        /// The config key.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The mode that needs it.
        mode: Mode,
    },
    /// `churn_interval_ms` and `churn_interval_ops` are both non-zero.
    #[error(
        "churn_interval_ms ({ms}) and churn_interval_ops ({ops}) are both set; \
         set exactly one of them (the other to 0)"
    )]
    ChurnBothSet {
        /// `churn_interval_ms` as found.
        ms: u64,
        /// `churn_interval_ops` as found.
        ops: u64,
    },
    /// `protocol_version` is not a `YYYY-MM-DD` date.
    #[error("protocol_version: {value:?} is not a YYYY-MM-DD revision date")]
    BadProtocolVersion {
        /// The value found.
        value: String,
    },
    /// `modern_protocol_versions` cannot be offered: empty while a modern
    /// era may be used, or holding a value that is not a stateless-era
    /// revision this library speaks, or the same value twice.
    #[error("modern_protocol_versions: {why} (got {value:?}; this library speaks {known:?})")]
    BadModernVersions {
        /// The list as found.
        value: Vec<String>,
        /// What is wrong with it.
        why: String,
        /// The modern revisions this library speaks.
        known: Vec<String>,
    },
    /// The input could not be parsed at all (syntax, wrong type, unknown key).
    #[error("{path}: {message}")]
    Parse {
        /// Where in the input (dotted key path, `.` for the top level).
        path: String,
        /// What the parser said.
        message: String,
    },
}

impl ConfigError {
    /// The config key the error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownValue { field, .. }
            | ConfigError::Negative { field, .. }
            | ConfigError::TooLarge { field, .. }
            | ConfigError::MustBePositive { field, .. }
            | ConfigError::NotInteger { field, .. } => Some(field),
            ConfigError::TrailingInput { .. } => None,
            ConfigError::ChurnBothSet { .. } => Some("churn_interval_ms"),
            ConfigError::BadProtocolVersion { .. } => Some("protocol_version"),
            ConfigError::BadModernVersions { .. } => Some("modern_protocol_versions"),
            ConfigError::Parse { path, .. } => Some(path),
        }
    }
}

/// How the session manager behaves. Field names and defaults follow the
/// reference; see `reference/semantics.md`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct SessionConfig {
    /// How sessions are handed out. Default `reuse`.
    pub mode: Mode,
    /// Maximum sessions in the pool (pool mode; 1..=[`MAX_POOL_SIZE`]).
    /// Default 10; ignored by the other modes.
    pub pool_size: usize,
    /// Maximum lifetime of a session from its creation; 0 = none.
    /// Default 900000 (15 minutes).
    pub ttl_ms: u64,
    /// Maximum time a session may sit unused since its last use; 0 = none.
    /// Default 60000.
    pub max_idle_ms: u64,
    /// Churn mode: replace a VU's session once it is this old; 0 = not
    /// set. Default 0. See [`SessionConfig::churn_ops`] for the rule that
    /// joins the two churn intervals.
    pub churn_interval_ms: u64,
    /// Churn mode: replace a VU's session after this many operations;
    /// 0 = not set. Default 0, which with `churn_interval_ms` also 0 means
    /// the reference's default of one operation
    /// ([`SessionConfig::churn_ops`]).
    pub churn_interval_ops: u64,
    /// Which era the client speaks: `auto` (probe, fall back to legacy),
    /// `modern` (2026-07-28 and later only) or `legacy` (`initialize` and
    /// sessions only). Default `auto`.
    pub era: Era,
    /// The stateless-era revisions offered, in any order; the newest is
    /// sent first and an `UnsupportedProtocolVersion` answer (-32022) moves
    /// to the newest one the server also supports. Every entry must be one
    /// of [`MODERN_PROTOCOL_VERSIONS`]. Default `["2026-07-28"]`.
    pub modern_protocol_versions: Vec<String>,
    /// Protocol revision asked for in the legacy era's `initialize`.
    /// Default `2025-11-25`.
    pub protocol_version: String,
    /// How the server's answered revision is checked. Default `strict`.
    pub protocol_version_policy: VersionPolicy,
    /// Pool mode: the longest an acquire waits for a session or a free slot
    /// before failing with a pool timeout. Must be > 0 in pool mode.
    /// Default 30000.
    pub acquire_timeout_ms: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            mode: Mode::Reuse,
            pool_size: 10,
            ttl_ms: 900_000,
            max_idle_ms: 60_000,
            churn_interval_ms: 0,
            churn_interval_ops: 0,
            era: Era::Auto,
            modern_protocol_versions: MODERN_PROTOCOL_VERSIONS.map(str::to_owned).to_vec(),
            protocol_version: DEFAULT_PROTOCOL_VERSION.to_owned(),
            protocol_version_policy: VersionPolicy::Strict,
            acquire_timeout_ms: 30_000,
        }
    }
}

impl SessionConfig {
    /// The default config with `mode` set.
    pub fn with_mode(mode: Mode) -> Self {
        SessionConfig {
            mode,
            ..Self::default()
        }
    }

    /// The default config in pool mode with `pool_size` slots.
    pub fn pool(pool_size: usize) -> Self {
        SessionConfig {
            mode: Mode::Pool,
            pool_size,
            ..Self::default()
        }
    }

    /// Churn mode, a new session every `ms` milliseconds of a session's
    /// age (`churn_interval_ms`; 0 is not set, and churn mode with no
    /// interval set churns after every operation).
    ///
    /// ```
    /// use mcp_session::{Mode, SessionConfig};
    /// let c = SessionConfig::churn_every_ms(100);
    /// assert_eq!(c, SessionConfig { mode: Mode::Churn, churn_interval_ms: 100, ..Default::default() });
    /// assert_eq!(c, SessionConfig::from_json(r#"{"mode": "churn", "churn_interval_ms": 100}"#)?);
    /// assert_eq!(c.churn_ops(), 0); // by time, not by operations
    /// # Ok::<(), mcp_session::ConfigError>(())
    /// ```
    pub fn churn_every_ms(ms: u64) -> Self {
        SessionConfig {
            mode: Mode::Churn,
            churn_interval_ms: ms,
            ..Self::default()
        }
    }

    /// Churn mode, a new session after every `n` operations
    /// (`churn_interval_ops`; 0 is not set, which in churn mode means 1).
    ///
    /// ```
    /// use mcp_session::SessionConfig;
    /// let c = SessionConfig::churn_every_ops(3);
    /// assert_eq!(c, SessionConfig::from_toml("mode = \"churn\"\nchurn_interval_ops = 3")?);
    /// assert_eq!(c.churn_ops(), 3);
    /// # Ok::<(), mcp_session::ConfigError>(())
    /// ```
    pub fn churn_every_ops(n: u64) -> Self {
        SessionConfig {
            mode: Mode::Churn,
            churn_interval_ops: n,
            ..Self::default()
        }
    }

    /// After how many operations churn mode replaces a session: the rule
    /// that joins the two churn intervals, the same for a config built in
    /// Rust, parsed from a file or set by command-line flags (an absent key
    /// is its [`Default`] value, 0, "not set"):
    ///
    /// | `churn_interval_ms` | `churn_interval_ops` | churn mode replaces a session |
    /// |---|---|---|
    /// | 0 | 0 | after every operation (the reference's default of 1): `churn_ops()` is 1 |
    /// | 0 | n | after n operations: `churn_ops()` is n |
    /// | ms | 0 | once it is ms old: `churn_ops()` is 0 |
    /// | ms | n | refused by [`SessionConfig::validate`]: [`ConfigError::ChurnBothSet`] |
    ///
    /// The other modes ignore both keys.
    pub fn churn_ops(&self) -> u64 {
        match (self.churn_interval_ms, self.churn_interval_ops) {
            (0, 0) => 1,
            (_, ops) => ops,
        }
    }

    /// Checks every rule; the first broken one is returned, naming its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Pool {
            if self.pool_size == 0 {
                return Err(ConfigError::MustBePositive {
                    field: "pool_size",
                    value: 0,
                    mode: Mode::Pool,
                });
            }
            if self.acquire_timeout_ms == 0 {
                return Err(ConfigError::MustBePositive {
                    field: "acquire_timeout_ms",
                    value: 0,
                    mode: Mode::Pool,
                });
            }
        }
        if self.pool_size > MAX_POOL_SIZE {
            return Err(ConfigError::TooLarge {
                field: "pool_size",
                value: self.pool_size.to_string(),
                max: MAX_POOL_SIZE as u64,
            });
        }
        for (field, value) in [
            ("ttl_ms", self.ttl_ms),
            ("max_idle_ms", self.max_idle_ms),
            ("churn_interval_ms", self.churn_interval_ms),
            ("acquire_timeout_ms", self.acquire_timeout_ms),
        ] {
            if value > MAX_DURATION_MS {
                return Err(ConfigError::TooLarge {
                    field,
                    value: value.to_string(),
                    max: MAX_DURATION_MS,
                });
            }
        }
        if self.churn_interval_ms > 0 && self.churn_interval_ops > 0 {
            return Err(ConfigError::ChurnBothSet {
                ms: self.churn_interval_ms,
                ops: self.churn_interval_ops,
            });
        }
        if !is_revision_date(&self.protocol_version) {
            return Err(ConfigError::BadProtocolVersion {
                value: self.protocol_version.clone(),
            });
        }
        self.validate_modern_versions()
    }

    fn validate_modern_versions(&self) -> Result<(), ConfigError> {
        let list = &self.modern_protocol_versions;
        let bad = |why: String| ConfigError::BadModernVersions {
            value: list.clone(),
            why,
            known: MODERN_PROTOCOL_VERSIONS.map(str::to_owned).to_vec(),
        };
        if list.is_empty() && self.era != Era::Legacy {
            return Err(bad(format!(
                "empty, but era {} may speak the stateless era",
                self.era
            )));
        }
        for (i, v) in list.iter().enumerate() {
            if !is_revision_date(v) {
                return Err(bad(format!("{v:?} is not a YYYY-MM-DD revision date")));
            }
            if !is_modern_version(v) {
                return Err(bad(format!(
                    "{v:?} is a legacy (initialize) revision; set it as protocol_version"
                )));
            }
            if !MODERN_PROTOCOL_VERSIONS.contains(&v.as_str()) {
                return Err(bad(format!("{v:?} is not a revision this library speaks")));
            }
            if list[..i].contains(v) {
                return Err(bad(format!("{v:?} is listed twice")));
            }
        }
        Ok(())
    }

    /// The modern revision offered first: the newest of
    /// `modern_protocol_versions` (`None` when the list is empty).
    pub fn preferred_modern_version(&self) -> Option<&str> {
        self.modern_protocol_versions
            .iter()
            .map(String::as_str)
            .max()
    }

    /// Parses and validates a JSON config. Missing keys take their defaults;
    /// unknown keys are rejected, and so is anything but whitespace after
    /// the config's JSON value ([`ConfigError::TrailingInput`]). Integer
    /// keys take integers only, and their errors show the number as written.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawConfig<JsonNum> =
            serde_path_to_error::deserialize(&mut de).map_err(parse_error)?;
        de.end().map_err(|e| ConfigError::TrailingInput {
            line: e.line(),
            column: e.column(),
        })?;
        raw.into_config()
    }

    /// Parses and validates a TOML config. Missing keys take their defaults;
    /// unknown keys are rejected. Integer keys take integers only, and their
    /// errors (overflow included) name the key and show the number as
    /// written.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::new(text);
        let raw: RawConfig<TomlNum> =
            serde_path_to_error::deserialize(de).map_err(|e| toml_parse_error(text, e))?;
        raw.map_numbers(|n| n.read(text)).into_config()
    }

    /// `ttl_ms` as a duration, `None` when TTL is off.
    pub fn ttl(&self) -> Option<Duration> {
        nonzero_ms(self.ttl_ms)
    }

    /// `max_idle_ms` as a duration, `None` when idle eviction is off.
    pub fn max_idle(&self) -> Option<Duration> {
        nonzero_ms(self.max_idle_ms)
    }

    /// `churn_interval_ms` as a duration, `None` when churn by time is off.
    pub fn churn_interval(&self) -> Option<Duration> {
        nonzero_ms(self.churn_interval_ms)
    }

    /// `acquire_timeout_ms` as a duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

fn nonzero_ms(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// `YYYY-MM-DD` naming a real calendar day (proleptic Gregorian: the month
/// is 01..=12 and the day exists in that month, 29 February only in leap
/// years).
fn is_revision_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    (1..=days_in_month(year, month)).contains(&day)
}

/// The number of days of `month` (1..=12) in `year`; 0 for any other month.
fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

fn parse_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> ConfigError {
    ConfigError::Parse {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    }
}

/// The integer keys, each with the largest value it accepts.
const INTEGER_KEYS: [(&str, u64); 6] = [
    ("pool_size", MAX_POOL_SIZE as u64),
    ("ttl_ms", MAX_DURATION_MS),
    ("max_idle_ms", MAX_DURATION_MS),
    ("churn_interval_ms", MAX_DURATION_MS),
    ("churn_interval_ops", u64::MAX),
    ("acquire_timeout_ms", MAX_DURATION_MS),
];

/// Every top-level key of a config.
const KEYS: [&str; 11] = [
    "mode",
    "pool_size",
    "ttl_ms",
    "max_idle_ms",
    "churn_interval_ms",
    "churn_interval_ops",
    "era",
    "modern_protocol_versions",
    "protocol_version",
    "protocol_version_policy",
    "acquire_timeout_ms",
];

/// The largest value the integer key `field` accepts.
fn max_of(field: &str) -> u64 {
    INTEGER_KEYS
        .iter()
        .find(|(k, _)| *k == field)
        .map_or(u64::MAX, |&(_, max)| max)
}

/// A TOML error as a config error. The TOML parser refuses some values
/// (integers beyond i64, malformed numbers) before any key is known, so
/// such an error has no path; the key is then read off the line the error
/// points at, and an integer too wide for TOML is reported like any other
/// out-of-range value.
fn toml_parse_error(text: &str, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    // A number is read through `toml::Spanned`, whose private key would
    // otherwise show in the path.
    // (Written as serde_path_to_error writes a path.)
    let mut path = String::new();
    for seg in e.path().iter() {
        let seg_text = seg.to_string();
        if seg_text.starts_with("$__serde_spanned") {
            continue;
        }
        if !path.is_empty() && !matches!(seg, serde_path_to_error::Segment::Seq { .. }) {
            path.push('.');
        }
        path.push_str(&seg_text);
    }
    if path.is_empty() {
        path.push('.');
    }
    let inner = e.into_inner();
    let message = inner.message().trim_end().to_owned();
    if path != "." {
        return ConfigError::Parse { path, message };
    }
    let located = inner.span().and_then(|span| {
        let start = span.start.min(text.len());
        let line_start = text.get(..start)?.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text
            .get(start..)?
            .find('\n')
            .map_or(text.len(), |i| start + i);
        let line = text.get(line_start..line_end)?;
        let (key, value) = line.split_once('=')?;
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        let field = KEYS.into_iter().find(|k| *k == key)?;
        let value = value.split('#').next().unwrap_or("").trim();
        Some((field, value))
    });
    let Some((field, value)) = located else {
        return ConfigError::Parse { path, message };
    };
    if INTEGER_KEYS.iter().any(|(k, _)| *k == field) && is_toml_integer(value) {
        return if value.starts_with('-') {
            ConfigError::Negative {
                field,
                value: value.to_owned(),
            }
        } else {
            ConfigError::TooLarge {
                field,
                value: value.to_owned(),
                max: max_of(field),
            }
        };
    }
    ConfigError::Parse {
        path: field.to_owned(),
        message,
    }
}

/// Whether `s` is written as a TOML integer (decimal with an optional sign,
/// or `0x`/`0o`/`0b`), whatever its size.
fn is_toml_integer(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (digits, radix) = match body.get(..2) {
        Some("0x") => (&body[2..], 16),
        Some("0o") => (&body[2..], 8),
        Some("0b") => (&body[2..], 2),
        _ => (body, 10),
    };
    (radix == 10 || body.len() == s.len())
        && !digits.is_empty()
        && digits.chars().all(|c| c == '_' || c.is_digit(radix))
        && digits.chars().any(|c| c.is_digit(radix))
}

/// The config as written: strings for the enums and numbers as the input
/// wrote them (`N`), so that a bad value reaches validation (and is reported
/// with its field and its text) instead of failing inside the parser.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "N: Deserialize<'de>"))]
struct RawConfig<N = Int> {
    mode: Option<String>,
    pool_size: Option<N>,
    ttl_ms: Option<N>,
    max_idle_ms: Option<N>,
    churn_interval_ms: Option<N>,
    churn_interval_ops: Option<N>,
    era: Option<String>,
    modern_protocol_versions: Option<Vec<String>>,
    protocol_version: Option<String>,
    protocol_version_policy: Option<String>,
    acquire_timeout_ms: Option<N>,
}

/// A number as the input wrote it, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Num {
    /// An integer within i128, and its text.
    Int(i128, String),
    /// An integer beyond i128 (`negative` gives its sign), and its text.
    Huge { negative: bool, text: String },
    /// A number not written as an integer (`3.0`, `1e3`), as written.
    NotInt(String),
    /// Not a number at all: what is wrong with it.
    Invalid(String),
}

/// A numeric field as one input format delivers it.
trait Number {
    /// The value classified, with its text.
    fn into_num(self) -> Num;
}

impl Number for Num {
    fn into_num(self) -> Num {
        self
    }
}

/// A number from any serde format (plain `Deserialize` of a
/// [`SessionConfig`]). Its text is the number printed back, since a generic
/// deserializer does not give the original.
struct Int(Num);

impl Number for Int {
    fn into_num(self) -> Num {
        self.0
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Int, E> {
                Ok(Int(Num::Int(v.into(), v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
                Ok(Int(Num::Int(v.into(), v.to_string())))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Int, E> {
                Ok(Int(Num::Int(v, v.to_string())))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Int, E> {
                Ok(Int(match i128::try_from(v) {
                    Ok(i) => Num::Int(i, v.to_string()),
                    Err(_) => Num::Huge {
                        negative: false,
                        text: v.to_string(),
                    },
                }))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Int, E> {
                // serde_json hands integers beyond u64 over as floats: a
                // whole float that no i64/u64 holds was most likely one.
                Ok(Int(
                    if v.is_finite() && v.fract() == 0.0 && v.abs() >= 9.2e18 {
                        Num::Huge {
                            negative: v < 0.0,
                            text: v.to_string(),
                        }
                    } else {
                        Num::NotInt(format!("{v:?}"))
                    },
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON number kept as the exact text of the input.
struct JsonNum(Box<serde_json::value::RawValue>);

impl<'de> Deserialize<'de> for JsonNum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(JsonNum)
    }
}

impl Number for JsonNum {
    fn into_num(self) -> Num {
        let text = self.0.get().trim();
        match text.as_bytes().first() {
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                if text.contains(['.', 'e', 'E']) {
                    Num::NotInt(text.to_owned())
                } else {
                    match text.parse::<i128>() {
                        Ok(v) => Num::Int(v, text.to_owned()),
                        Err(_) => Num::Huge {
                            negative: text.starts_with('-'),
                            text: text.to_owned(),
                        },
                    }
                }
            }
            first => {
                let kind = match first {
                    Some(b'"') => format!("string {text}"),
                    Some(b't' | b'f') => format!("boolean `{text}`"),
                    Some(b'[') => "sequence".to_owned(),
                    Some(b'{') => "map".to_owned(),
                    _ => text.to_owned(),
                };
                Num::Invalid(format!("invalid type: {kind}, expected an integer"))
            }
        }
    }
}

/// A TOML number with where it is in the input, read back as written.
struct TomlNum(toml::Spanned<TomlScalar>);

/// A TOML integer or float.
enum TomlScalar {
    Int(i64),
    Float,
}

impl<'de> Deserialize<'de> for TomlScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TomlScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<TomlScalar, E> {
                Ok(TomlScalar::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TomlScalar, E> {
                i64::try_from(v)
                    .map(TomlScalar::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<TomlScalar, E> {
                Ok(TomlScalar::Float)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for TomlNum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        toml::Spanned::<TomlScalar>::deserialize(d).map(TomlNum)
    }
}

impl TomlNum {
    /// The number classified, its text taken from `source` (the whole
    /// document it was parsed from).
    fn read(self, source: &str) -> Num {
        let text = source.get(self.0.span()).unwrap_or("").trim().to_owned();
        match *self.0.get_ref() {
            TomlScalar::Int(v) => Num::Int(v.into(), text),
            TomlScalar::Float => Num::NotInt(text),
        }
    }
}

impl<N> RawConfig<N> {
    /// The same config with every number converted by `f`.
    fn map_numbers<M>(self, f: impl Fn(N) -> M) -> RawConfig<M> {
        RawConfig {
            mode: self.mode,
            pool_size: self.pool_size.map(&f),
            ttl_ms: self.ttl_ms.map(&f),
            max_idle_ms: self.max_idle_ms.map(&f),
            churn_interval_ms: self.churn_interval_ms.map(&f),
            churn_interval_ops: self.churn_interval_ops.map(&f),
            era: self.era,
            modern_protocol_versions: self.modern_protocol_versions,
            protocol_version: self.protocol_version,
            protocol_version_policy: self.protocol_version_policy,
            acquire_timeout_ms: self.acquire_timeout_ms.map(&f),
        }
    }
}

/// An integer key's value: its default when absent, otherwise a whole
/// number from 0 to the key's maximum; errors show the value as written.
fn unsigned<N: Number>(
    field: &'static str,
    v: Option<N>,
    default: u64,
) -> Result<u64, ConfigError> {
    let max = max_of(field);
    match v.map(Number::into_num) {
        None => Ok(default),
        Some(Num::Int(v, text)) if v < 0 => Err(ConfigError::Negative { field, value: text }),
        Some(Num::Int(v, text)) => {
            u64::try_from(v)
                .ok()
                .filter(|&v| v <= max)
                .ok_or(ConfigError::TooLarge {
                    field,
                    value: text,
                    max,
                })
        }
        Some(Num::Huge {
            negative: true,
            text,
        }) => Err(ConfigError::Negative { field, value: text }),
        Some(Num::Huge { text, .. }) => Err(ConfigError::TooLarge {
            field,
            value: text,
            max,
        }),
        Some(Num::NotInt(text)) => Err(ConfigError::NotInteger { field, value: text }),
        Some(Num::Invalid(message)) => Err(ConfigError::Parse {
            path: field.to_owned(),
            message,
        }),
    }
}

impl TryFrom<RawConfig> for SessionConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        raw.into_config()
    }
}

impl<N: Number> RawConfig<N> {
    /// Converts every value and validates the result.
    fn into_config(self) -> Result<SessionConfig, ConfigError> {
        let raw = self;
        let d = SessionConfig::default();
        // An absent key is the struct's default, for every key: a file
        // means what the same config built in Rust means.
        let pool_size = unsigned("pool_size", raw.pool_size, d.pool_size as u64)?;
        let cfg = SessionConfig {
            mode: match raw.mode {
                Some(s) => s.parse()?,
                None => d.mode,
            },
            pool_size: usize::try_from(pool_size).unwrap_or(usize::MAX),
            ttl_ms: unsigned("ttl_ms", raw.ttl_ms, d.ttl_ms)?,
            max_idle_ms: unsigned("max_idle_ms", raw.max_idle_ms, d.max_idle_ms)?,
            churn_interval_ms: unsigned(
                "churn_interval_ms",
                raw.churn_interval_ms,
                d.churn_interval_ms,
            )?,
            churn_interval_ops: unsigned(
                "churn_interval_ops",
                raw.churn_interval_ops,
                d.churn_interval_ops,
            )?,
            era: match raw.era {
                Some(s) => s.parse()?,
                None => d.era,
            },
            modern_protocol_versions: raw
                .modern_protocol_versions
                .unwrap_or(d.modern_protocol_versions),
            protocol_version: raw.protocol_version.unwrap_or(d.protocol_version),
            protocol_version_policy: match raw.protocol_version_policy {
                Some(s) => s.parse()?,
                None => d.protocol_version_policy,
            },
            acquire_timeout_ms: unsigned(
                "acquire_timeout_ms",
                raw.acquire_timeout_ms,
                d.acquire_timeout_ms,
            )?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_err(text: &str) -> ConfigError {
        SessionConfig::from_json(text).expect_err(text)
    }

    #[test]
    fn defaults_match_the_reference() {
        let c = SessionConfig::default();
        assert_eq!(c.mode, Mode::Reuse);
        assert_eq!(c.ttl_ms, 900_000);
        assert_eq!(c.max_idle_ms, 60_000);
        // Not set (0), and in churn mode the reference's one operation.
        assert_eq!((c.churn_interval_ms, c.churn_interval_ops), (0, 0));
        assert_eq!(SessionConfig::with_mode(Mode::Churn).churn_ops(), 1);
        assert_eq!(c.protocol_version, "2025-11-25");
        assert_eq!(c.protocol_version_policy, VersionPolicy::Strict);
        assert_eq!(SessionConfig::from_json("{}").unwrap(), c);
        assert_eq!(SessionConfig::from_toml("").unwrap(), c);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_mode_is_named() {
        let e = json_err(r#"{"mode":"pooled"}"#);
        assert_eq!(e.field(), Some("mode"));
        assert!(e.to_string().contains("\"pooled\""), "{e}");
    }

    #[test]
    fn pool_size_zero_and_too_large_are_rejected() {
        let e = json_err(r#"{"mode":"pool","pool_size":0}"#);
        assert!(
            matches!(
                e,
                ConfigError::MustBePositive {
                    field: "pool_size",
                    ..
                }
            ),
            "{e}"
        );
        let e = json_err(r#"{"mode":"pool","pool_size":10001}"#);
        assert!(
            matches!(
                e,
                ConfigError::TooLarge {
                    field: "pool_size",
                    ref value,
                    max: 10_000,
                } if value == "10001"
            ),
            "{e}"
        );
        SessionConfig::from_json(r#"{"mode":"pool","pool_size":10000}"#).unwrap();
    }

    #[test]
    fn negative_and_overflowing_durations_are_rejected() {
        for key in [
            "ttl_ms",
            "max_idle_ms",
            "churn_interval_ms",
            "acquire_timeout_ms",
        ] {
            let e = json_err(&format!(r#"{{"{key}":-5}}"#));
            assert_eq!(
                e,
                ConfigError::Negative {
                    field: leak(key),
                    value: "-5".into()
                }
            );
            let e = json_err(&format!(r#"{{"{key}":18446744073709551616}}"#));
            assert_eq!(e.field(), Some(key), "{e}");
            let e = json_err(&format!(r#"{{"{key}":{}}}"#, MAX_DURATION_MS + 1));
            assert!(matches!(e, ConfigError::TooLarge { .. }), "{e}");
        }
        let e = SessionConfig::from_toml("ttl_ms = -1").unwrap_err();
        assert_eq!(
            e,
            ConfigError::Negative {
                field: "ttl_ms",
                value: "-1".into()
            }
        );
    }

    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_owned().into_boxed_str())
    }

    #[test]
    fn churn_intervals_exclusive() {
        let e = json_err(r#"{"mode":"churn","churn_interval_ms":100,"churn_interval_ops":3}"#);
        assert_eq!(e, ConfigError::ChurnBothSet { ms: 100, ops: 3 });
        let c = SessionConfig::from_json(r#"{"mode":"churn","churn_interval_ms":100}"#).unwrap();
        assert_eq!((c.churn_interval_ms, c.churn_interval_ops), (100, 0));
        // 0 is "not set": churn mode with nothing set churns every operation.
        let c = SessionConfig::from_json(r#"{"mode":"churn","churn_interval_ops":0}"#).unwrap();
        assert_eq!(c, SessionConfig::with_mode(Mode::Churn));
        assert_eq!(c.churn_ops(), 1);
    }

    /// The issue's example: a struct literal that sets only the time
    /// interval means churn by time, as the same config from a file does.
    #[test]
    fn churn_by_time_from_a_struct_literal_is_accepted() {
        let c = SessionConfig {
            mode: Mode::Churn,
            churn_interval_ms: 100,
            ..Default::default()
        };
        c.validate().unwrap();
        assert_eq!(c.churn_ops(), 0);
        assert_eq!(c.churn_interval(), Some(Duration::from_millis(100)));
        assert_eq!(c, SessionConfig::churn_every_ms(100));
        let json = r#"{"mode":"churn","churn_interval_ms":100}"#;
        assert_eq!(SessionConfig::from_json(json).unwrap(), c);
        let toml = "mode = \"churn\"\nchurn_interval_ms = 100";
        assert_eq!(SessionConfig::from_toml(toml).unwrap(), c);
        assert_eq!(serde_json::from_str::<SessionConfig>(json).unwrap(), c);
    }

    /// Every combination of the two churn keys (absent, 0, set) in churn
    /// and reuse mode: the struct built in Rust (an absent key left at its
    /// default), the JSON, the TOML and plain serde agree — the same config
    /// or the same error — and the config means what
    /// [`SessionConfig::churn_ops`] documents.
    #[test]
    fn struct_json_and_toml_agree_on_every_churn_combination() {
        let values = [None, Some(0), Some(1), Some(3), Some(100)];
        for mode in [Mode::Churn, Mode::Reuse] {
            for ms in values {
                for ops in values {
                    let d = SessionConfig::default();
                    let built = SessionConfig {
                        mode,
                        churn_interval_ms: ms.unwrap_or(d.churn_interval_ms),
                        churn_interval_ops: ops.unwrap_or(d.churn_interval_ops),
                        ..d
                    };
                    let built = built.validate().map(|()| built);
                    let mut json = vec![format!(r#""mode":"{mode}""#)];
                    let mut toml = vec![format!("mode = \"{mode}\"")];
                    for (key, v) in [("churn_interval_ms", ms), ("churn_interval_ops", ops)] {
                        if let Some(v) = v {
                            json.push(format!(r#""{key}":{v}"#));
                            toml.push(format!("{key} = {v}"));
                        }
                    }
                    let json = format!("{{{}}}", json.join(","));
                    let case = format!("{mode} ms={ms:?} ops={ops:?}");
                    assert_eq!(SessionConfig::from_json(&json), built, "{case}");
                    assert_eq!(SessionConfig::from_toml(&toml.join("\n")), built, "{case}");
                    let serde = serde_json::from_str::<SessionConfig>(&json);
                    assert_eq!(serde.ok(), built.clone().ok(), "{case}");
                    let (ms, ops) = (ms.unwrap_or(0), ops.unwrap_or(0));
                    match built {
                        Err(e) => {
                            assert!(ms > 0 && ops > 0, "{case}: {e}");
                            assert_eq!(e, ConfigError::ChurnBothSet { ms, ops }, "{case}");
                        }
                        Ok(c) if ms > 0 => {
                            assert_eq!(c.churn_ops(), 0, "{case}");
                            assert_eq!(c.churn_interval(), Some(Duration::from_millis(ms)));
                        }
                        Ok(c) => {
                            assert_eq!(c.churn_ops(), ops.max(1), "{case}");
                            assert_eq!(c.churn_interval(), None, "{case}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn churn_constructors_read_as_the_struct_they_build() {
        assert_eq!(
            SessionConfig::churn_every_ops(3),
            SessionConfig {
                mode: Mode::Churn,
                churn_interval_ops: 3,
                ..SessionConfig::default()
            }
        );
        assert_eq!(SessionConfig::churn_every_ops(3).churn_ops(), 3);
        assert_eq!(SessionConfig::churn_every_ms(250).churn_ops(), 0);
        SessionConfig::churn_every_ops(3).validate().unwrap();
        SessionConfig::churn_every_ms(250).validate().unwrap();
        // Both set: refused, from a struct as from a file.
        let both = SessionConfig {
            churn_interval_ops: 2,
            ..SessionConfig::churn_every_ms(250)
        };
        assert_eq!(
            both.validate(),
            Err(ConfigError::ChurnBothSet { ms: 250, ops: 2 })
        );
    }

    #[test]
    fn unknown_policy_and_bad_version_are_named() {
        let e = json_err(r#"{"protocol_version_policy":"lenient"}"#);
        assert_eq!(e.field(), Some("protocol_version_policy"));
        for v in [
            "2025-1-25",
            "latest",
            "2025-13-01",
            "2025-11-32",
            "2025/11/25",
            "",
        ] {
            let e = json_err(&format!(r#"{{"protocol_version":"{v}"}}"#));
            assert_eq!(e, ConfigError::BadProtocolVersion { value: v.into() });
        }
    }

    #[test]
    fn protocol_version_must_be_a_real_calendar_date() {
        for v in [
            "2025-02-30",
            "2025-02-29",
            "2100-02-29",
            "2025-04-31",
            "2025-06-31",
            "2025-00-10",
            "2025-11-00",
        ] {
            let e = json_err(&format!(r#"{{"protocol_version":"{v}"}}"#));
            assert_eq!(e, ConfigError::BadProtocolVersion { value: v.into() });
            let e = json_err(&format!(
                r#"{{"era":"legacy","modern_protocol_versions":["{v}"]}}"#
            ));
            assert_eq!(e.field(), Some("modern_protocol_versions"), "{e}");
            assert!(e.to_string().contains("not a YYYY-MM-DD"), "{e}");
        }
        for v in [
            "2024-02-29",
            "2000-02-29",
            "2025-01-31",
            "2025-12-31",
            "2025-04-30",
        ] {
            SessionConfig::from_json(&format!(r#"{{"protocol_version":"{v}"}}"#)).unwrap();
        }
    }

    #[test]
    fn json_trailing_input_is_refused() {
        let e = json_err(r#"{"mode":"pool"}{"mode":"reuse"}"#);
        assert_eq!(
            e,
            ConfigError::TrailingInput {
                line: 1,
                column: 16
            }
        );
        assert!(e.to_string().contains("trailing input"), "{e}");
        for text in [r#"{"mode":"pool"} x"#, "{} 1", "{}\n{}", "{}]"] {
            assert!(
                matches!(json_err(text), ConfigError::TrailingInput { .. }),
                "{text}"
            );
        }
        let c = SessionConfig::from_json(" {\"mode\":\"pool\"} \n\t ").unwrap();
        assert_eq!(c.mode, Mode::Pool);
    }

    #[test]
    fn integer_fields_refuse_floats_showing_the_value_as_written() {
        for key in [
            "pool_size",
            "ttl_ms",
            "max_idle_ms",
            "churn_interval_ms",
            "churn_interval_ops",
            "acquire_timeout_ms",
        ] {
            for v in ["3.0", "3.5", "1e3", "1E3", "-2.0", "0.0"] {
                let e = json_err(&format!(r#"{{"{key}":{v}}}"#));
                assert_eq!(
                    e,
                    ConfigError::NotInteger {
                        field: leak(key),
                        value: v.into()
                    }
                );
                assert!(
                    e.to_string().contains(key) && e.to_string().contains(v),
                    "{e}"
                );
                let e = SessionConfig::from_toml(&format!("{key} = {v}")).unwrap_err();
                assert_eq!(
                    e,
                    ConfigError::NotInteger {
                        field: leak(key),
                        value: v.into()
                    }
                );
            }
        }
        // Plain serde refuses floats too.
        let e = serde_json::from_str::<SessionConfig>(r#"{"ttl_ms":3.0}"#).unwrap_err();
        assert!(e.to_string().contains("not an integer"), "{e}");
    }

    #[test]
    fn overflow_shows_the_value_as_written_and_the_real_maximum() {
        let e = json_err(r#"{"pool_size":18446744073709551616}"#);
        assert_eq!(
            e,
            ConfigError::TooLarge {
                field: "pool_size",
                value: "18446744073709551616".into(),
                max: MAX_POOL_SIZE as u64
            }
        );
        assert_eq!(
            e.to_string(),
            "pool_size: 18446744073709551616 is above the maximum of 10000"
        );
        let huge = "9".repeat(60);
        let e = json_err(&format!(r#"{{"ttl_ms":{huge}}}"#));
        assert_eq!(
            e,
            ConfigError::TooLarge {
                field: "ttl_ms",
                value: huge.clone(),
                max: MAX_DURATION_MS
            }
        );
        let e = json_err(&format!(r#"{{"ttl_ms":-{huge}}}"#));
        assert_eq!(
            e,
            ConfigError::Negative {
                field: "ttl_ms",
                value: format!("-{huge}")
            }
        );
        let e = json_err(r#"{"ttl_ms":1e308}"#);
        assert_eq!(
            e,
            ConfigError::NotInteger {
                field: "ttl_ms",
                value: "1e308".into()
            }
        );
        let e = json_err(r#"{"churn_interval_ops":18446744073709551616}"#);
        assert_eq!(
            e,
            ConfigError::TooLarge {
                field: "churn_interval_ops",
                value: "18446744073709551616".into(),
                max: u64::MAX
            }
        );
        let e = SessionConfig::from_toml("pool_size = 20_000").unwrap_err();
        assert_eq!(
            e,
            ConfigError::TooLarge {
                field: "pool_size",
                value: "20_000".into(),
                max: MAX_POOL_SIZE as u64
            }
        );
    }

    #[test]
    fn toml_errors_name_the_field() {
        let e = SessionConfig::from_toml("mode = \"pool\"\npool_size = 18446744073709551616\n")
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::TooLarge {
                field: "pool_size",
                value: "18446744073709551616".into(),
                max: MAX_POOL_SIZE as u64
            }
        );
        let e = SessionConfig::from_toml("ttl_ms = -99999999999999999999 # comment").unwrap_err();
        assert_eq!(
            e,
            ConfigError::Negative {
                field: "ttl_ms",
                value: "-99999999999999999999".into()
            }
        );
        let e = SessionConfig::from_toml("max_idle_ms = 0xFFFFFFFFFFFFFFFFFF").unwrap_err();
        assert_eq!(e.field(), Some("max_idle_ms"), "{e}");
        assert!(e.to_string().contains("0xFFFFFFFFFFFFFFFFFF"), "{e}");
        let e = SessionConfig::from_toml("pool_size = \"ten\"").unwrap_err();
        assert_eq!(e.field(), Some("pool_size"), "{e}");
        let e =
            SessionConfig::from_toml("modern_protocol_versions = [\"2026-07-28\", 3]").unwrap_err();
        assert_eq!(e.field(), Some("modern_protocol_versions[1]"), "{e}");
        let e = SessionConfig::from_toml("pool_size = 1__0").unwrap_err();
        assert_eq!(e.field(), Some("pool_size"), "{e}");
    }

    #[test]
    fn numbers_as_written_are_kept_for_valid_configs() {
        let c =
            SessionConfig::from_toml("pool_size = 1_0\nttl_ms = 0x10\nmax_idle_ms = +5").unwrap();
        assert_eq!((c.pool_size, c.ttl_ms, c.max_idle_ms), (10, 16, 5));
        let c = SessionConfig::from_json(r#"{"pool_size":-0,"ttl_ms":null}"#).unwrap();
        assert_eq!((c.pool_size, c.ttl_ms), (0, 900_000));
    }

    #[test]
    fn acquire_timeout_zero_rejected_in_pool_mode_only() {
        let e = json_err(r#"{"mode":"pool","acquire_timeout_ms":0}"#);
        assert!(
            matches!(
                e,
                ConfigError::MustBePositive {
                    field: "acquire_timeout_ms",
                    ..
                }
            ),
            "{e}"
        );
        SessionConfig::from_json(r#"{"mode":"reuse","acquire_timeout_ms":0}"#).unwrap();
    }

    #[test]
    fn syntax_type_and_unknown_key_errors_carry_a_path() {
        let e = json_err(r#"{"pool_size":"ten"}"#);
        assert_eq!(e.field(), Some("pool_size"), "{e}");
        let e = json_err(r#"{"pool_sise":3}"#);
        assert!(e.to_string().contains("pool_sise"), "{e}");
        let e = json_err("{");
        assert!(matches!(e, ConfigError::Parse { .. }));
    }

    #[test]
    fn toml_round_trip_and_serde_validation() {
        let c = SessionConfig::from_toml(
            "mode = \"pool\"\npool_size = 4\nacquire_timeout_ms = 250\nprotocol_version_policy = \"supported\"",
        )
        .unwrap();
        assert_eq!(c.pool_size, 4);
        let back = serde_json::to_string(&c).unwrap();
        assert_eq!(SessionConfig::from_json(&back).unwrap(), c);
        // Plain serde (without the helpers) validates too.
        let e = serde_json::from_str::<SessionConfig>(r#"{"mode":"pool","pool_size":0}"#);
        assert!(e.unwrap_err().to_string().contains("pool_size"));
    }

    #[test]
    fn era_and_modern_versions() {
        let c = SessionConfig::default();
        assert_eq!(c.era, Era::Auto);
        assert_eq!(c.modern_protocol_versions, ["2026-07-28"]);
        assert_eq!(c.preferred_modern_version(), Some("2026-07-28"));
        let c = SessionConfig::from_json(r#"{"era":"modern"}"#).unwrap();
        assert_eq!(c.era, Era::Modern);
        let c =
            SessionConfig::from_toml("era = \"legacy\"\nmodern_protocol_versions = []").unwrap();
        assert_eq!((c.era, c.modern_protocol_versions.len()), (Era::Legacy, 0));
        let e = json_err(r#"{"era":"stateless"}"#);
        assert_eq!(e.field(), Some("era"));
        assert!(e.to_string().contains("\"stateless\""), "{e}");
        for (list, why) in [
            (r#"[]"#, "empty"),
            (r#"["2026-7-28"]"#, "not a YYYY-MM-DD"),
            (r#"["2025-11-25"]"#, "legacy"),
            (r#"["2027-01-01"]"#, "not a revision this library speaks"),
            (r#"["2026-07-28","2026-07-28"]"#, "twice"),
        ] {
            let e = json_err(&format!(r#"{{"modern_protocol_versions":{list}}}"#));
            assert_eq!(e.field(), Some("modern_protocol_versions"), "{e}");
            assert!(e.to_string().contains(why), "{list}: {e}");
        }
        let e = json_err(r#"{"modern_protocol_versions":"2026-07-28"}"#);
        assert_eq!(e.field(), Some("modern_protocol_versions"), "{e}");
        assert!(is_modern_version("2026-07-28"));
        assert!(!is_modern_version("2025-11-25"));
    }

    #[test]
    fn version_policies() {
        assert!(VersionPolicy::Strict.accepts("2025-11-25", "2025-11-25"));
        assert!(!VersionPolicy::Strict.accepts("2025-11-25", "2025-06-18"));
        assert!(VersionPolicy::Supported.accepts("2025-11-25", "2025-06-18"));
        assert!(!VersionPolicy::Supported.accepts("2025-11-25", "2023-01-01"));
        // The revision asked for is accepted when the server agrees, even
        // one this client does not list.
        assert!(VersionPolicy::Supported.accepts("2024-01-01", "2024-01-01"));
        assert!(VersionPolicy::None.accepts("2025-11-25", "whatever"));
    }
}

/// No input makes the parsers panic: arbitrary strings, and JSON-ish and
/// TOML-ish text built from the config's own keys and awkward numbers.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Numbers and near-numbers: floats, overflow, signs, TOML radixes.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            "[-+]?[0-9_]{0,25}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{1,4})?",
            "[-+]?0[xob][0-9a-fA-F_]{0,20}",
            Just("1e308".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("-9223372036854775809".to_owned()),
            Just("nan".to_owned()),
            Just("inf".to_owned()),
        ]
    }

    /// A value of any kind a config key might be given.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            number(),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("\"pool\"".to_owned()),
            Just("\"2025-02-29\"".to_owned()),
            Just("[\"2026-07-28\"]".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            "\"[ -~]{0,12}\"",
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
            "[a-z_$.]{0,12}",
        ]
    }

    /// Token soup: JSON and TOML punctuation, keys and values in any order.
    fn soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            prop::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "=", "\n", " ", "#", "\"", "'", "."
            ])
            .prop_map(str::to_owned),
            key().prop_map(|k| format!("\"{k}\"")),
            key(),
            value(),
        ];
        prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
    }

    fn entries() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec((key(), value()), 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            let _ = SessionConfig::from_json(&text);
            let _ = SessionConfig::from_toml(&text);
        }

        #[test]
        fn json_and_toml_ish_soup_never_panics(text in soup()) {
            let _ = SessionConfig::from_json(&text);
            let _ = SessionConfig::from_toml(&text);
        }

        #[test]
        fn well_formed_documents_never_panic(
            entries in entries(),
            tail in prop::sample::select(vec!["", " ", "\n", "{}", "x", "]"]),
        ) {
            let json = entries
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(",");
            let _ = SessionConfig::from_json(&format!("{{{json}}}{tail}"));
            let toml = entries
                .iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect::<String>();
            let _ = SessionConfig::from_toml(&format!("{toml}{tail}"));
        }
    }
}
