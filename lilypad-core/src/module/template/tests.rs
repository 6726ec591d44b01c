//! Unit tests of the template engine, one construct at a time.
