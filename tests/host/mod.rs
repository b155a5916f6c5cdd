//! Driver for the 1C host emulator (`host1c.c`): builds it, runs scripts against the add-in the
//! way 1C would load it, and parses its JSON-lines output.
#![allow(dead_code)] // each test binary uses a different part of the driver

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value as Json;

/// Which build of the add-in and the emulator to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Linux,
    /// x86_64-pc-windows-gnu DLL under Wine.
    Win64,
    /// i686-pc-windows-gnu DLL under Wine.
    Win32,
    /// aarch64 Linux library (glibc 2.17, built by cargo-zigbuild) under qemu-user.
    LinuxArm64,
}

/// Where qemu-user finds the aarch64 dynamic loader and libc (Debian's libc6-arm64-cross).
const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

impl Platform {
    pub fn rust_target(self) -> Option<&'static str> {
        match self {
            Platform::Linux => None,
            Platform::Win64 => Some("x86_64-pc-windows-gnu"),
            Platform::Win32 => Some("i686-pc-windows-gnu"),
            Platform::LinuxArm64 => Some("aarch64-unknown-linux-gnu"),
        }
    }

    fn windows(self) -> bool {
        matches!(self, Platform::Win64 | Platform::Win32)
    }

    /// The C compiler for the emulator: the command and the arguments that select the target.
    fn c_compiler(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Platform::Linux => ("gcc", &[]),
            Platform::Win64 => ("x86_64-w64-mingw32-gcc", &[]),
            Platform::Win32 => ("i686-w64-mingw32-gcc", &[]),
            // Zig's C compiler (from scripts/install-deps.sh) cross-compiles for aarch64 glibc.
            Platform::LinuxArm64 => (
                "python3",
                &["-m", "ziglang", "cc", "-target", "aarch64-linux-gnu.2.17"],
            ),
        }
    }

    /// The program that runs the emulator (Wine, qemu-user), if it does not run natively.
    fn runner(self) -> Option<&'static str> {
        match self {
            Platform::Linux => None,
            Platform::Win64 | Platform::Win32 => Some("wine"),
            Platform::LinuxArm64 => Some("qemu-aarch64"),
        }
    }

    fn library_name(self) -> &'static str {
        if self.windows() {
            "kafka1c.dll"
        } else {
            "libkafka1c.so"
        }
    }
}

/// `target/` of this build, found from the test executable (`target/<profile>/deps/test-xxx`).
pub fn target_root() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

/// The add-in library for a platform. Linux x86_64: the cdylib cargo built next to the tests.
/// Cross-built platforms: the release library shipped in the zip, as `addin-manifest/build-zip.sh`
/// left it in `dist/zip/` (scripts/test.sh builds it first), so Wine and qemu run what 1C gets.
pub fn library(p: Platform) -> PathBuf {
    let profile = profile_dir();
    let zipped = match p {
        // `cargo test` refreshes deps/ but not always the uplifted copy: take the newer one.
        Platform::Linux => {
            return newest(&[
                profile.join("deps").join(p.library_name()),
                profile.join(p.library_name()),
            ])
        }
        Platform::Win64 => "kafka1c_windows_x86_64.dll",
        Platform::Win32 => "kafka1c_windows_i386.dll",
        Platform::LinuxArm64 => "libkafka1c_linux_aarch64.so",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dist/zip")
        .join(zipped)
}

/// Panics unless `lib` exists and is newer than every source file, so a cross-platform test
/// never runs a library built from older code.
fn assert_fresh(lib: &Path) {
    let built = std::fs::metadata(lib)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is not built: run addin-manifest/build-zip.sh (scripts/test.sh does)",
                lib.display()
            )
        });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("src")];
    let mut sources = vec![
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("build.rs"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                sources.push(path);
            }
        }
    }
    for source in sources {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        assert!(
            changed.map_or(true, |t| t <= built),
            "{} is older than {}: run addin-manifest/build-zip.sh (scripts/test.sh does)",
            lib.display(),
            source.display()
        );
    }
}

fn newest(paths: &[PathBuf]) -> PathBuf {
    paths
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| paths[0].clone())
}

