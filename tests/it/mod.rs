pub mod util;

mod datasets;
mod errors_and_plan;
mod examples;
mod init;
mod init_docs;
mod init_mssql;
mod init_sql;
mod logs_and_secrets;
mod migrate_d1;
mod mssql;
mod resume;
mod safety;
mod secrets;
mod servers;
mod sources;
mod sql_sources;
mod window;
