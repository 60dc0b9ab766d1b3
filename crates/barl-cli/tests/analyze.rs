//! `barl analyze reflections` through the binary, on a two-line fixture.

mod common;

use common::{assert_ok, barl, scratch};

#[test]
fn analyze_reflections_end_to_end() {
    let dir = scratch("analyze-reflections");
    let file = dir.join("eval.jsonl");
    // Two responses: "Wait" (correct) and none (wrong); then a line cut off
    // mid-write, which is ignored with a note.
    std::fs::write(
        &file,
        concat!(
            r#"{"id":"gsm8k/0","benchmark":"gsm8k","prompt":"p","gold":"2","#,
            r#""responses":["Wait, 2","3"],"extracted":["2","3"],"correct":[true,false],"#,
            r#""tokens":[4,2],"truncated":[false,false]}"#,
            "\n",
            r#"{"id":"gsm8k/1","bench"#
        ),
    )
    .unwrap();
    let out = barl()
        .args(["analyze", "reflections", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stats = &v["files"][0]["stats"];
    // 1 of 2 responses reflects; it is correct, the other is not.
    assert_eq!(stats["responses"], 2);
    assert_eq!(stats["share_with_any"], 0.5);
    assert_eq!(stats["acc_with"], 1.0);
    assert_eq!(stats["acc_without"], 0.0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("partial last line"));

    // A missing file: exit code 1 and its path in the one-line error.
    let out = barl()
        .args(["analyze", "reflections"])
        .arg(dir.join("missing.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.jsonl"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
