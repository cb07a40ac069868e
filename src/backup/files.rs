//! STUB
#![allow(missing_docs, unused_variables)]
use super::Artifact;
use std::path::{Path, PathBuf};
pub fn archive(paths: &[PathBuf], dest: &Path) -> anyhow::Result<Artifact> {
    todo!()
}
pub fn restore(artifact: &Artifact) -> anyhow::Result<Vec<PathBuf>> {
    todo!()
}
