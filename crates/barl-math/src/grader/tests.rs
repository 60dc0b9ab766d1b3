//! Tests of `grader`.

use super::*;

#[test]
fn names() {
    assert_eq!(grader_by_name("standard").map(|g| g.name()), Ok("standard"));
    assert_eq!(
        grader_by_name("reference").map(|g| g.name()),
        Ok("reference")
    );
    let err = grader_by_name("sympy")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("sympy") && err.contains("standard, reference"),
        "{err}"
    );
}

/// (pred, gold, equal) under `standard`. Expected values are the mathematical
/// answer (with the arithmetic in a comment where it is not obvious) or the
/// documented convention.
const STANDARD_PAIRS: &[(&str, &str, bool)] = &[
    // Fractions and decimals.
    ("0.5", "\\frac12", true),
    ("\\frac{1}{2}", "0.5", true),
    ("1/2", "\\frac{1}{2}", true),
    ("\\dfrac{1}{2}", "\\frac12", true),
    ("\\tfrac12", "\\frac{1}{2}", true),
    ("0.50", "\\frac{1}{2}", true),
    (".5", "1/2", true),
    ("\\frac{6}{8}", "\\frac{3}{4}", true),
    ("\\frac{5}{16}", "\\frac{3}{8}", false),
    ("\\frac{-3}{4}", "-\\frac34", true),
    ("-3/4", "-0.75", true),
    ("0.33333", "\\frac13", true), // |1/3-0.33333| = 3.3e-6 <= 1e-4 * 0.333
    ("0.333", "\\frac13", false),  // 3.3e-4 > 3.3e-5
    ("\\frac{14}{3}", "4.6667", true), // 4.666667: diff 3.3e-5 <= 4.7e-4
    ("\\frac{14}{3}", "4.67", false), // diff 3.3e-3 > 4.7e-4
    ("3.14159", "3.1416", true),   // diff 1e-5 <= 3.1e-4
    ("3.14", "3.1416", false),     // diff 1.6e-3 > 3.1e-4
    ("37.5", "37.50", true),
    ("0", "0.0", true),
    ("0", "0.0001", false),
    ("-4", "-4.0", true),
    ("-4", "4", false),
    ("+5", "5", true),
    // An integer gold is exact: 1e-4 relative would accept 9999 for 10000.
    ("9999", "10000", false),
    ("9999.857", "10000", false),
    ("9999\\frac{6}{7}", "10000", false),
    ("1.00001", "1", false),
    ("1e4", "10000", true),
    ("\\frac{20000}{2}", "10000", true),
    (
        "123456789012345678901234567890123456789012",
        "123456789012345678901234567890123456789013",
        false,
    ),
    (
        "123456789012345678901234567890123456789012",
        "123,456,789,012,345,678,901,234,567,890,123,456,789,012",
        true,
    ),
    // Any other gold within 1e-4 relative.
    ("1", "1.00001", true),
    ("1", "1.0002", false),
    ("9999.5", "10000.5", true),
    ("1.00001e400", "1e400", true),
    ("1e401", "1e400", false),
    ("-1e400", "1e400", false),
    ("10000.0", "10000", true),
    ("6287000", "6290000", false),
    ("123456789012345678901", "123456789012345678902", false),
    // Thousands separators.
    ("1000", "1,000", true),
    ("1,000", "1000", true),
    ("1,000,000", "1000000", true),
    ("10{,}000", "10000", true),
    ("1\\,000", "1000", true),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", true),
    ("\\$32,\\!348", "32348", true),
    ("58,500", "58500", true),
    ("1,000.5", "1000.5", true),
    ("1,00", "100", false),     // not groups of three: a list (1, 00)
    ("(1,000)", "1000", false), // inside brackets commas separate elements
    ("(1,000)", "(1,0)", true),
    // Percent forms (only when a percent sign is present).
    ("10\\%", "0.1", true),
    ("10\\%", "10", true),
    ("0.1", "10\\%", true),
    ("10", "10\\%", true),
    ("10 percent", "0.1", true),
    ("25\\%", "\\frac14", true),
    ("0.1", "10", false),
    ("12.5", "25", false),
    // Mixed numbers and scientific notation.
    ("1\\frac{1}{4}", "1.25", true),
    ("1\\frac{1}{4}", "\\frac54", true),
    ("1 \\frac{1}{4}", "1\\frac{1}{4}", true),
    ("1\\frac{1}{10}", "1\\frac{1}{9}", false),
    ("12\\frac{3}{5}", "12.6", true),
    ("2.5\\times10^{3}", "2500", true),
    ("2500", "2.5\\times 10^3", true),
    ("1e-3", "0.001", true),
    // Units, money, degrees, words.
    ("\\$5.00", "5", true),
    ("5 \\text{ cm}", "5", true),
    ("864 \\mbox{ inches}^2", "864", true),
    ("5.4 \\text{ cents}", "5.4", true),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", true),
    ("90^\\circ", "90", true),
    ("45°", "45^{\\circ}", true),
    ("12 inches", "12", true),
    ("4 square feet", "4", true),
    ("five", "5", true),
    ("\\text{Evelyn}", "Evelyn", true),
    ("evelyn", "\\text{Evelyn}", true),
    ("\\text{(C)}", "C", true),
    ("(C)", "\\text{(C)}", true),
    ("A", "C", false),
    ("\\text{east}", "east", true),
    ("west", "\\text{east}", false),
    ("\\textbf{even}", "\\text{even}", true),
    ("4:30", "4:30p..", false),
    // Symbolic equality.
    ("\\sqrt{8}", "2\\sqrt{2}", true),
    ("2\\sqrt{2}", "\\sqrt{8}", true),
    ("\\frac{\\pi}{2}", "1.5707963", true), // pi/2 = 1.57079633
    ("1.5707963", "\\frac{\\pi}{2}", true),
    ("1.57", "\\frac{\\pi}{2}", false), // diff 8e-4 > 1.6e-4
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", true),
    ("\\sqrt{2}/2", "\\frac{\\sqrt2}{2}", true),
    ("3\\sqrt{13}", "\\sqrt{117}", true), // 9 * 13 = 117
    ("\\sqrt{34}+3\\sqrt{10}", "28", false),
    ("\\sqrt{16}", "4", true),
    ("2^{10}", "1024", true),
    ("10^{10^{10}}", "1", false),
    ("4a-2", "-2+4a", true),
    ("2(2a-1)", "4a-2", true),
    ("x^2+2x+1", "(x+1)^2", true),
    ("x^2+1", "(x+1)^2", false),
    ("7\\pi", "7 \\pi", true),
    ("21.991", "7\\pi", true), // 7 pi = 21.99115
    ("22", "7\\pi", false),
    ("\\frac{3\\sqrt{3}}{4}", "\\frac{3}{4}\\sqrt{3}", true),
    ("\\sin(\\pi/6)", "\\frac12", true),
    ("1 \\pm \\sqrt{19}", "1\\pm\\sqrt{19}", true),
    // Tuples, intervals, sets, unions.
    ("(1,2)", "(2,1)", false),
    ("(1, 2)", "\\left(1,2\\right)", true),
    ("[0,1)", "(0,1]", false),
    ("[0,1)", "[0,1)", true),
    ("[0,1]", "(0,1)", false),
    ("(1,2)", "[1,2]", false),
    ("(0.5, 1)", "(\\frac12, 1)", true),
    (
        "(3,\\frac{\\pi}{2})",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        true,
    ),
    ("(1,2,3)", "(1,2)", false),
    ("(-\\infty, 0]", "(-\\infty,0]", true),
    ("(2, \\infty)", "(2,+\\infty)", true),
    ("(2, \\infty)", "[2, \\infty)", false),
    ("(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)", true),
    ("(9,36) \\cup (0,9)", "(0,9)\\cup(9,36)", true),
    ("(0,9] \\cup (9,36)", "(0,9)\\cup(9,36)", false),
    ("x \\in [-2,7]", "[-2,7]", true),
    ("(-\\infty,\\infty)", "\\mathbb{R}", true),
    ("1, -2", "-2, 1", true),
    ("3, 5, 7", "7,5,3", true),
    ("1,2", "1,3", false),
    ("\\{1, 2\\}", "\\{2, 1\\}", true),
    ("\\{1,2\\}", "1,2", true),
    ("\\{1,2\\}", "\\{1,2,3\\}", false),
    ("(1,2)", "1,2", true),
    ("x=1, y=2", "(1,2)", true),
    ("(5)", "5", true),
    // Matrices.
    (
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        true,
    ),
    (
        "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        true,
    ),
    (
        "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}",
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        false,
    ),
    (
        "\\begin{pmatrix}1&2\\end{pmatrix}",
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
        false,
    ),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "\\begin{pmatrix}-\\frac13\\\\ \\frac23 \\\\ \\frac53\\end{pmatrix}",
        true,
    ),
    (
        "\\begin{pmatrix}0.5\\\\1\\end{pmatrix}",
        "\\begin{pmatrix}\\frac12\\\\1\\end{pmatrix}",
        true,
    ),
    (
        "\\begin{array}{cc}1&0\\\\0&1\\end{array}",
        "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}",
        true,
    ),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)", true),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(2,1)", false),
    // Equations and assignments.
    ("x=3", "3", true),
    ("3", "x=3", true),
    ("x = 3", "x=3", true),
    ("y=3", "3", true),
    ("x=4", "3", false),
    ("k = 7", "7", true),
    ("f(x)=2x", "2x", true),
    // An equation against a value states its last side, as in Math-Verify
    // (`|PQ|=3` = `3`, `3 \cdot 4 = 12` = `12`).
    // One answer in several forms, each equal to the gold.
    ("\\frac{7}{4}, 1.75", "\\frac{7}{4}", true),
    ("\\frac{7}{4}, 1.5", "\\frac{7}{4}", false),
    // Relations and the intervals they describe.
    ("y \\geq 4", "y >= 4", true),
    ("4 \\geq y", "y \\le 4", true),
    ("-y > -2", "y < 2", true),
    ("-y > -2", "y > 2", false),
    ("x \\le 3", "(-\\infty, 3]", true),
    ("x < 3", "(-\\infty, 3]", false),
    ("-3 \\le x < 8", "[-3, 8)", true),
    ("x<-2, x>3", "(-\\infty,-2)\\cup(3,\\infty)", true),
    ("\\{x \\mid 2 \\le x < 5\\}", "[2,5)", true),
    ("4! = 24", "24", true),
    ("\\pm 2", "2, -2", true),
    ("\\pm 2", "2", false),
    ("2000,75", "2000.75", true),
    ("2000,750", "2000.75", false),
    ("1.5", "1,5", false),
    ("a+b=3", "3", true),
    ("a+b=3", "4", false),
    ("w=2+2=4", "4", true),
    ("w=2+2=4", "5", false),
    ("y=2x+1", "y=1+2x", true),
    ("5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0", true),
    ("x^2+y^2=1", "x^2+y^2=4", false),
    // Empty and degenerate.
    ("", "5", false),
    ("5", "", false),
    ("\\frac", "\\frac", true),
];

