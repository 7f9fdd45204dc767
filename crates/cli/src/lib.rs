//! The command-line table of `husk` and what is generated from it: the parser's flag lists,
//! `--help` text, man pages and shell completions. The `husk` binary (main.rs) and the
//! `husk-docgen` tool (man pages and completions at build time) share it.
#![forbid(unsafe_code)]

pub mod args;
pub mod docs;
pub mod help;
pub mod table;
