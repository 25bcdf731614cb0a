//! Small file helpers for secrets and data kept on local disk.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

/// Writes a file readable by its owner only (0600), atomically (temp file + fsync + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Creates a data directory readable by its owner only (the embedded default's SQLite file, blobs, secrets).
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A generated secret kept in `path`: 32 random bytes as hex, written 0600 on first use, read afterwards.
/// The embedded default keeps its JWT signing secret and its blob-link signing secret this way.
pub fn read_or_create_secret(path: &Path) -> anyhow::Result<crate::auth::Secret> {
    if !path.exists() {
        write_private(path, hex::encode(crate::auth::random_secret()?).as_bytes())?;
    }
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::auth::Secret::new(raw.trim().as_bytes().to_vec()))
}
