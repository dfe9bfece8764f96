//! The crate's error type.

/// What SDAM or server selection can refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdamError {
    /// The topology configuration breaks a rule of the SDAM spec (for example several seeds
    /// with a direct connection).
    #[error("invalid topology configuration: {0}")]
    InvalidConfig(String),
    /// The read preference is invalid for this topology (for example a max staleness below
    /// the allowed minimum, or tags with mode primary).
    #[error("invalid read preference: {0}")]
    InvalidReadPreference(String),
    /// Some server's wire version range does not overlap the driver's.
    #[error("{0}")]
    IncompatibleWireVersion(String),
}
