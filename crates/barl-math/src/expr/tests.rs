//! Tests of the parser and the equivalence test.

use super::compare::*;
use super::parser::*;
use super::tree::*;
use super::*;
use proptest::prelude::*;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

/// Asserts `latex_equal(a, b)` and `latex_equal(b, a)` both give `want`.
fn check(cases: &[(&str, &str, Option<bool>)]) {
    for &(a, b, want) in cases {
        assert_eq!(latex_equal(a, b), want, "latex_equal({a:?}, {b:?})");
        assert_eq!(latex_equal(b, a), want, "latex_equal({b:?}, {a:?})");
    }
}

#[test]
fn expr_numbers_and_fractions() {
    check(&[
        (r"\frac{1}{2}", "0.5", Some(true)),
        (r"\frac{2}{4}", r"\frac12", Some(true)),
        (r"\dfrac{3}{6}", r"\tfrac{1}{2}", Some(true)),
        (r"\frac1{2}", "1/2", Some(true)),
        (r"\frac{1}{2}", r"\frac{1}{3}", Some(false)),
        (r"\frac{1}{2}", "0.50", Some(true)),
        ("0.1+0.2", "0.3", Some(true)), // exact: 1/10 + 2/10 = 3/10
        (r"\frac12 + \frac13", r"\frac56", Some(true)), // 3/6 + 2/6
        (r"\frac{1}{3}", "0.333333", Some(false)), // 1/3 - 0.333333 = 1/3000000
        ("0.999", "1", Some(false)),
        ("-0", "0", Some(true)),
        ("1/2/2", "0.25", Some(true)),             // (1/2)/2
        ("6/2(1+2)", "9", Some(true)),             // left to right: 3 * 3
        (r"2\frac{1}{2}", r"\frac52", Some(true)), // mixed number 2 + 1/2
        (r"2\frac{\sqrt{3}}{3}", r"\frac{2\sqrt3}{3}", Some(true)), // a product
        (r"1{,}000", "1000", Some(true)),
        (r"1\,000", "1000", Some(true)),
        ("1 000 000", "1000000", Some(true)),
        ("12 34", "408", Some(true)), // not a thousands group: 12 * 34
        (r"\$5", "5", Some(true)),
        // 30 digits: beyond f64 precision, exact in i128.
        (
            "123456789012345678901234567890",
            "123456789012345678901234567891",
            Some(false),
        ),
        (".5", r"\frac{1}{2}", Some(true)),
    ]);
}

#[test]
fn expr_scientific_notation_and_percent() {
    check(&[
        ("1.5e-3", r"\frac{3}{2000}", Some(true)), // 1.5/1000 = 3/2000
        (r"1.5\times10^{-3}", "0.0015", Some(true)),
        (r"1.5\cdot 10^3", "1500", Some(true)),
        ("2.5E2", "250", Some(true)),
        ("1e3", "1000", Some(true)),
        ("1.5e-3", "1.5e-4", Some(false)),
        (r"50\%", "0.5", Some(true)),
        ("50%", r"\frac{1}{2}", Some(true)),
        (r"5\%", "0.5", Some(false)),
    ]);
}

