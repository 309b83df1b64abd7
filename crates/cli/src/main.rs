//! `warden`: the command line.

fn main() {}
