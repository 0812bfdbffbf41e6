//! Core transition tests: one `Sentinel`, chosen inputs and instants, exact action lists.