/// Panics, naming what is missing, unless a cross-built platform (Windows under Wine, aarch64
/// under qemu-user) can run here: these suites never skip (scripts/install-deps.sh installs Wine
/// with its 32-bit half, qemu-user and the aarch64 libc).
pub fn require_platform(p: Platform) {
    assert_fresh(&library(p));
    let (cc, _) = p.c_compiler();
    for tool in [Some(cc), p.runner()].into_iter().flatten() {
        if let Err(e) = Command::new(tool).arg("--version").output() {
            panic!("{tool} is not runnable ({e}); run scripts/install-deps.sh test");
        }
    }
    // Wine may be there without its 32-bit half: ask the emulator itself to start.
    let probe = runner_command(p, &emulator(p))
        .output()
        .unwrap_or_else(|e| panic!("{:?} did not start: {e}", p.runner()));
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(
        stderr.contains("usage: host1c"),
        "{p:?} programs cannot run here: {}",
        stderr.lines().next().unwrap_or("")
    );
}

/// The emulator `exe` started the way platform `p` needs.
fn runner_command(p: Platform, exe: &Path) -> Command {
    match p {
        Platform::Linux => Command::new(exe),
        Platform::Win64 | Platform::Win32 => {
            let mut c = Command::new("wine");
            c.arg(exe);
            // Quiet Wine, skip its Mono/Gecko installers, prefer our ProcessPrng shim.
            c.env("WINEDEBUG", "-all")
                .env("WINEDLLOVERRIDES", "mscoree,mshtml=;bcryptprimitives=n,b");
            c
        }
        Platform::LinuxArm64 => {
            let mut c = Command::new("qemu-aarch64");
            c.arg("-L").arg(ARM64_SYSROOT).arg(exe);
            c
        }
    }
}

