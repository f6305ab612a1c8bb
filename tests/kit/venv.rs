//! Python virtual environments for the tests that drive the function with official Python packages
//! (client SDKs, the OTLP receiver): `target/clients/venv-<name>` from `tests/clients/requirements-<name>.txt`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

/// pip runs one at a time: the machine is small and the venvs share pip's cache.
static PIP: Mutex<()> = Mutex::new(());

pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The Python of `target/clients/venv-<name>`, created from `requirements-<name>.txt` unless the venv was
/// made from exactly these requirements already.
pub fn venv(name: &str) -> PathBuf {
    let requirements = clients_dir().join(format!("requirements-{name}.txt"));
    let pinned = std::fs::read_to_string(&requirements).expect("the requirements file exists");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/clients/venv-{name}"));
    let python = dir.join("bin/python");
    let stamp = dir.join("requirements.installed");
    let _one_at_a_time = PIP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == pinned) {
        return python;
    }
    let run = |command: &mut std::process::Command, what: &str| {
        let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(output.status.success(), "{what} failed:\n{}", text(&output));
    };
    let _ = std::fs::remove_dir_all(&dir);
    run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&dir), "python3 -m venv");
    run(
        std::process::Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install",
    );
    std::fs::write(&stamp, pinned).expect("the stamp is written");
    python
}

pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}
