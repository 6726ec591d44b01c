//! The EIP-712 vectors `contracts/test/LilypadTypes.t.sol` checks the Solidity
//! hashing against: the same two offers, hashed here by alloy. A change to the
//! signed structs on either side fails this test or that one.

use alloy_primitives::{Address, B256, U256, b256};
use alloy_sol_types::SolStruct;
use lilypad_core::eip712::{
    Gpu, JobOffer, JobRequirements, MachineSpec, ModulePrice, ResourceOffer, domain, signing_hash,
};

fn a(b: u8) -> Address {
    Address::repeat_byte(b)
}

fn job() -> JobOffer {
    JobOffer {
        creator: a(0x11),
        moduleId: B256::repeat_byte(0x07),
        inputsHash: B256::repeat_byte(0x08),
        requirements: JobRequirements {
            cpuMillicores: 1000,
            ramMib: 512,
            diskMib: 2048,
            gpuCount: 1,
            gpuVramMib: 8192,
        },
        maxPrice: U256::from(10u64),
        paymentCollateral: U256::from(20u64),
        timeoutSecs: 600,
        maxMediationFee: U256::from(7u64),
        minJudgeWindowSecs: 120,
        mediators: vec![a(0x91), a(0x92)],
        solver: a(0x33),
        target: a(0x22),
        expiry: 1_000_000,
        nonce: U256::from(42u64),
    }
}

fn resource() -> ResourceOffer {
    ResourceOffer {
        provider: a(0x22),
        payout: a(0x44),
        spec: MachineSpec {
            cpuMillicores: 2000,
            ramMib: 1024,
            diskMib: 4096,
            gpus: vec![
                Gpu { vendor: "AMD".into(), model: "MI300".into(), vramMib: 196_608 },
                Gpu { vendor: "NVIDIA".into(), model: "RTX 4090".into(), vramMib: 24_576 },
            ],
        },
        anyModule: false,
        modules: vec![B256::repeat_byte(0x06), B256::repeat_byte(0x07)],
        defaultPrice: U256::from(5u64),
        modulePrices: vec![ModulePrice {
            moduleId: B256::repeat_byte(0x07),
            price: U256::from(4u64),
        }],
        timeoutCollateral: U256::from(3u64),
        minTimeoutSecs: 300,
        maxResultsMultiple: 4,
        maxJudgeWindowSecs: 86_400,
        minMediateWindowSecs: 600,
        mediators: vec![a(0x90), a(0x91), a(0x92)],
        solver: a(0x33),
        expiry: 2_000_000,
        nonce: U256::MAX,
    }
}

#[test]
fn vectors_match_the_solidity_test() {
    let d = domain(31337, a(0xcc));
    let job = job();
    let res = resource();
    let got = [
        ("domain separator", d.separator()),
        ("job type hash", job.eip712_type_hash()),
        ("resource type hash", res.eip712_type_hash()),
        ("job struct hash", job.eip712_hash_struct()),
        ("resource struct hash", res.eip712_hash_struct()),
        ("job signing hash", signing_hash(&job, &d)),
        ("resource signing hash", signing_hash(&res, &d)),
        ("deal id", lilypad_core::deal::deal_id(signing_hash(&job, &d), signing_hash(&res, &d))),
    ];
    let want = [
        b256!("0x62d6a92c7cadf9b1e1a29186a979192873988ea921dab047bf80a5727f5dd983"),
        b256!("0x1f007e5c579d19c7fb233e6d09040477398c4700e36bc3a28ec453ad9d41fb0f"),
        b256!("0xbcbb0ea1f5dc7f62ad2497e8a54d5eb3810648406feba554737f415378b0da5a"),
        b256!("0xfdacfad1c48414c694fcafe2ad152b31a5b0e1d2ccf62bfefadf5f690a7c1e14"),
        b256!("0x3d3c3a670dafa42a739bf279272a615766f6e8d3a021b16a5d22e3db7e48e292"),
        b256!("0x93a5b14d34d7ffd108a1bed8b63a57220e2d2aa2e178b3614f59fdf3d4b791ff"),
        b256!("0xfdfda473a32ab952d92e5c1573103121997d5b454aa2ef4204bcabfac0f58217"),
        b256!("0x04808ce8d35c87d62a198b825c62e4f76c6a2c133d63928951845fd79c260bd1"),
    ];
    let report: Vec<String> = got.iter().map(|(what, h)| format!("{what}: {h}")).collect();
    for ((what, h), w) in got.iter().zip(want) {
        assert_eq!(*h, w, "{what} (all values:\n{})", report.join("\n"));
    }
}
