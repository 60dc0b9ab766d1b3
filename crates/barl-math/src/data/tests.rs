//! Tests of `data`.

use super::*;

#[test]
fn strip_dollars_keeps_escaped_dollar() {
    assert_eq!(strip_dollars("$10-4 n$"), "10-4 n");
    assert_eq!(strip_dollars("$69$,$84$"), "69,84");
    assert_eq!(strip_dollars(r"$\$ 3040$"), r"\$ 3040");
    assert_eq!(strip_dollars("12"), "12");
}

#[test]
fn number_text_drops_integral_fraction() {
    let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
    assert_eq!(number_text(&n("27.0")), "27");
    assert_eq!(number_text(&n("-1.0")), "-1");
    assert_eq!(number_text(&n("0.5")), "0.5");
    assert_eq!(number_text(&n("3159")), "3159");
}

#[test]
fn split_instruction_finds_trailing_box_instruction() {
    let (q, i) = split_instruction(
        "Find $x$.\nPlease reason step by step, and put your final answer within \\boxed{}.",
    )
    .unwrap();
    assert_eq!(q, "Find $x$.");
    assert!(i.starts_with("Please reason"));
    let (q, _) = split_instruction(
        "Solve $x+1=2$. Let's think step by step and output the final answer within \\boxed{}.",
    )
    .unwrap();
    assert_eq!(q, "Solve $x+1=2$.");
    // No \boxed in the tail: left alone.
    assert_eq!(
        split_instruction("Let's think step by step about cats."),
        None
    );
}

#[test]
fn lookup_prefers_literal_then_dotted() {
    let obj: Map<String, Value> =
        serde_json::from_str(r#"{"a.b": 1, "a": {"b": 2, "c": {"d": 3}}}"#).unwrap();
    assert_eq!(lookup(&obj, "a.b"), Some(&Value::from(1)));
    assert_eq!(lookup(&obj, "a.c.d"), Some(&Value::from(3)));
    assert_eq!(lookup(&obj, "a.x"), None);
}
