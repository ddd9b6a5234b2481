//! Integration tests: the `cutover` binary end to end, one test binary.
mod it;
