//! Small fieldless enums that are one byte in MessagePack (a trace file,
//! through [`crate::codec::Codec`]) and a readable name in JSON (or any
//! human-readable serde format).

/// Defines `enum $name { $variant = code => "json name", ... }` with
/// `Serialize`/`Deserialize` that write the code in binary formats and the
/// name in human-readable ones, and accept either when reading.
macro_rules! small_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal $(| $alias:literal)*,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name used in JSON output and on the command line.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The one-byte code used in trace files.
            pub fn code(self) -> u8 {
                match self { $($name::$variant => $code,)+ }
            }

            pub fn from_code(code: u8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }

            /// The variant of a name (or of one of its aliases).
            pub fn from_name(name: &str) -> Option<$name> {
                match name { $($text $(| $alias)* => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                $name::from_name(s).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                    format!("unknown {} '{s}' (one of: {})", stringify!($name), names.join(", "))
                })
            }
        }

        // The command line takes the same names (and aliases).
        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                $name::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(match self { $($name::$variant => clap::builder::PossibleValue::new($text)$(.alias($alias))*,)+ })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() { s.serialize_str(self.name()) } else { s.serialize_u8(self.code()) }
            }
        }

        impl $crate::codec::Codec for $name {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                $(const _: () = assert!($code < 128, "codes are positive fixints");)+
                out.push(self.code());
            }
            #[inline]
            fn empty() -> Self {
                $name::ALL[0]
            }
            #[inline]
            fn decode(r: &mut $crate::codec::Rd<'_>) -> Result<Self, $crate::codec::DecodeError> {
                let code = r.uint(stringify!($name))?;
                u8::try_from(code).ok().and_then($name::from_code)
                    .ok_or($crate::codec::DecodeError::UnknownVariant { ty: stringify!($name), index: code })
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a {} code or name", stringify!($name))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        u8::try_from(v).ok().and_then($name::from_code)
                            .ok_or_else(|| E::custom(format!("unknown {} code {v}", stringify!($name))))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        self.visit_u64(u64::try_from(v).map_err(|_| E::custom("negative code"))?)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).ok_or_else(|| E::custom(format!("unknown {} {v:?}", stringify!($name))))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

pub(crate) use small_enum;
