//! `lilypad-rp bench`, run as a user would: the real binary on the real OpenCL device.

#![cfg(feature = "opencl")]

use std::process::Command;

fn bench(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lilypad-rp"))
        .arg("bench")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run lilypad-rp");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// The value of the `opencl_vs_cpu=<ratio>` line.
fn ratio(out: &str) -> Option<f64> {
    out.lines().find_map(|l| l.strip_prefix("opencl_vs_cpu=")).and_then(|v| v.parse().ok())
}

#[test]
fn lists_devices_and_prints_rates_and_the_ratio() {
    let (ok, out, err) = bench(&["--seconds", "1"], &[]);
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("OpenCL devices:\n  [0] "), "{out}");
    assert!(out.contains("compute units"), "{out}");
    assert!(out.contains("tuned: lanes="), "{out}");
    assert!(out.contains("CPU fallback ("), "{out}");
    assert_eq!(out.matches("H/s  (").count(), 2, "a rate for the device and the CPU:\n{out}");
    let r = ratio(&out).unwrap_or_else(|| panic!("no opencl_vs_cpu line in:\n{out}"));
    assert!(r > 0.0, "{out}");
}

#[test]
fn without_opencl_it_measures_the_cpu_and_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let (ok, out, err) = bench(&["--seconds", "1"], &[("OCL_ICD_VENDORS", dir)]);
    assert!(!ok, "{out}");
    assert!(err.contains("no OpenCL platform found"), "{err}");
    assert!(err.contains("apt-get install pocl-opencl-icd ocl-icd-opencl-dev"), "{err}");
    assert!(out.contains("CPU fallback ("), "{out}");
    assert_eq!(ratio(&out), None, "{out}");
}

#[test]
fn an_unknown_device_is_an_error() {
    let (ok, _, err) = bench(&["--device", "99", "--seconds", "1"], &[]);
    assert!(!ok);
    assert!(err.contains("no OpenCL device 99"), "{err}");
}
