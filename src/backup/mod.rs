//! STUB (replaced by the backup helper's module).
#![allow(missing_docs, unused_variables)]
pub mod db;
pub mod files;
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Files,
    Sqlite,
    Postgres,
    Mysql,
}
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub kind: Kind,
    pub path: std::path::PathBuf,
    pub size: u64,
    pub sha256: String,
}
impl Artifact {
    pub fn verify(&self) -> anyhow::Result<()> {
        todo!()
    }
}
