//! `spec`: write runc's default config.json.

use std::path::PathBuf;

use super::{parse, CliError, Result};

pub(super) fn spec(argv: &[String]) -> Result<u8> {
    let p = parse("spec", argv)?;
    let dir = PathBuf::from(p.value("bundle").unwrap_or("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(CliError::Usage(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let mut v = serde_json::to_value(husk_spec::default_spec(p.has("rootless")))
        .map_err(|e| CliError::Usage(format!("spec: {e}")))?;
    // Capability sets are unordered in memory; write them sorted so the file is stable.
    if let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for list in caps.values_mut() {
            if let Some(a) = list.as_array_mut() {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
        }
    }
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    serde::Serialize::serialize(&v, &mut ser).map_err(|e| CliError::Usage(format!("spec: {e}")))?;
    buf.push(b'\n');
    std::fs::write(&path, buf)
        .map_err(|e| CliError::Usage(format!("write {}: {e}", path.display())))?;
    Ok(0)
}
