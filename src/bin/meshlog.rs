//! The meshlog command-line tool (being written).
fn main() {}