#[test]
fn expr_roots_and_powers() {
    check(&[
        (r"\sqrt{8}", r"2\sqrt{2}", Some(true)), // sqrt(4*2) = 2 sqrt 2
        (r"\sqrt[3]{27}", "3", Some(true)),
        (r"\sqrt2", r"\sqrt{2}", Some(true)),
        (r"\sqrt{2}", "1.414", Some(false)),
        (r"\sqrt[3]{-8}", "-2", Some(true)),
        (r"\sqrt{\frac{4}{9}}", r"\frac23", Some(true)),
        (r"\sqrt{12}", r"2\sqrt{3}", Some(true)),
        (r"\sqrt{12}", r"3\sqrt{2}", Some(false)),
        (r"3\sqrt{2}", r"\sqrt{18}", Some(true)),
        (r"\frac{3}{\sqrt{3}}", r"\sqrt3", Some(true)),
        (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", Some(true)),
        (r"\sqrt{2}^2", "2", Some(true)),
        ("(-8)^{1/3}", "-2", Some(true)),
        ("2^{10}", "1024", Some(true)),
        ("2^10", "1024", Some(true)), // plain text takes the whole exponent
        ("2^{-1}", "0.5", Some(true)),
        ("2^-1", r"\frac12", Some(true)),
        ("2^{3^2}", "512", Some(true)), // right associative: 2^9
        ("2^3^2", "512", Some(true)),
        ("-3^2", "-9", Some(true)),
        ("(-3)^2", "9", Some(true)),
        ("2^{100}", "1267650600228229401496703205376", Some(true)),
        ("2^{100}+1", "2^{100}", Some(false)),
        ("sqrt(16)", "4", Some(true)),
        ("sqrt16", "4", Some(true)),   // plain text: whole number
        (r"\sqrt16", "6", Some(true)), // LaTeX: \sqrt{1}6
        (r"\left(\frac{1}{2}\right)^2", r"\frac14", Some(true)),
        (r"30^\circ", "30", Some(true)),
        (r"30^{\circ}", "30", Some(true)),
    ]);
}

#[test]
fn expr_constants_and_infinity() {
    check(&[
        (r"\pi", r"\pi", Some(true)),
        (r"\pi", "e", Some(false)),
        (r"\pi", "3.14", Some(false)),
        (r"\frac{\pi}{2}", "1.5707963", Some(false)), // needs a tolerance
        ("pi/2", r"\frac{\pi}{2}", Some(true)),
        ("e", "2.718281828459045", Some(true)),
        ("e", "2.718", Some(false)),
        (r"\exp(1)", "e", Some(true)),
        (r"\infty", r"\infty", Some(true)),
        (r"-\infty", r"\infty", Some(false)),
        (r"+\infty", r"\infty", Some(true)),
        (r"\infty", "10^{400}", Some(false)),
        (r"\infty", "5", Some(false)),
        (r"\infty+1", r"\infty", None),
    ]);
}

#[test]
fn expr_functions() {
    check(&[
        (r"\sin^2 x + \cos^2 x", "1", Some(true)),
        (r"\sin(2x)", r"2\sin x\cos x", Some(true)),
        (r"\sin 2x", r"2\sin x \cos x", Some(true)),
        (r"\sin x", r"\cos x", Some(false)),
        (r"\cos^2 x - \sin^2 x", r"\cos 2x", Some(true)),
        (r"\sec^2 x - \tan^2 x", "1", Some(true)),
        (r"\cot x", r"\frac{\cos x}{\sin x}", Some(true)),
        (r"\csc x", r"\frac{1}{\sin x}", Some(true)),
        (r"\tan x", r"\frac{\sin x}{\cos x}", Some(true)),
        (r"\sin x^2", r"\sin(x^2)", Some(true)),
        (r"\sin(x)^2", r"\sin^2 x", Some(true)),
        (r"\sin x^2", r"\sin^2 x", Some(false)),
        (r"\tan\frac{\pi}{4}", "1", Some(true)),
        (r"\cos \pi", "-1", Some(true)),
        (r"\sin^{-1}(1)", r"\frac{\pi}{2}", Some(true)),
        (r"\arcsin 1", r"\frac{\pi}{2}", Some(true)),
        (r"\arctan 1", r"\frac{\pi}{4}", Some(true)),
        (r"\log_2 8", "3", Some(true)),
        (r"\log_{10} 1000", "3", Some(true)),
        (r"\log 100", "2", Some(true)), // \log is base 10
        (r"\log_2 x", r"\frac{\ln x}{\ln 2}", Some(true)),
        (r"\ln(e^2)", "2", Some(true)),
        (r"\ln e", "1", Some(true)),
        (r"e^{\ln 5}", "5", Some(true)),
        (r"\sinh x", r"\frac{e^x - e^{-x}}{2}", Some(true)),
        ("sin(x)^2+cos(x)^2", "1", Some(true)),
        ("log(8)/log(2)", "3", Some(true)),
    ]);
}

#[test]
fn expr_factorial_abs_floor_binom() {
    check(&[
        ("3!", "6", Some(true)),
        ("5!", "120", Some(true)),
        ("0!", "1", Some(true)),
        ("10!", "3628800", Some(true)),
        ("4!", "25", Some(false)),
        (r"|{-3}|", "3", Some(true)),
        ("|-3|", "3", Some(true)),
        ("|-3|", "-3", Some(false)),
        (r"\left|x\right|", "|x|", Some(true)),
        ("|x|", "x", Some(false)),
        ("|x|", r"\sqrt{x^2}", Some(true)),
        ("|x-1|", "|1-x|", Some(true)),
        (r"||{-2}|-1|", "1", Some(true)), // |2 - 1|
        ("2|x|", "|2x|", Some(true)),
        (r"\lfloor 3.7 \rfloor", "3", Some(true)),
        (r"\lceil 3.2\rceil", "4", Some(true)),
        (r"\lfloor -3.5 \rfloor", "-4", Some(true)),
        (r"\binom{5}{2}", "10", Some(true)), // 5*4/2
        (r"\binom{n}{2}", r"\frac{n(n-1)}{2}", Some(true)),
        (r"\binom{n}{2}", r"\frac{n(n+1)}{2}", Some(false)),
    ]);
}

#[test]
fn expr_polynomials_and_variables() {
    check(&[
        ("x^2-1", "(x-1)(x+1)", Some(true)),
        ("x^2+1", "(x+1)^2", Some(false)),
        ("(x+1)^2", "x^2+2x+1", Some(true)),
        ("x^2", r"x\cdot x", Some(true)),
        ("2x", "x+x", Some(true)),
        ("2x", "x^2", Some(false)),
        ("xy", "yx", Some(true)),
        ("x y", "xy", Some(true)),
        ("x^2y", "y x^2", Some(true)),
        ("-(x-1)", "1-x", Some(true)),
        (r"\frac{1}{2}x", r"\frac{x}{2}", Some(true)),
        (r"\frac{x+1}{2}", r"\frac{x}{2}+\frac12", Some(true)),
        (r"\frac{x^2-1}{x-1}", "x+1", Some(true)),
        (r"\frac{x}{x}", "1", Some(true)),
        (r"\sqrt{x}\sqrt{x}", "x", Some(true)),
        (r"\sqrt{x^2}", "x", Some(false)),
        (r"\sqrt{x+1}", r"\sqrt{x}+1", Some(false)),
        ("x^{1/2}", r"\sqrt{x}", Some(true)),
        (r"2\pi r", r"2 r \pi", Some(true)),
        (r"\pi r^2", r"r^2\pi", Some(true)),
        (r"2\pi r", r"\pi r", Some(false)),
        ("x", "y", Some(false)),
        ("x+y-y", "x", Some(true)),
        ("x_1 + x_2", "x_2 + x_1", Some(true)),
        ("x_1", "x_2", Some(false)),
        ("a_n", "a_{n}", Some(true)),
        ("e_1 + e", "e + e_1", Some(true)), // e_1 is a variable, e the constant
        ("e_1", "e", Some(false)),
        (r"\alpha + \beta", r"\beta+\alpha", Some(true)),
        (r"\alpha", r"\beta", Some(false)),
        ("[x+1]", "x+1", Some(true)),
        ("{x+1}^2", "(x+1)^2", Some(true)),
        ("(x+1)(x-1)", "x^2-1", Some(true)),
    ]);
}

#[test]
fn expr_imaginary_unit_and_undecidable() {
    check(&[
        (r"e^{i\pi}", "-1", None), // true over C; real sampling cannot tell
        ("i^2", "-1", None),
        ("2i+3", "3+2i", Some(true)),
        (r"\sqrt{-1}", "1", None),
        (r"\frac{1}{0}", "5", None),
        ("2^{99999999}", "2^{99999998}", None),
        ("10^{10^{10}}", "10^{10^{10}}", Some(true)), // identical trees
        ("10^{10^{10}}", "5", None),
        (r"\frac{1}{", "1", None),
        (r"\foo", r"\foo", None),
        ("n!", "n(n-1)!", Some(true)), // decided at the integer sample points
    ]);
}

#[test]
fn expr_tolerance() {
    // pi/2 = 1.57079632679...; |pi/2 - 1.5707963| / (pi/2) = 1.7e-8.
    assert_eq!(
        latex_equal_tol(r"\frac{\pi}{2}", "1.5707963", 1e-4),
        Some(true)
    );
    assert_eq!(latex_equal_tol(r"\pi", "3.14", 1e-4), Some(false)); // 5.1e-4 off
    assert_eq!(latex_equal_tol(r"\frac{1}{3}", "0.3333", 1e-3), Some(true));
    assert_eq!(latex_equal_tol(r"\frac{1}{3}", "0.3", 1e-4), Some(false));
    assert_eq!(latex_equal_tol(r"\frac{1}{2}", "0.5", 0.0), Some(true));
    assert_eq!(latex_equal_tol("1", "2", f64::NAN), None);
    // |0.0001 - 0.0002| is small but not relatively: no absolute slack for constants.
    assert_eq!(latex_equal_tol("0.0001", "0.0002", 1e-4), Some(false));
}

#[test]
fn expr_gamma_based_factorial_and_binomial() {
    let rel = |x: f64, y: f64| ((x - y) / y).abs();
    // ln Γ(1/2) = ln √π
    assert!((ln_gamma(0.5) - 0.5 * PI.ln()).abs() < 1e-12);
    // 50! = 30414093201713378043612608166064768844377641568960512000000000000
    assert!(rel(float_factorial(50.0), 3.041_409_320_171_338e64) < 1e-11);
    assert_eq!(float_factorial(5.0), 120.0);
    assert_eq!(float_factorial(171.0), f64::INFINITY);
    assert!(float_factorial(2.5).is_nan());
    // C(100, 50) = 100891344545564193334812497256
    assert!(rel(float_binom(100.0, 50.0), 1.008_913_445_455_642e29) < 1e-11);
    assert_eq!(float_binom(10.0, 3.0), 120.0); // 10*9*8/6
    assert_eq!(float_binom(3.0, 5.0), 0.0);
    assert_eq!(float_binom(1e6, 5e5), f64::INFINITY);
    // 40! is past the exact range (33!), so this goes through ln Γ.
    check(&[(
        "40!",
        "815915283247897734345611269596115894272000000000",
        Some(true),
    )]);
}

#[test]
fn expr_values() {
    let v = |s: &str| latex_value(s);
    assert_eq!(v(r"\frac{1}{2}"), Some(0.5));
    assert_eq!(v("1.5e-3"), Some(0.0015));
    assert!((v(r"2\sqrt{2}").unwrap() - 2.828_427_124_746_19).abs() < 1e-12);
    assert!((v(r"\frac{\pi}{2}").unwrap() - std::f64::consts::FRAC_PI_2).abs() < 1e-15);
    assert_eq!(v(r"\log_2 8"), Some(3.0));
    assert_eq!(v("x+1"), None);
    assert_eq!(v(r"\infty"), None);
    assert_eq!(v(r"-\infty"), None);
    assert_eq!(v(r"\frac10"), None);
    assert_eq!(v("10^{400}"), None);
    assert_eq!(v(r"\sqrt{-4}"), None);
    assert_eq!(v("garbage)"), None);
}

#[test]
fn expr_api_variables_and_eval() {
    let e = parse(r"x_1^2 + \alpha y").unwrap();
    assert_eq!(e.variables(), vec!["x_1", "alpha", "y"]);
    // 3^2 + 2*0.5 = 10
    assert_eq!(
        e.eval(&[("x_1", 3.0), ("alpha", 2.0), ("y", 0.5)]),
        Ok(10.0)
    );
    assert!(matches!(e.eval(&[("x_1", 3.0)]), Err(ExprError::Eval(_))));
}

#[test]
fn expr_equations() {
    let cases: [(&str, &str, Option<bool>); 9] = [
        ("y = 2x+1", "2x - y + 1 = 0", Some(true)), // (y-2x-1) = -1 * (2x-y+1)
        ("y=2x+1", "y = 2x+2", Some(false)),
        ("x^2+y^2=1", "2x^2+2y^2=2", Some(true)),
        ("x+y=1", "x-y=1", Some(false)),
        ("x = 1", "1 = x", Some(true)),
        (r"y = \frac{1}{2}x", "2y = x", Some(true)),
        ("x+1", "x+1", None), // not equations
        ("x=1=1", "x=1", None),
        ("x = \\frac{1}{", "x=1", None),
    ];
    for (a, b, want) in cases {
        assert_eq!(equations_equal(a, b), want, "equations_equal({a:?}, {b:?})");
        assert_eq!(equations_equal(b, a), want, "equations_equal({b:?}, {a:?})");
    }
}

#[test]
fn expr_parse_errors() {
    assert_eq!(parse(""), Err(ExprError::Empty));
    assert_eq!(parse("  "), Err(ExprError::Empty));
    assert_eq!(parse(r"\foo"), Err(ExprError::UnknownCommand("foo".into())));
    assert!(matches!(parse("(1+2"), Err(ExprError::UnexpectedEnd(_))));
    assert!(matches!(parse("1+"), Err(ExprError::UnexpectedEnd(_))));
    assert!(matches!(
        parse("1)"),
        Err(ExprError::UnexpectedToken { pos: 1, .. })
    ));
    assert!(matches!(
        parse("x=1"),
        Err(ExprError::UnexpectedChar { ch: '=', pos: 1 })
    ));
    assert!(matches!(
        parse("1,2"),
        Err(ExprError::UnexpectedChar { ch: ',', .. })
    ));
    assert!(matches!(
        parse(r"5\text{ cm}"),
        Err(ExprError::Unsupported(_))
    ));
    assert!(matches!(parse("x_"), Err(ExprError::UnexpectedEnd(_))));
    assert!(matches!(
        parse(r"\frac{1}"),
        Err(ExprError::UnexpectedEnd(_))
    ));
    assert!(matches!(parse(r"\sqrt"), Err(ExprError::UnexpectedEnd(_))));
    let long = "1".repeat(MAX_INPUT_CHARS + 1);
    assert_eq!(
        parse(&long),
        Err(ExprError::TooLong {
            len: MAX_INPUT_CHARS + 1,
            max: MAX_INPUT_CHARS
        })
    );
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    assert_eq!(parse(&deep), Err(ExprError::TooDeep { max: MAX_DEPTH }));
    // Error messages name the problem.
    assert_eq!(
        parse(r"\foo").unwrap_err().to_string(),
        r"unknown command \foo"
    );
    // Accepted spellings that are easy to get wrong.
    for ok in [
        r"\mathrm{e}",
        r"\operatorname{sin} x",
        r"\left.\frac{x}{2}\right.",
        r"\left\{x\right\}",
        r"3\cdot 2^{2}",
    ] {
        assert!(parse(ok).is_ok(), "{ok}");
    }
    // About 100 bracket levels are accepted.
    let nested90 = format!("{}1{}", "(".repeat(90), ")".repeat(90));
    assert_eq!(latex_value(&nested90), Some(1.0));
}

/// Every entry point on `s` finishes within 50 ms and does not panic.
fn assert_fast(s: &str) {
    let start = Instant::now();
    let _ = parse(s);
    let _ = latex_equal(s, s);
    let _ = latex_equal(s, "x+1");
    let _ = latex_equal_tol(s, "2", 1e-4);
    let _ = latex_value(s);
    let _ = equations_equal(s, "y=x");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "{took:?} on {:?}",
        &s[..s.len().min(80)]
    );
}

