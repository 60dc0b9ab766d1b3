//! Tests of `normalize`.

use super::*;

fn h(s: &str) -> Option<String> {
    hendrycks_strip(s)
}

fn n(s: &str) -> String {
    normalize_answer(s).text
}

#[test]
fn hendrycks_rules() {
    // Each line: input -> output, worked out by hand from the Python rules.
    assert_eq!(h("\\frac12").as_deref(), Some("\\frac{1}{2}"));
    assert_eq!(h("\\frac1{72}").as_deref(), Some("\\frac{1}{72}"));
    assert_eq!(h("0.5").as_deref(), Some("\\frac{1}{2}"));
    assert_eq!(h("3/4").as_deref(), Some("\\frac{3}{4}"));
    assert_eq!(h("03/4").as_deref(), Some("03/4"));
    assert_eq!(h("\\dfrac{1}{3}").as_deref(), Some("\\frac{1}{3}"));
    assert_eq!(h("\\left( 1, 2 \\right)").as_deref(), Some("(1,2)"));
    assert_eq!(h("90^\\circ").as_deref(), Some("90"));
    assert_eq!(h("\\$5").as_deref(), Some("5"));
    assert_eq!(h("10\\%").as_deref(), Some("10"));
    assert_eq!(h("5\\text{ cm}").as_deref(), Some("5"));
    assert_eq!(h("x = 3").as_deref(), Some("3"));
    assert_eq!(h("abc=3").as_deref(), Some("abc=3"));
    assert_eq!(h(".5").as_deref(), Some("\\frac{1}{2}"));
    assert_eq!(h(".25").as_deref(), Some("0.25"));
    assert_eq!(h("\\sqrt3").as_deref(), Some("\\sqrt{3}"));
    assert_eq!(h("1\\!000").as_deref(), Some("1000"));
    assert_eq!(h("a\\\\b").as_deref(), Some("a\\b"));
    // Where Python raises: a trailing `\frac` / `\sqrt`, two units.
    assert_eq!(h("2\\frac"), None);
    assert_eq!(h("\\sqrt"), None);
    assert_eq!(h("1\\text{ m}\\text{ s}"), None);
    // `\frac` followed by one character: the string is left as it was.
    assert_eq!(h("\\frac1").as_deref(), Some("\\frac1"));
}

#[test]
fn standard_rules() {
    assert_eq!(n("\\dfrac{3}{4}"), "\\frac{3}{4}");
    assert_eq!(n("\\tfrac12"), "\\frac{1}{2}");
    assert_eq!(
        n("\\left( 3, \\frac{\\pi}{2} \\right)"),
        "(3,\\frac{\\pi}{2})"
    );
    assert_eq!(n("10,\\!080"), "10,080");
    assert_eq!(n("10{,}000"), "10,000");
    assert_eq!(n("1\\,000"), "1000");
    assert_eq!(n("\\$32,\\!348"), "32,348");
    assert_eq!(n("864 \\mbox{ inches}^2"), "864");
    assert_eq!(n("5.4 \\text{ cents}"), "5.4");
    assert_eq!(n("\\frac{270}7\\text{ degrees}"), "\\frac{270}{7}");
    assert_eq!(n("90^\\circ"), "90");
    assert_eq!(n("30^{\\circ}"), "30");
    assert_eq!(n("45°"), "45");
    assert_eq!(n("\\text{Evelyn}"), "Evelyn");
    assert_eq!(n("\\text{(C)}"), "(C)");
    assert_eq!(n("x=5"), "5");
    assert_eq!(n("x \\in [-2,7]"), "[-2,7]");
    assert_eq!(n("5x - 7y + 11z + 4 = 0"), "5x-7y+11z+4=0");
    assert_eq!(n("\\$5.00"), "5");
    assert_eq!(n("37.50"), "37.50");
    assert_eq!(n(".5"), "0.5");
    assert_eq!(n("(-.5, 1)"), "(-0.5,1)");
    assert_eq!(n("12 inches"), "12");
    assert_eq!(n("4 square feet"), "4");
    assert_eq!(n("x m"), "xm");
    assert_eq!(n("five"), "5");
    assert_eq!(n("1 and 2"), "1,2");
    assert_eq!(n("\\emptyset"), "{}");
    assert_eq!(n("(-\\infty, \\infty)"), "\\mathbb{R}");
    assert_eq!(n("(0, +\\infty)"), "(0,\\infty)");
    assert_eq!(n("(0, infinity)"), "(0,\\infty)");
    assert_eq!(n("\\{1, 2\\}"), "{1,2}");
    assert_eq!(
        n("\\begin{array}{cc} 1 & 2 \\end{array}"),
        "\\begin{pmatrix}1&2\\end{pmatrix}"
    );
    assert_eq!(
        n("\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}"),
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    );
    assert_eq!(n("\\leftarrow"), "\\leftarrow");
    assert_eq!(n("3 \\le x"), "3\\le x");
    assert_eq!(n("\\sqrt3"), "\\sqrt{3}");
    assert_eq!(n("-3/4"), "\\frac{-3}{4}");
    assert_eq!(n("7."), "7");
    assert_eq!(n("\\(7\\)"), "7");
    assert_eq!(n("3−1"), "3-1");
}

#[test]
fn percent_is_reported() {
    assert_eq!(
        normalize_answer("10\\%"),
        Normalized {
            text: "10".into(),
            percent: true
        }
    );
    assert!(normalize_answer("10 percent").percent);
    assert!(!normalize_answer("10").percent);
}

#[test]
fn helpers() {
    assert_eq!(strip_zero_decimals("5.00"), "5");
    assert_eq!(strip_zero_decimals("2.0x"), "2x");
    assert_eq!(strip_zero_decimals("1.05"), "1.05");
    assert_eq!(replace_word("band and", "and", ","), "band ,");
    assert_eq!(replace_word("\\inf inf", "inf", "\\infty"), "\\inf \\infty");
    assert_eq!(
        remove_command_word("\\left(\\leftarrow", "\\left"),
        "(\\leftarrow"
    );
    assert_eq!(
        strip_commands("\\text{a\\text{b}}c", &["\\text"], true),
        "abc"
    );
    assert_eq!(strip_commands("1\\mbox{ m}2", &["\\mbox"], false), "12");
    assert_eq!(
        strip_commands("\\text{open", &["\\text"], true),
        "\\text{open"
    );
    assert_eq!(
        fix_fracs("\\frac{1}{2}\\frac34").as_deref(),
        Some("\\frac{1}{2}\\frac{3}{4}")
    );
    assert_eq!(fix_a_slash_b("1/2/3"), "1/2/3");
    assert_eq!(fix_a_slash_b("-0/2"), "-0/2");
    assert_eq!(fix_a_slash_b("0/2"), "\\frac{0}{2}");
}
