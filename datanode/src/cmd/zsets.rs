//! Zsets commands (being written).

use super::*;

/// The zsets commands.
pub static COMMANDS: &[CommandSpec] = &[];
