//! Declarative mappings: the TOML spec as written ([`config`]), its validation
//! into a [`Mapping`] ([`load`], [`spec`]), the expression language ([`expr`]),
//! its compiled form ([`compile`], [`kind`], [`eval`]) and the registry of
//! built-in functions ([`functions`]).
//!
//! [`Mapping::load`] reads, validates and compiles a mapping file and reports every
//! problem with `file:line:column`, before anything touches a database.

pub mod compile;
pub mod config;
pub mod eval;
pub mod expr;
pub mod functions;
pub mod kind;
pub mod load;
#[cfg(test)]
mod proptests;
mod protect;
pub mod spec;

pub use compile::{Env, Expr, Root};
pub use config::{KvFormat, OnConflict, SourceKind, WatermarkNulls};
pub use kind::Kind;
pub use load::{pattern_captures, Diagnostic, MappingError};
pub use spec::{
    kind_name, CheckSpec, ColumnSpec, DeletePolicy, KeymapSpec, Loc, Lookback, Mapping, MaxDeletes,
    SoftValue, SourceSpec, TableSpec, Watermark,
};
