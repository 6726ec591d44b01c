//! OpenCL miner (in progress).
