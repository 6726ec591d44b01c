//! Choosing a network and an account: the layer shared with `lilypad-rp`.

pub(crate) use lilypad_cli_common::network::{Network, NetworkArgs, Role, key, load, network_file};
