//! Hashes commands (being written).

use super::*;

/// The hashes commands.
pub static COMMANDS: &[CommandSpec] = &[];
