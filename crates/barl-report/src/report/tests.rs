//! Tests of `report`.

use super::*;

#[test]
fn parse_skips_bad_lines_and_keeps_the_later_repeat() {
    let text = concat!(
        "{\"step\":1,\"a\":1.0,\"s\":\"x\"}\n",
        "not json\n",
        "\n",
        "[1,2]\n",
        "{\"step\":2,\"a\":2.0}\n",
        "{\"step\":1,\"a\":5.0}\n",
        "{\"a\":7}\n",
        "{\"step\":4,\"a\":"
    );
    let m = Metrics::parse(text.as_bytes());
    // 7 non-blank lines; lines 2, 4 and 8 are unreadable.
    assert_eq!(m.lines, 7);
    assert_eq!(m.bad_lines, vec![2, 4, 8]);
    assert_eq!(m.repeated_steps, 2);
    // Step 1 is replaced by the later a=5; the step-less line gets the previous line's step
    // plus one, 1 + 1 = 2, so it replaces step 2.
    assert_eq!(m.points("a"), vec![(1.0, 5.0), (2.0, 7.0)]);
    assert!(m.points("s").is_empty());
}

#[test]
fn moving_average_is_trailing() {
    // Window 2: [1, (1+3)/2, (3+5)/2].
    assert_eq!(moving_average(&[1.0, 3.0, 5.0], 2), vec![1.0, 2.0, 4.0]);
    assert_eq!(moving_average(&[], 3), Vec::<f64>::new());
}

#[test]
fn numbers_and_escaping() {
    assert_eq!(fmt_num(0.25), "0.25");
    assert_eq!(fmt_num(20.5), "20.5");
    assert_eq!(fmt_num(3.0), "3");
    assert_eq!(fmt_num(-0.00001), "-1e-5");
    assert_eq!(fmt_num(1e-6), "1e-6");
    assert_eq!(fmt_num(0.123456), "0.1235");
    assert_eq!(fmt_num(-0.00004), "-4e-5");
    assert_eq!(
        escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

#[test]
fn config_keys_found_at_any_depth() {
    let t: toml::Table = "seed = 3\n[rl]\nadv_estimator = \"barl\"\n"
        .parse()
        .unwrap();
    assert_eq!(
        find_config_key(&t, "adv_estimator", ""),
        Some(("rl.adv_estimator".into(), "barl".into()))
    );
    assert_eq!(
        find_config_key(&t, "seed", ""),
        Some(("seed".into(), "3".into()))
    );
    assert_eq!(find_config_key(&t, "model", ""), None);
}