#[test]
fn expr_adversarial_inputs_are_bounded() {
    let nines = "9".repeat(1500);
    let cases = [
        "(".repeat(10_000),
        "{".repeat(10_000),
        format!("{}x{}", "{".repeat(150), "}".repeat(150)),
        format!("{}1{}", "(".repeat(90), ")".repeat(90)),
        "-".repeat(1900) + "1",
        r"\sqrt{".repeat(300),
        r"\frac{1}{".repeat(200),
        "10^{10^{10^{10}}}".to_string(),
        "2^{99999999}".to_string(),
        "2^2^2^2^2^2^2^2^2^2^2^2".to_string(),
        "(10^{10})!".to_string(),
        "1000000!".to_string(),
        r"\binom{10^{30}}{10^{29}}".to_string(),
        r"\binom{1000000}{500000}".to_string(),
        "9".repeat(100_000),
        nines.clone(),
        format!("{nines}e999999999999999999999"),
        "x^{".to_string() + &"2^{".repeat(60) + &"}".repeat(61),
        "1+".repeat(999) + "1",
        "x*".repeat(999) + "x",
        r"\sin ".repeat(300) + "x",
        "|".repeat(1999),
        "a_{".repeat(100),
    ];
    for s in &cases {
        assert_fast(s);
    }
    assert_eq!(latex_value(&("1+".repeat(999) + "1")), Some(1000.0));
}

