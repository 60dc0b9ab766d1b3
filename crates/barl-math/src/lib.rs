//! Math data, answer extraction and graders for barl.
//!
//! No ML dependencies: everything here works on strings and files, and no input
//! can make it panic or hang.

pub mod arith;
pub mod data;
pub mod evalfile;
pub mod expr;
pub mod extract;
pub mod gradefile;
pub mod grader;
pub mod normalize;
pub mod prompt;
pub mod reflect;