#[test]
fn standard_pairs() {
    let g = StandardGrader::default();
    let mut wrong = Vec::new();
    for &(p, gold, want) in STANDARD_PAIRS {
        let v = g.grade(p, gold);
        if v.correct != want {
            wrong.push(format!(
                "{p:?} vs {gold:?}: got {} ({}), want {want}",
                v.correct, v.reason
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// (pred, gold, equal) under `reference`, worked out from Hendrycks' rules.
const REFERENCE_PAIRS: &[(&str, &str, bool)] = &[
    ("\\frac12", "0.5", true), // both -> \frac{1}{2}
    ("0.5", "\\frac{1}{2}", true),
    ("1/2", "\\frac12", true),
    ("\\dfrac{1}{2}", "\\frac{1}{2}", true),
    ("\\tfrac{3}{4}", "3/4", true),
    ("\\frac1{72}", "\\frac{1}{72}", true),
    ("\\left(1,2\\right)", "(1,2)", true),
    ("(1,2)", "(2,1)", false),
    ("[0,1)", "(0,1]", false),
    ("x=3", "3", true),
    ("k = 7", "7", true),
    ("abc=3", "3", false),
    ("10\\%", "10", true),
    ("10\\%", "0.1", false),
    ("90^\\circ", "90", true),
    ("5\\text{ cm}", "5", true),
    ("\\$5", "5", true),
    ("1\\!000", "1000", true),
    ("1,000", "1000", false),
    ("0.50", "\\frac12", false), // only the exact string 0.5 becomes \frac{1}{2}
    (".5", "0.5", true),
    ("3.0", "3", false),
    ("\\sqrt{8}", "2\\sqrt{2}", false),
    ("\\sqrt2", "\\sqrt{2}", true),
    ("2 \\sqrt 2", "2\\sqrt{2}", false), // \sqrt is fixed before spaces go: \sqrt{ }2
    ("A", "A", true),
    ("A", "B", false),
    ("2\\frac", "2\\frac", true), // stripping raises: raw strings compared
    ("2\\frac", "2\\frac ", false),
];

#[test]
fn reference_pairs() {
    let g = ReferenceGrader;
    for &(p, gold, want) in REFERENCE_PAIRS {
        let v = g.grade(p, gold);
        assert_eq!(v.correct, want, "{p:?} vs {gold:?} ({})", v.reason);
    }
}

#[test]
fn enough_hand_written_pairs() {
    assert!(STANDARD_PAIRS.len() + REFERENCE_PAIRS.len() >= 150);
}

/// Grades with both graders and extracts, asserting each verdict takes < 50 ms.
fn check_bounded(a: &str, b: &str) {
    use crate::extract::{extract_answer, ExtractOptions};
    let start = std::time::Instant::now();
    let _ = extract_answer(a, &ExtractOptions::default());
    let _ = extract_answer(b, &ExtractOptions::default());
    for grader in [&StandardGrader::default() as &dyn Grader, &ReferenceGrader] {
        // The fastest of up to three timings: the machine is shared, and a
        // descheduled thread is not a slow verdict.
        let mut ms = f64::INFINITY;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let _ = grader.grade(a, b);
            let _ = grader.grade(b, a);
            ms = ms.min(t.elapsed().as_secs_f64() * 1e3 / 2.0);
            if ms < 50.0 {
                break;
            }
        }
        assert!(
            ms < 50.0,
            "{} took {ms:.1} ms on {:?} / {:?}",
            grader.name(),
            short(a),
            short(b)
        );
    }
    assert!(start.elapsed().as_secs_f64() < 2.0);
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

#[test]
fn adversarial_inputs_are_bounded() {
    let deep_braces = format!("{}1{}", "{".repeat(20_000), "}".repeat(20_000));
    let deep_parens = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
    let deep_frac = format!("{}1{}", "\\frac{1}{".repeat(200), "}".repeat(200));
    let deep_sqrt = format!("{}2{}", "\\sqrt{".repeat(300), "}".repeat(300));
    let towers = [
        "10^{10^{10}}",
        "10^{10^{10^{10}}}",
        "9^{9^{9^{9^{9}}}}",
        "2^{-10^{10}}",
    ];
    let long_digits = "9".repeat(100_000);
    let long_sum = "\\frac{1}{2}+".repeat(8_000) + "1";
    let long_tuple = format!("({})", vec!["1"; 30_000].join(","));
    let just_under = format!("({})", vec!["x^2+1"; 80].join(","));
    let many_boxes = "\\boxed{".repeat(30_000);
    let unclosed = "\\boxed{\\frac{".repeat(10_000);
    let cases: Vec<String> = [
        deep_braces,
        deep_parens,
        deep_frac,
        deep_sqrt,
        long_digits,
        long_sum,
        long_tuple,
        just_under,
        many_boxes,
        unclosed,
        "\\begin{pmatrix}".repeat(500),
        "1,".repeat(2_000),
        "x=".repeat(1_000),
        "\\left(".repeat(2_000),
        "\u{0}\u{fffd}\u{202e}é∞π".repeat(1_000),
    ]
    .into_iter()
    .chain(towers.iter().map(|s| s.to_string()))
    .collect();
    for a in &cases {
        for b in &cases {
            check_bounded(a, b);
        }
        check_bounded(a, "1");
        check_bounded(a, "(1,2)");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that exercise every rule, concatenated at random.
    fn latexish() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "{",
            "}",
            "(",
            ")",
            "[",
            "]",
            ",",
            "=",
            "&",
            "\\\\",
            "\\frac",
            "\\frac{",
            "\\sqrt",
            "\\sqrt{",
            "\\boxed{",
            "\\fbox",
            "\\text{",
            "\\mbox{ ",
            "\\left(",
            "\\right)",
            "\\begin{pmatrix}",
            "\\end{pmatrix}",
            "\\cup",
            "^",
            "^{",
            "_",
            "10",
            "0",
            "9",
            "1",
            ".",
            "-",
            "+",
            "\\%",
            "%",
            "$",
            "\\$",
            "{,}",
            "\\!",
            "e",
            "x",
            "y",
            "\\pi",
            "\\infty",
            "\\circ",
            " ",
            "\\times10^{",
            "1,000",
            "#### ",
            "The answer is ",
            "final answer is $",
            "$. I hope",
            "é",
            "\u{0}",
        ]);
        prop::collection::vec(pieces, 0..120).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn arbitrary_strings(a in any::<String>(), b in any::<String>()) {
            check_bounded(&a, &b);
        }

        #[test]
        fn latex_like_strings(a in latexish(), b in latexish()) {
            check_bounded(&a, &b);
        }

        #[test]
        fn graders_are_reflexive_on_plain_numbers(n in -1_000_000i64..1_000_000, d in 1u32..5) {
            let s = format!("{:.*}", d as usize, n as f64 / 7.0);
            prop_assert!(StandardGrader::default().grade(&s, &s).correct);
            prop_assert!(ReferenceGrader.grade(&s, &s).correct);
            // A different integer is never equal to an integer gold.
            let other = (n + 1).to_string();
            prop_assert!(!StandardGrader::default().grade(&other, &n.to_string()).correct);
        }
    }
}

#[test]
fn number_parsing() {
    let v = |s: &str| parse_number(s).map(|n| n.value);
    assert_eq!(v("1,000"), Some(1000.0));
    assert_eq!(v("1,00"), None);
    assert_eq!(v("-3.25"), Some(-3.25));
    assert_eq!(v("\\frac{3}{4}"), Some(0.75));
    assert_eq!(v("-\\frac{3}{4}"), Some(-0.75));
    assert_eq!(v("\\frac{-3}{4}"), Some(-0.75));
    assert_eq!(v("1\\frac{1}{4}"), Some(1.25));
    assert_eq!(v("-1\\frac{1}{4}"), Some(-1.25));
    assert_eq!(v("2.5\\times10^{3}"), Some(2500.0));
    assert_eq!(v("2.5e3"), Some(2500.0));
    assert_eq!(v("\\frac{1}{0}"), None);
    assert_eq!(v("1e999"), Some(f64::INFINITY)); // kept exactly as digits; see number.rs
    assert_eq!(v("x"), None);
    assert_eq!(parse_number("123").and_then(|n| n.int()), Some(123));
}

#[test]
fn long_numbers_follow_the_same_rule() {
    // 100k digits: over MAX_INPUT, so only the linear number path sees them.
    let digits: String = (0..100_000)
        .map(|i| char::from(b'1' + (i % 9) as u8))
        .collect();
    let head = digits.len() % 3;
    let mut grouped = digits[..head].to_string();
    for (i, chunk) in digits.as_bytes()[head..].chunks(3).enumerate() {
        if i > 0 || head > 0 {
            grouped.push(',');
        }
        grouped.push_str(std::str::from_utf8(chunk).unwrap());
    }
    let latex_grouped = grouped.replace(',', "{,}");
    let g = StandardGrader::default();
    assert!(g.grade(&grouped, &digits).correct);
    assert!(g.grade(&digits, &latex_grouped).correct);
    assert!(g.grade(&grouped.replace(',', "\\,"), &digits).correct);
    // The last digit differs: an integer gold is exact at any length.
    let mut off = digits.clone();
    off.pop();
    off.push('0');
    assert!(!g.grade(&off, &digits).correct);
    assert!(!g.grade(&format!("-{digits}"), &digits).correct);
    // A long decimal gold: 1e-4 relative, read from the digits.
    let gold = format!("1.{}", "0".repeat(5000));
    assert!(g.grade("1.00001", &gold).correct);
    assert!(!g.grade("1.001", &gold).correct);
    // Long text that is not one number is still compared as a string.
    let text = format!("x = {digits}");
    assert!(!g.grade(&text, &digits).correct);
    assert!(g.grade(&text, &text).correct);
    assert_eq!(
        g.grade(&text, &format!("{text} ")).reason,
        "identical strings"
    );
}

#[test]
fn verdicts_past_the_time_limit_are_not_equal() {
    use super::{GraderOptions, StandardGrader, TIMED_OUT};
    use std::time::Duration;
    let none = StandardGrader {
        options: GraderOptions {
            time_limit: Duration::ZERO,
            ..GraderOptions::default()
        },
    };
    let v = none.grade("\\frac{1}{2}", "0.5");
    assert_eq!((v.correct, v.reason), (false, TIMED_OUT));
    // Identical strings need no comparison step.
    assert!(none.grade("7", "7").correct);
    let default = StandardGrader::default();
    assert_eq!(default.options.time_limit, Duration::from_secs(5));
    assert!(default.grade("\\frac{1}{2}", "0.5").correct);
}
