//! Tool arguments that fail as tool errors naming the argument at fault.
//!
//! rmcp's own `Parameters<T>` extraction reports a bad argument as serde
//! does ("invalid type: string, expected u64"), without saying which one.
//! `Args<T>` always deserializes; the tool then turns a failure into a tool
//! error whose message starts with the argument's path.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The arguments of a tool call: parsed, or why not.
#[derive(Debug)]
pub(crate) struct Args<T>(pub Result<T, String>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Args<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Args(serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." { e.inner().to_string() } else { format!("{path}: {}", e.inner()) }
        })))
    }
}

// The schema is the arguments' own: the wrapper is invisible on the wire.
impl<T: JsonSchema> JsonSchema for Args<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        space: String,
        #[allow(dead_code)]
        expect_seq: Option<u64>,
    }

    fn parse(json: &str) -> Result<Sample, String> {
        serde_json::from_str::<Args<Sample>>(json).map(|a| a.0).unwrap_or_else(|e| Err(e.to_string()))
    }

    #[test]
    fn a_wrongly_typed_argument_is_named() {
        let e = parse(r#"{"space":"s","expect_seq":"three"}"#).unwrap_err();
        assert!(e.starts_with("expect_seq: invalid type"), "{e}");
    }

    #[test]
    fn a_missing_or_unknown_argument_is_named() {
        assert!(parse("{}").unwrap_err().contains("missing field `space`"));
        assert!(parse(r#"{"space":"s","why":"x"}"#).unwrap_err().contains("unknown field `why`"));
    }
}
