pub mod util;

mod datasets;
mod errors_and_plan;
mod examples;
mod resume;
mod safety;
mod servers;
mod sources;
mod sql_sources;
