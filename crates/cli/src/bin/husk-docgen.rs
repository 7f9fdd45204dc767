//! `husk-docgen`: writes husk's man pages and shell completions, generated from the same flag
//! table as `husk --help` (crates/cli/src/table.rs).
//!
//!   husk-docgen man DIR           husk.8, husk-create.8, ... into DIR
//!   husk-docgen completions DIR   husk.bash, _husk (zsh), husk.fish into DIR

use std::path::Path;
use std::process::ExitCode;

fn write_all(dir: &Path, files: Vec<(String, String)>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files = match args.first().map(String::as_str) {
        Some("man") => husk::docs::man_pages(),
        Some("completions") => vec![
            ("husk.bash".into(), husk::docs::bash()),
            ("_husk".into(), husk::docs::zsh()),
            ("husk.fish".into(), husk::docs::fish()),
        ],
        _ => {
            eprintln!("usage: husk-docgen man|completions DIR");
            return ExitCode::from(2);
        }
    };
    let Some(dir) = args.get(1) else {
        eprintln!("usage: husk-docgen man|completions DIR");
        return ExitCode::from(2);
    };
    match write_all(Path::new(dir), files) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("husk-docgen: write into {dir}: {e}");
            ExitCode::from(1)
        }
    }
}