/// The deepest accepted and the first refused inputs parse and compare on a thread
/// with a 1 MiB stack (half the default of spawned threads; unoptimised builds
/// included, where frames are largest).
#[test]
fn expr_deepest_inputs_fit_in_1mib_stack() {
    let inputs: Vec<String> = vec![
        format!("{}x{}", "(".repeat(99), ")".repeat(99)),
        format!("{}x{}", "(".repeat(120), ")".repeat(120)),
        "-".repeat(1999) + "x",
        r"\frac{1}{".repeat(150) + "x" + &"}".repeat(150),
        r"\sqrt{".repeat(200) + "x" + &"}".repeat(200),
        "x^{".repeat(300) + "x" + &"}".repeat(300),
        "|".repeat(999) + "x" + &"|".repeat(999),
        r"\sin ".repeat(380) + "x",
    ];
    let worker = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let mut accepted = 0;
            for s in &inputs {
                if parse(s).is_ok() {
                    accepted += 1;
                }
                let _ = latex_equal(s, s);
                let _ = latex_equal(s, "y");
                let _ = equations_equal(&format!("{s}=1"), "x=1");
            }
            accepted
        })
        .expect("spawn test thread");
    // Only the 99-deep parentheses are within MAX_DEPTH; the rest are refused.
    assert_eq!(worker.join().expect("no stack overflow"), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn expr_never_panics_on_math_like_strings(
        s in r"[0-9xye.{}()\[\]^_+\-*/|!%=, ]{0,60}|(\\(frac|sqrt|sin|log|pi|infty|cdot|left|right|text)|[0-9x{}^_()|!.\-])*"
    ) {
        assert_fast(&s);
    }

    #[test]
    fn expr_never_panics_on_any_string(s in "\\PC{0,300}") {
        assert_fast(&s);
    }

    #[test]
    fn expr_equal_is_reflexive_on_numbers(n in -1_000_000i64..1_000_000, d in 1i64..1000) {
        let f = format!(r"\frac{{{n}}}{{{d}}}");
        prop_assert_eq!(latex_equal(&f, &f), Some(true));
        // n/d = (2n)/(2d)
        prop_assert_eq!(latex_equal(&f, &format!("{}/{}", 2 * n, 2 * d)), Some(true));
        prop_assert_eq!(latex_equal(&f, &format!("{}/{}", n + 1, d)), Some(false));
    }
}
