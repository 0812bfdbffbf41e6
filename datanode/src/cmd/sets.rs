//! Sets commands (being written).

use super::*;

/// The sets commands.
pub static COMMANDS: &[CommandSpec] = &[];
