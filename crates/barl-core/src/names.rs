//! Enums whose variants are chosen by name (command-line flags, config keys).
//!
//! [`named_enum!`](crate::named_enum) writes the boilerplate every such enum
//! needs: the list of variants, each variant's name, `Display` and `FromStr`
//! (whose error names the kind of value and lists the valid names), and serde
//! by the same names, so a config file and a flag spell a value alike.

/// Declares a fieldless enum with one name per variant, plus
/// `ALL` (every variant, in declaration order), `name()`, `Display`,
/// `FromStr` (error: [`CoreError::UnknownName`](crate::CoreError::UnknownName)),
/// serde's `Serialize`/`Deserialize` as the name, and the derives every such
/// enum has (`Clone, Copy, Debug, PartialEq, Eq`); add others (`Default`,
/// `Hash`, ...) as attributes.
///
/// ```
/// barl_core::named_enum! {
///     /// A colour.
///     pub enum Colour ("colour") {
///         /// Red.
///         Red = "red",
///         /// Dark blue.
///         DarkBlue = "dark-blue",
///     }
/// }
/// assert_eq!("dark-blue".parse::<Colour>().unwrap(), Colour::DarkBlue);
/// assert_eq!(Colour::Red.to_string(), "red");
/// assert!("green".parse::<Colour>().is_err());
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; $crate::__count!($($variant)+)] = [$($name::$variant),+];

            /// The variant's name, as parsed and displayed.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::CoreError;

            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::CoreError> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $crate::CoreError::UnknownName {
                        kind: $kind,
                        got: s.to_string(),
                        valid: $name::ALL
                            .iter()
                            .map(|v| v.name())
                            .collect::<::std::vec::Vec<_>>()
                            .join(", "),
                    })
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let text = <::std::string::String as $crate::__serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}

/// Number of identifiers given (a `const` for [`named_enum!`](crate::named_enum)).
#[doc(hidden)]
#[macro_export]
macro_rules! __count {
    () => { 0usize };
    ($head:ident $($tail:ident)*) => { 1usize + $crate::__count!($($tail)*) };
}

#[cfg(test)]
mod tests {
    crate::named_enum! {
        enum Shape ("shape") {
            Round = "round",
            FlatTop = "flat-top",
        }
    }

    #[test]
    fn names_round_trip_and_errors_list_them() {
        assert_eq!(Shape::ALL, [Shape::Round, Shape::FlatTop]);
        for s in Shape::ALL {
            assert_eq!(s.to_string().parse::<Shape>().unwrap(), s);
        }
        let err = "square".parse::<Shape>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown shape `square`; valid names are: round, flat-top"
        );
    }

    #[test]
    fn serde_uses_the_names() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Row {
            shape: Shape,
        }
        let text = serde_json::to_string(&Row {
            shape: Shape::FlatTop,
        })
        .unwrap();
        assert_eq!(text, r#"{"shape":"flat-top"}"#);
        let back: Row = serde_json::from_str(&text).unwrap();
        assert_eq!(back.shape, Shape::FlatTop);
        let err = serde_json::from_str::<Row>(r#"{"shape":"cube"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unknown shape `cube`; valid names are: round, flat-top"),
            "{err}"
        );
    }
}
