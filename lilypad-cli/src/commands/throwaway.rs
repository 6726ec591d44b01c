//! The throwaway local network `run` starts, in its own process, when no network is
//! configured. Only builds with the `devnet` feature have one; the others say so.

#[cfg(feature = "devnet")]
pub(crate) use with_devnet::Throwaway;
#[cfg(not(feature = "devnet"))]
pub(crate) use without_devnet::Throwaway;

#[cfg(feature = "devnet")]
mod with_devnet {
    use std::{io::IsTerminal, path::PathBuf, time::Instant};

    use anyhow::Context;
    use lilypad_sdk::localnet::LocalNetwork;

    /// A whole network in this process, with its state directory.
    pub(crate) struct Throwaway {
        net: LocalNetwork,
        dir: PathBuf,
    }

    impl Throwaway {
        /// Starts one (`no_network` is why none was found; a started network replaces
        /// it), with a spinner on a terminal unless `quiet`.
        pub(crate) async fn start(_no_network: anyhow::Error, quiet: bool) -> anyhow::Result<Self> {
            let dir = std::env::temp_dir().join(format!("lilypad-localnet-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            if !quiet {
                eprintln!(
                    "no network configured (no --network, no LILYPAD_NETWORK, no `lilypad-cli \
                     devnet up`): starting a throwaway local network"
                );
            }
            let bar = (!quiet && std::io::stderr().is_terminal()).then(crate::spinner::spinner);
            let started = Instant::now();
            let progress = |msg: &str| {
                if let Some(b) = &bar {
                    b.set_message(msg.to_owned());
                }
            };
            let net = LocalNetwork::start(&dir, &progress).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let net = net.context(
                "starting the local network (see `lilypad-rp doctor` for Docker problems)",
            )?;
            if !quiet {
                eprintln!(
                    "✔ local network up: anvil, contracts, solver, content store, Docker provider \
                     ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(Self { net, dir })
        }

        /// Its network file.
        pub(crate) fn network_file(&self) -> PathBuf {
            self.net.network_file()
        }

        /// Stops every part and removes its state.
        pub(crate) async fn stop(self) {
            self.net.shutdown().await;
            let _ = std::fs::remove_dir_all(self.dir);
        }
    }
}

#[cfg(not(feature = "devnet"))]
mod without_devnet {
    use std::path::PathBuf;

    /// No throwaway network in this build: a value of it cannot exist.
    pub(crate) enum Throwaway {}

    impl Throwaway {
        /// Fails with `no_network`, saying why no throwaway network starts instead.
        pub(crate) async fn start(no_network: anyhow::Error, _quiet: bool) -> anyhow::Result<Self> {
            Err(no_network.context(
                "this lilypad-cli was built without the `devnet` feature, so it starts no \
                 throwaway local network: pass --network NAME|FILE",
            ))
        }

        pub(crate) fn network_file(&self) -> PathBuf {
            match *self {}
        }

        pub(crate) async fn stop(self) {
            match self {}
        }
    }
}
