//! The add-in zip as 1C receives it (built by addin-manifest/build-zip.sh, which scripts/test.sh
//! runs first): MANIFEST.XML names exactly the libraries inside, the Linux libraries need nothing
//! newer than glibc 2.17, and every library loads from the unpacked zip in the host emulator —
//! Linux x86_64 natively, both Windows DLLs under Wine, Linux aarch64 under qemu-user.

mod host;

use std::path::{Path, PathBuf};
use std::process::Command;

use host::{quote, run_script_on, Platform};

/// The oldest glibc the Linux library may need: RHEL/CentOS 7's.
const MAX_GLIBC: (u32, u32) = (2, 17);

struct Component {
    os: String,
    arch: String,
    path: String,
}

fn unpacked_zip() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zip = root.join("dist/kafka1c.zip");
    assert!(
        zip.exists(),
        "{} is missing: run addin-manifest/build-zip.sh (scripts/test.sh does it first)",
        zip.display()
    );
    let dir = host::target_root().join(format!("unpacked-zip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(&zip)
        .arg("-d")
        .arg(&dir)
        .status()
        .expect("unzip");
    assert!(status.success(), "unzip {} failed", zip.display());
    dir
}

/// `<component os=".." path=".." type="native" arch=".."/>` entries of MANIFEST.XML.
fn components(manifest: &str) -> Vec<Component> {
    let attr = |tag: &str, name: &str| -> String {
        let start = tag
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("MANIFEST.XML: {name} missing in {tag}"))
            + name.len()
            + 2;
        tag[start..start + tag[start..].find('"').unwrap()].to_string()
    };
    manifest
        .split("<component ")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find("/>").expect("component tag closed")];
            assert_eq!(attr(tag, "type"), "native", "{tag}");
            Component {
                os: attr(tag, "os"),
                arch: attr(tag, "arch"),
                path: attr(tag, "path"),
            }
        })
        .collect()
}

fn platform(c: &Component) -> Platform {
    match (c.os.as_str(), c.arch.as_str()) {
        ("Linux", "x86_64") => Platform::Linux,
        ("Windows", "x86_64") => Platform::Win64,
        ("Windows", "i386") => Platform::Win32,
        ("Linux", "ARM64") => Platform::LinuxArm64,
        (os, arch) => panic!("MANIFEST.XML names {os}/{arch}, which this test cannot run"),
    }
}

/// Every `GLIBC_x.y` version the library's dynamic symbols need.
fn glibc_versions(lib: &Path) -> Vec<(u32, u32)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(lib)
        .output()
        .expect("objdump (binutils)");
    assert!(out.status.success(), "objdump -T {}", lib.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut versions: Vec<(u32, u32)> = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let v: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

#[test]
fn zip_holds_what_the_manifest_names_and_every_library_loads() {
    let dir = unpacked_zip();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.XML")).expect("MANIFEST.XML");
    let components = components(&manifest);
    let mut named: Vec<String> = components.iter().map(|c| c.path.clone()).collect();
    named.push("MANIFEST.XML".into());
    named.sort();
    let mut held: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(
        held, named,
        "the zip must hold exactly what MANIFEST.XML names"
    );
    let mut platforms: Vec<Platform> = components.iter().map(platform).collect();
    platforms.dedup();
    assert_eq!(
        platforms.len(),
        4,
        "Linux x86_64 and aarch64, Windows x86_64 and x86"
    );

    // Connect to a port nothing listens on: the call must fail with a readable reason.
    let settings =
        r#"{"bootstrap.servers":"127.0.0.1:1","socket.connection.setup.timeout.ms":1000}"#;
    let script = format!(
        "new\nget Version\ncall Connect {}\ncall Produce \"t\" true\ndestroy\n",
        quote(settings)
    );
    for c in &components {
        let lib = dir.join(&c.path);
        let p = platform(c);
        if matches!(p, Platform::Linux | Platform::LinuxArm64) {
            let needed = glibc_versions(&lib);
            let newest = needed.last().copied().unwrap_or((0, 0));
            assert!(
                newest <= MAX_GLIBC,
                "{} needs GLIBC_{}.{} (all: {needed:?}); it must load on glibc 2.17",
                c.path,
                newest.0,
                newest.1
            );
        }
        if p != Platform::Linux {
            host::require_platform(p);
        }
        let run = run_script_on(p, &lib, &script);
        run.assert_clean_memory();
        assert_eq!(
            run.of("get")[0]["value"]["value"],
            env!("CARGO_PKG_VERSION"),
            "{}: {:?}",
            c.path,
            run.lines
        );
        let calls = run.of("call");
        assert_eq!(calls[0]["ok"], false, "{}: {:?}", c.path, calls);
        assert!(
            calls[0]["error"].as_str().unwrap().contains("127.0.0.1:1"),
            "{}: {}",
            c.path,
            calls[0]
        );
        assert!(
            calls[1]["error"]
                .as_str()
                .unwrap()
                .starts_with("Produce: argument 2 (Value) must be"),
            "{}: {}",
            c.path,
            calls[1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
