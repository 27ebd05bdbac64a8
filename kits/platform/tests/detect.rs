//! `detect` against captured trees, offline (`--no-network`): the verdict,
//! its confidence, the key evidence lines and the JSON shape.

mod common;

use common::{code, fixture, run, stdout};

fn detect(case: &str) -> String {
    let root = fixture(case);
    let o = run(&[
        "detect",
        "--no-network",
        "--sysroot",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{case}: {}", common::stderr(&o));
    stdout(&o)
}

fn detect_json(case: &str) -> String {
    let root = fixture(case);
    let o = run(&[
        "detect",
        "--no-network",
        "--json",
        "--sysroot",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{case}: {}", common::stderr(&o));
    stdout(&o)
}

#[test]
fn hyperv_gen1_on_an_old_host() {
    let out = detect("hyperv-gen1");
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
    common::has(&out, "hyper-v generation: 1 (BIOS)");
    common::has(&out, "dmi bios_vendor: American Megatrends Inc.");
    common::has(&out, "dmi product_version: 7.0");
    common::has(&out, "vmbus: present (12 devices)");
    common::has(&out, "azure asset tag: no");
    common::has(
        &out,
        "cpuid hypervisor: not checked (--sysroot, no cpuid.txt)",
    );
    common::has(&out, "container: none seen");
    common::has(&out, "network: not checked (--no-network)");
}

#[test]
fn hyperv_gen2() {
    let out = detect("hyperv-gen2");
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
    common::has(&out, "hyper-v generation: 2 (UEFI)");
    common::has(&out, "dmi sys_vendor: Microsoft Corporation");
    common::has(&out, "dmi product_name: Virtual Machine");
    common::has(&out, "dmi product_version: Hyper-V UEFI Release v4.1");
    common::has(&out, "firmware: UEFI");
    common::has(&out, "vmbus: present (11 devices)");
    assert!(out.contains("not Azure's"), "{out}");
}

#[test]
fn azure_offline_is_only_a_guess() {
    let out = detect("azure");
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: guess");
    common::has(
        &out,
        "dmi chassis_asset_tag: 7783-7084-3265-9085-8269-3286-77",
    );
    common::has(&out, "azure asset tag: yes");
    assert!(out.contains("a claim, not proof"), "{out}");
}

#[test]
fn spoofed_tag_offline_looks_like_azure_but_only_as_a_guess() {
    let out = detect("hyperv-azure-tag");
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: guess");
}

#[test]
fn azure_stack_hub_offline_cannot_be_told_from_azure() {
    let out = detect("azure-stack-hub");
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: guess");
    assert!(out.contains("Azure Stack Hub carries it too"), "{out}");
}

#[test]
fn azure_stack_hci_guest_is_on_premises_hyperv() {
    let out = detect("azure-stack-hci");
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
}

#[test]
fn kvm() {
    let out = detect("kvm");
    common::has(&out, "platform: kvm (KVM/QEMU guest)");
    common::has(&out, "confidence: certain");
    common::has(&out, "dmi sys_vendor: QEMU");
    common::has(&out, "vmbus: absent");
    common::has(&out, "cpuinfo hypervisor flag: yes");
}

#[test]
fn vmware() {
    let out = detect("vmware");
    common::has(&out, "platform: vmware (VMware guest)");
    common::has(&out, "confidence: certain");
    common::has(&out, "dmi sys_vendor: VMware, Inc.");
}

#[test]
fn xen() {
    let out = detect("xen");
    common::has(&out, "platform: xen (Xen guest)");
    common::has(&out, "confidence: certain");
    common::has(&out, "/sys/hypervisor/type: xen");
}

#[test]
fn bare_metal() {
    let out = detect("bare-metal");
    common::has(
        &out,
        "platform: bare-metal (physical machine (no hypervisor seen))",
    );
    common::has(&out, "confidence: likely");
    common::has(&out, "cpuinfo hypervisor flag: no");
    common::has(&out, "dmi sys_vendor: Dell Inc.");
    assert!(out.contains("never certain"), "{out}");
}

#[test]
fn json_shape_for_hyperv_gen2() {
    let j = detect_json("hyperv-gen2");
    assert!(j.ends_with("}\n") && j.starts_with('{'), "{j}");
    assert_eq!(j.lines().count(), 1, "one line of JSON");
    for part in [
        r#""platform":"hyperv""#,
        r#""confidence":"likely""#,
        r#""is_azure":false"#,
        r#""hyperv_generation":2"#,
        r#""reasons":["#,
        r#""evidence":{"dmi":{"sys_vendor":"Microsoft Corporation","product_name":"Virtual Machine","product_version":"Hyper-V UEFI Release v4.1","chassis_asset_tag":"2188-6071-1573-2386-8403-4529-56""#,
        r#""azure_asset_tag":false"#,
        r#""vmbus_devices":11"#,
        r#""uefi":true"#,
        r#""cpuinfo_hypervisor_flag":true"#,
        r#""sys_hypervisor_type":null"#,
        r#""cpuid":{"checked":false}"#,
        r#""network":{"checked":false}"#,
        r#""notes":[]"#,
    ] {
        assert!(j.contains(part), "missing {part} in {j}");
    }
}

#[test]
fn json_for_every_fixture_names_the_expected_platform() {
    for (case, platform, confidence) in [
        ("hyperv-gen1", "hyperv", "likely"),
        ("hyperv-gen2", "hyperv", "likely"),
        ("hyperv-azure-tag", "azure", "guess"),
        ("azure", "azure", "guess"),
        ("azure-stack-hub", "azure", "guess"),
        ("azure-stack-hci", "hyperv", "likely"),
        ("kvm", "kvm", "certain"),
        ("vmware", "vmware", "certain"),
        ("xen", "xen", "certain"),
        ("bare-metal", "bare-metal", "likely"),
        ("hyperv-ws2016-gen2", "hyperv", "likely"),
        ("hyperv-ws2019-gen2", "hyperv", "likely"),
        ("hyperv-ws2025-gen2", "hyperv", "likely"),
        ("wsl2", "hyperv", "likely"),
        ("nutanix-ahv-hv-enlightened", "kvm", "certain"),
        ("qemu-posing-as-hyperv", "hyperv", "guess"),
        ("kvmtool-cpuid", "kvm", "likely"),
        ("docker-on-hyperv", "hyperv", "likely"),
        ("lxc-on-kvm", "kvm", "certain"),
        ("dmi-not-utf8", "bare-metal", "likely"),
    ] {
        let j = detect_json(case);
        assert!(
            j.contains(&format!(r#""platform":"{platform}""#)),
            "{case}: {j}"
        );
        assert!(
            j.contains(&format!(r#""confidence":"{confidence}""#)),
            "{case}: {j}"
        );
    }
}

#[test]
fn empty_tree_is_a_guess_not_a_crash() {
    let s = common::Scratch::new("empty");
    let o = run(&[
        "detect",
        "--no-network",
        "--sysroot",
        s.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    common::has(
        &out,
        "platform: bare-metal (physical machine (no hypervisor seen))",
    );
    common::has(&out, "confidence: guess");
}

#[test]
fn bad_input_is_exit_2() {
    let o = run(&[
        "detect",
        "--no-network",
        "--sysroot",
        "/nonexistent/lkh-platform",
    ]);
    assert_eq!(code(&o), 2);
    let err = common::stderr(&o);
    assert!(
        err.contains(
            "lkh-platform: error: /nonexistent/lkh-platform: --sysroot is not a directory"
        ),
        "{err}"
    );
    assert_eq!(code(&run(&["detect", "--bogus"])), 2);
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&[])), 2);
    assert_eq!(code(&run(&["--help"])), 0);
    // Usage errors follow the contract: one line on stderr, nothing on stdout.
    for (args, says) in [
        (&["detect", "--bogus"][..], "--bogus"),
        (&["frobnicate"][..], "frobnicate"),
        (&[][..], "no command given"),
        (&["fix", "--lk-serv-env"][..], "--lk-serv-env"),
    ] {
        let o = run(args);
        let err = common::stderr(&o);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("lkh-platform: error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    let help = run(&["--help"]);
    assert!(stdout(&help).contains("Usage:"), "{}", stdout(&help));
    assert_eq!(code(&run(&["--version"])), 0);
}

#[test]
fn hyperv_gen2_on_every_supported_windows_server() {
    for (case, release) in [
        ("hyperv-ws2016-gen2", "v2.5"),
        ("hyperv-ws2019-gen2", "v4.0"),
        ("hyperv-gen2", "v4.1"),
        ("hyperv-ws2025-gen2", "v4.1"),
    ] {
        let out = detect(case);
        common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
        common::has(&out, "hyper-v generation: 2 (UEFI)");
        common::has(&out, "vmbus: present (11 devices)");
        common::has(
            &out,
            &format!("dmi product_version: Hyper-V UEFI Release {release}"),
        );
        assert!(
            out.contains("only Hyper-V (on premises or Azure) has VMBus"),
            "{case}: {out}"
        );
    }
}

#[test]
fn wsl2_is_hyperv_without_a_generation() {
    let out = detect("wsl2");
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
    common::has(&out, "kernel release: 5.15.167.4-microsoft-standard-WSL2");
    assert!(!out.contains("hyper-v generation:"), "{out}");
    assert!(out.contains("is WSL2's"), "{out}");
}

#[test]
fn kvm_with_hyperv_enlightenments_is_kvm_by_the_second_cpuid_leaf() {
    let out = detect("nutanix-ahv-hv-enlightened");
    common::has(&out, "platform: kvm (KVM/QEMU guest)");
    common::has(&out, "confidence: certain");
    common::has(
        &out,
        "cpuid hypervisor: \"Microsoft Hv\", leaf 0x40000100 \"KVMKVMKVM\" (from cpuid.txt)",
    );
    assert!(
        out.contains("offering Hyper-V enlightenments, not Hyper-V"),
        "{out}"
    );
    let j = detect_json("nutanix-ahv-hv-enlightened");
    assert!(
        j.contains(r#""cpuid":{"checked":true,"hypervisor":true,"vendor":"Microsoft Hv","vendor_0x40000100":"KVMKVMKVM"}"#),
        "{j}"
    );
}

#[test]
fn a_look_alike_of_hyperv_is_never_more_than_a_guess() {
    let out = detect("qemu-posing-as-hyperv");
    common::has(&out, "confidence: guess");
    assert!(out.contains("(disagrees)"), "{out}");
    assert!(out.contains("CPUID against"), "{out}");
}

#[test]
fn containers_are_reported_and_the_machine_underneath_classified() {
    let out = detect("docker-on-hyperv");
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "container: docker (/.dockerenv)");
    assert!(!out.contains("hyper-v generation:"), "{out}");
    let j = detect_json("lxc-on-kvm");
    assert!(j.contains(r#""platform":"kvm""#), "{j}");
    assert!(j.contains(r#""container":"lxc""#), "{j}");
    assert!(
        j.contains(r#""container":{"kind":"lxc","seen_in":"/proc/1/environ"}"#),
        "{j}"
    );
    assert!(detect_json("kvm").contains(r#""container":null"#));
}

#[test]
fn a_dmi_byte_that_is_not_utf8_is_shown_escaped_and_used() {
    let out = detect("dmi-not-utf8");
    common::has(&out, "dmi product_name: PowerEdge R650\\xff");
    assert!(
        out.contains("\"Dell Inc.\" / \"PowerEdge R650\\xff\""),
        "{out}"
    );
    let j = detect_json("dmi-not-utf8");
    assert!(j.contains(r#""product_name":"PowerEdge R650\\xff""#), "{j}");
    assert!(j.contains(r#""notes":[]"#), "{j}");
}

#[test]
fn without_a_flags_line_the_cpu_says_nothing_about_a_hypervisor() {
    let s = common::Scratch::new("arm");
    common::copy_tree(&fixture("bare-metal"), s.path());
    std::fs::write(
        s.path().join("proc/cpuinfo"),
        "processor\t: 0\nFeatures\t: fp asimd evtstrm\nCPU implementer\t: 0x41\n",
    )
    .unwrap();
    let o = run(&[
        "detect",
        "--no-network",
        "--sysroot",
        s.path().to_str().unwrap(),
    ]);
    let out = stdout(&o);
    common::has(&out, "confidence: guess");
    common::has(
        &out,
        "cpuinfo hypervisor flag: unknown (no flags line; cpu kind other)",
    );
    assert!(out.contains("has no flags line (not an x86 CPU)"), "{out}");
    assert!(
        !out.contains("does not report the hypervisor flag"),
        "{out}"
    );
}

/// Output into a pipe nobody reads any more (`detect | head -1` after head exited): the
/// process ends quietly by SIGPIPE, as `cat` does, and never panics.
#[test]
fn a_closed_pipe_ends_it_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let root = fixture("hyperv-gen2");
    let o = std::process::Command::new(common::BIN)
        .args(["detect", "--no-network", "--sysroot"])
        .arg(&root)
        .stdout(std::process::Stdio::from(w))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?}: {err}",
        o.status
    );
}
