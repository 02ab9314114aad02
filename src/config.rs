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
            VersionPolicy::Supported => SUPPORTED_PROTOCOL_VERSIONS.contains(&answered),
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
        /// The value found.
        value: i128,
    },
    /// A numeric key is above its documented maximum.
    #[error("{field}: {value} is above the maximum of {max}")]
    TooLarge {
        /// The config key.
        field: &'static str,
        /// The value found.
        value: u128,
        /// The largest accepted value.
        max: u64,
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
    /// Churn mode with neither interval set would never churn.
    #[error("churn_interval_ms and churn_interval_ops are both 0 in churn mode; set one of them")]
    ChurnNeitherSet,
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
            | ConfigError::MustBePositive { field, .. } => Some(field),
            ConfigError::ChurnBothSet { .. } | ConfigError::ChurnNeitherSet => {
                Some("churn_interval_ms")
            }
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
    /// Churn mode: replace a VU's session once it is this old; 0 = off.
    /// Default 0.
    pub churn_interval_ms: u64,
    /// Churn mode: replace a VU's session after this many operations;
    /// 0 = off. Default 1 (when `churn_interval_ms` is not set).
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
            churn_interval_ops: 1,
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
                value: self.pool_size as u128,
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
                    value: value.into(),
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
        if self.mode == Mode::Churn && self.churn_interval_ms == 0 && self.churn_interval_ops == 0 {
            return Err(ConfigError::ChurnNeitherSet);
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
    /// unknown keys are rejected.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        parse_raw(serde_path_to_error::deserialize(de))
    }

    /// Parses and validates a TOML config. Missing keys take their defaults;
    /// unknown keys are rejected.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::new(text);
        parse_raw(serde_path_to_error::deserialize(de))
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

fn parse_raw<E: fmt::Display>(
    raw: Result<RawConfig, serde_path_to_error::Error<E>>,
) -> Result<SessionConfig, ConfigError> {
    let raw = raw.map_err(|e| ConfigError::Parse {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    SessionConfig::try_from(raw)
}

/// The config as written: strings for the enums and wide signed integers for
/// the numbers, so that a bad value reaches validation (and is reported with
/// its field) instead of failing inside the parser.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Option<String>,
    pool_size: Option<Int>,
    ttl_ms: Option<Int>,
    max_idle_ms: Option<Int>,
    churn_interval_ms: Option<Int>,
    churn_interval_ops: Option<Int>,
    era: Option<String>,
    modern_protocol_versions: Option<Vec<String>>,
    protocol_version: Option<String>,
    protocol_version_policy: Option<String>,
    acquire_timeout_ms: Option<Int>,
}

/// An integer of any width the input format has (TOML's are i64, JSON's up
/// to u64, and serde_json hands larger ones over as floats), widened to
/// i128 so range checks happen in validation, where they can name the field.
struct Int(i128);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Int, E> {
                Ok(Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Int, E> {
                Ok(Int(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Int, E> {
                if v.is_finite() && v.fract() == 0.0 {
                    // `as` saturates for values beyond i128.
                    Ok(Int(v as i128))
                } else {
                    Err(E::custom(format!("{v} is not a whole number")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn unsigned(field: &'static str, v: Option<Int>, default: u64) -> Result<u64, ConfigError> {
    match v.map(|i| i.0) {
        None => Ok(default),
        Some(v) if v < 0 => Err(ConfigError::Negative { field, value: v }),
        Some(v) => u64::try_from(v).map_err(|_| ConfigError::TooLarge {
            field,
            value: v as u128,
            max: u64::MAX,
        }),
    }
}

impl TryFrom<RawConfig> for SessionConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let d = SessionConfig::default();
        let churn_interval_ms = unsigned("churn_interval_ms", raw.churn_interval_ms, 0)?;
        // The reference's default of one operation applies only when churn by
        // time was not asked for; otherwise setting `churn_interval_ms` alone
        // would always collide with the default.
        let ops_default = if churn_interval_ms > 0 {
            0
        } else {
            d.churn_interval_ops
        };
        let pool_size = unsigned("pool_size", raw.pool_size, d.pool_size as u64)?;
        let cfg = SessionConfig {
            mode: match raw.mode {
                Some(s) => s.parse()?,
                None => d.mode,
            },
            pool_size: usize::try_from(pool_size).unwrap_or(usize::MAX),
            ttl_ms: unsigned("ttl_ms", raw.ttl_ms, d.ttl_ms)?,
            max_idle_ms: unsigned("max_idle_ms", raw.max_idle_ms, d.max_idle_ms)?,
            churn_interval_ms,
            churn_interval_ops: unsigned(
                "churn_interval_ops",
                raw.churn_interval_ops,
                ops_default,
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
        assert_eq!(c.churn_interval_ops, 1);
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
                    value: 10001,
                    ..
                }
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
                    value: -5
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
                value: -1
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
        let e = json_err(r#"{"mode":"churn","churn_interval_ops":0}"#);
        assert_eq!(e, ConfigError::ChurnNeitherSet);
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
        assert!(VersionPolicy::None.accepts("2025-11-25", "whatever"));
    }
}
