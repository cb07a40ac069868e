//! STUB
#![allow(missing_docs, unused_variables)]
use super::{Artifact, Kind};
use std::path::{Path, PathBuf};
pub enum Db {
    Sqlite { path: PathBuf },
    Postgres { conn: String },
    Mysql { conn: String },
}
pub fn resolve(database: &crate::config::Database) -> anyhow::Result<Option<Db>> {
    todo!()
}
impl Db {
    pub fn kind(&self) -> Kind {
        todo!()
    }
    pub fn describe(&self) -> String {
        todo!()
    }
    pub async fn preflight(&self) -> anyhow::Result<()> {
        todo!()
    }
    pub async fn dump(&self, dest: &Path) -> anyhow::Result<Artifact> {
        todo!()
    }
    pub async fn restore(&self, artifact: &Artifact) -> anyhow::Result<()> {
        todo!()
    }
}