/// Builds the emulator once per platform per test process. Windows builds go to their own
/// folder with the add-in copied beside them, as Windows looks for DLLs next to the program.
pub fn emulator(p: Platform) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<Platform, PathBuf>>> =
        OnceLock::new();
    let map = BUILT.get_or_init(Default::default);
    let mut map = map.lock().unwrap();
    if let Some(path) = map.get(&p) {
        return path.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = target_root()
        .join("host1c")
        .join(p.rust_target().unwrap_or("linux"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(if p.windows() { "host1c.exe" } else { "host1c" });
    // Unique temp name: several test binaries may build at once.
    let tmp = dir.join(format!(
        "tmp-{}-{}",
        std::process::id(),
        out.file_name().unwrap().to_string_lossy()
    ));
    let (cc, cc_args) = p.c_compiler();
    let mut cmd = Command::new(cc);
    cmd.args(cc_args)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .arg(root.join("tests/host/host1c.c"));
    if p.windows() {
        cmd.args(["-static", "-static-libgcc"]);
    } else {
        cmd.args(["-D_GNU_SOURCE", "-ldl", "-lpthread"]);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("{cc} not runnable: {e}"));
    assert!(
        status.success(),
        "building the host emulator for {p:?} failed"
    );
    std::fs::rename(&tmp, &out).unwrap();
    if p.windows() {
        let shim_tmp = dir.join(format!("tmp-{}-shim.dll", std::process::id()));
        let status = Command::new(cc)
            // --kill-at: on i686 a __stdcall export is otherwise named `ProcessPrng@8`, and
            // Rust's std asks for the undecorated `ProcessPrng`.
            .args(["-shared", "-O2", "-Wl,--kill-at", "-o"])
            .arg(&shim_tmp)
            .arg(root.join("tests/support/wine/processprng_shim.c"))
            .status()
            .expect("mingw gcc");
        assert!(status.success(), "building the ProcessPrng shim failed");
        std::fs::rename(&shim_tmp, dir.join("bcryptprimitives.dll")).unwrap();
    }
    map.insert(p, out.clone());
    out
}

fn command(p: Platform) -> Command {
    command_for(p, &library(p))
}

/// The emulator for platform `p` loading the library at `lib`.
fn command_for(p: Platform, lib: &Path) -> Command {
    let exe = emulator(p);
    if !p.windows() {
        let mut c = runner_command(p, &exe);
        c.arg(lib);
        return c;
    }
    // Windows looks for DLLs next to the program: copy the library there.
    let local = exe
        .parent()
        .unwrap()
        .join(format!("kafka1c-{}.dll", std::process::id()));
    std::fs::copy(lib, &local).unwrap();
    let mut c = runner_command(p, &exe);
    c.arg(local);
    c
}

/// What one emulator run printed.
#[derive(Debug)]
pub struct Run {
    pub lines: Vec<Json>,
    pub status: i32,
    pub stderr: String,
}

impl Run {
    /// Lines for command `cmd`, in order.
    pub fn of(&self, cmd: &str) -> Vec<&Json> {
        self.lines.iter().filter(|l| l["cmd"] == cmd).collect()
    }

    pub fn exit(&self) -> &Json {
        self.lines
            .iter()
            .rev()
            .find(|l| l["cmd"] == "exit")
            .expect("emulator printed no exit line")
    }

    /// Asserts the host memory check passed: nothing leaked, nothing freed twice.
    pub fn assert_clean_memory(&self) {
        let exit = self.exit();
        assert_eq!(exit["leaked"], 0, "host allocations leaked: {exit}");
        assert_eq!(
            exit["bad_frees"], 0,
            "host allocations freed twice or foreign: {exit}"
        );
        assert_eq!(
            self.status, 0,
            "emulator status {}; stderr: {}",
            self.status, self.stderr
        );
    }
}

/// Runs a whole script and returns its output.
pub fn run_script(p: Platform, script: &str) -> Run {
    run(command(p), script)
}

/// Runs a whole script against the library at `lib` (e.g. one taken out of the add-in zip).
pub fn run_script_on(p: Platform, lib: &Path, script: &str) -> Run {
    run(command_for(p, lib), script)
}

fn run(mut command: Command, script: &str) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn host emulator");
    // Feed stdin from another thread: a long script's output would otherwise fill the pipe.
    let mut stdin = child.stdin.take().unwrap();
    let script = script.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    Run {
        lines,
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An emulator driven one command at a time (for consumers that run alongside others).
pub struct Interactive {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// ExternalEvent lines seen while waiting for answers.
    pub events: Vec<Json>,
}

impl Interactive {
    pub fn start(p: Platform) -> Interactive {
        let mut child = command(p)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn host emulator");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(
            first.contains("\"load\""),
            "emulator did not load the add-in: {first}"
        );
        Interactive {
            child,
            stdin,
            stdout,
            events: Vec::new(),
        }
    }

    /// Sends one script line and returns its answer.
    pub fn send(&mut self, line: &str) -> Json {
        let stdin = self.stdin.as_mut().expect("emulator stdin closed");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        loop {
            let mut buf = String::new();
            let n = self.stdout.read_line(&mut buf).unwrap();
            assert!(n > 0, "emulator exited while running {line:?}");
            let v: Json = serde_json::from_str(buf.trim())
                .unwrap_or_else(|e| panic!("bad JSON {buf:?}: {e}"));
            if v["cmd"] == "event" {
                self.events.push(v);
                continue;
            }
            return v;
        }
    }

    /// Like `send`, but panics unless the call succeeded; returns the answer.
    pub fn ok(&mut self, line: &str) -> Json {
        let v = self.send(line);
        assert_eq!(v["ok"], true, "{line} failed: {v}");
        v
    }

    /// Closes stdin (the emulator destroys its objects and exits) and returns the exit line.
    pub fn finish(mut self) -> (Json, i32) {
        drop(self.stdin.take());
        let mut last = Json::Null;
        let mut buf = String::new();
        while self.stdout.read_line(&mut buf).unwrap_or(0) > 0 {
            if let Ok(v) = serde_json::from_str::<Json>(buf.trim()) {
                if v["cmd"] == "exit" {
                    last = v;
                }
            }
            buf.clear();
        }
        let status = self.child.wait().unwrap().code().unwrap_or(-1);
        (last, status)
    }

    /// Kills the emulator process without any cleanup (a crashed 1C worker).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Quotes a Rust string as a script string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Binary literal for a script.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("x\"");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}
