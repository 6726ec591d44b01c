//! `-i KEY=VALUE` job inputs.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// Parses one `KEY=VALUE`, splitting at the first `=`; the value may hold anything.
pub(crate) fn parse_input(s: &str) -> anyhow::Result<(String, String)> {
    let (key, value) =
        s.split_once('=').with_context(|| format!("input {s:?} has no '=': write -i KEY=VALUE"))?;
    if key.is_empty() {
        bail!("input {s:?} has an empty name: write -i KEY=VALUE");
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("input name {key:?} contains whitespace");
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Collects inputs, refusing a name given twice.
pub(crate) fn collect_inputs(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    for s in raw {
        let (k, v) = parse_input(s)?;
        if inputs.insert(k.clone(), v).is_some() {
            bail!("input {k:?} is given twice");
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_equals() {
        assert_eq!(parse_input("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_input("A=").unwrap(), ("A".into(), String::new()));
        assert_eq!(
            parse_input("Prompt=a, \"b\"! ünïcode 🐄").unwrap(),
            ("Prompt".into(), "a, \"b\"! ünïcode 🐄".into())
        );
        assert!(parse_input("A").is_err());
        assert!(parse_input("=x").is_err());
        assert!(collect_inputs(&["A=1".into(), "A=2".into()]).is_err());
    }
}
