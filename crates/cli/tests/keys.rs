//! The deployment's keys through the binary: a webhook key and a panel password set with the
//! CLI are sealed in the database file and absent from every output; a process that brings
//! another HMAC or seal key file is refused with a message that says which key.

use std::path::Path;
use std::process::{Command, Output};

const WEBHOOK_KEY: &str = "whsec-c1i-5e4l3d-0ut";
const PANEL_PASSWORD: &str = "c1tadel-pAnel-pw";

fn dropwatch(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dropwatch"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn secrets_set_through_the_cli_are_sealed_and_other_keys_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let mut said = ok(dropwatch(dir, &["institution", "import", "--bundled"]));
    said += &ok(dropwatch(
        dir,
        &[
            "institution",
            "webhook",
            "jp-mufg",
            "--url",
            "https://hooks.mufg.example/dw",
            "--secret",
            WEBHOOK_KEY,
        ],
    ));
    let panel = format!("mysql://root:{PANEL_PASSWORD}@203.0.113.7:3306/cit_panel");
    said += &ok(dropwatch(
        dir,
        &["monitor", "add", &panel, "--kind", "panel_mysql"],
    ));
    let listed = ok(dropwatch(dir, &["monitor", "list"]));
    assert!(
        listed.contains("mysql://root@203.0.113.7:3306/cit_panel"),
        "{listed}"
    );
    said += &listed;
    assert!(!said.contains(PANEL_PASSWORD), "{said}");
    assert!(!said.contains(WEBHOOK_KEY), "{said}");
    for secret in [WEBHOOK_KEY, PANEL_PASSWORD] {
        assert_eq!(
            files_contain(dir, secret.as_bytes()),
            Vec::<String>::new(),
            "{secret} at rest"
        );
    }

    // Another HMAC key file: refused, naming the key; the database is left as it was.
    let hmac = dir.join("secret-hmac.key");
    let original = std::fs::read(&hmac).unwrap();
    std::fs::write(&hmac, [0x42u8; 32]).unwrap();
    let out = dropwatch(dir, &["monitor", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hmac key"), "{err}");
    assert!(err.contains("not the deployment's"), "{err}");
    std::fs::write(&hmac, &original).unwrap();
    ok(dropwatch(dir, &["monitor", "list"]));

    // Another seal key file: refused the same way.
    let seal = dir.join("secret-seal.key");
    std::fs::write(&seal, [0x43u8; 32]).unwrap();
    let out = dropwatch(dir, &["institution", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("seal key"), "{err}");
}
