//! Choosing a network and an account: the layer shared with `lilypad-rp`.

pub(crate) use lilypad_cli_common::network::{
    Network, NetworkArgs, Role, home as lilypad_home, key, load, network_file,
};
