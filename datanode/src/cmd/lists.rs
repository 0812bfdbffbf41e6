//! Lists commands (being written).

use super::*;

/// The lists commands.
pub static COMMANDS: &[CommandSpec] = &[];
