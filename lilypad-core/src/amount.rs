//! Token amounts as people read and write them: `1.5 LP` is
//! 1 500 000 000 000 000 000 base units (the token has 18 decimals).
//!
//! Money is held as [`U256`] base units everywhere; this module is the one place that
//! turns it into text and back. The arithmetic is alloy's
//! [`parse_units`](alloy_primitives::utils::parse_units) and
//! [`format_units`](alloy_primitives::utils::format_units); what is added here is the
//! strictness a payment needs: alloy's parser silently drops decimals beyond the 18th
//! and accepts signs, `_` and empty strings, so the text is checked first and anything
//! that is not exactly an amount is refused with a message that says what to write.

use std::{fmt, str::FromStr};

use alloy_primitives::{
    U256,
    utils::{format_units, parse_units},
};

/// Decimals of the Lilypad token (`LilypadToken` is a plain 18-decimal ERC-20).
pub const DECIMALS: u8 = 18;

/// The token's symbol, as `LilypadToken` declares it.
pub const SYMBOL: &str = "LP";

/// The suffix that marks base units in input and in `--wei` output.
pub const BASE_UNIT: &str = "wei";

/// Why a text is not an amount; every message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Nothing was given.
    #[error("empty amount: write tokens like 1.5 (or 1.5 LP) or base units like 1500 wei")]
    Empty,
    /// The text is not a plain decimal number with an optional unit.
    #[error(
        "{input:?} is not an amount: write tokens like 1.5 (or 1.5 LP) or base units like 1500 wei \
         (digits and one '.', no sign, exponent or separators)"
    )]
    NotANumber {
        /// The text given.
        input: String,
    },
    /// More decimals than the token has.
    #[error(
        "{input:?} has {decimals} decimals; the token has {DECIMALS} (the smallest amount is \
         0.000000000000000001 LP = 1 wei)"
    )]
    TooManyDecimals {
        /// The text given.
        input: String,
        /// How many decimals it has.
        decimals: usize,
    },
    /// A fraction of a base unit.
    #[error(
        "{input:?}: base units (wei) are whole numbers; write tokens like 1.5 LP for fractions"
    )]
    FractionalBaseUnits {
        /// The text given.
        input: String,
    },
    /// More than 2^256 - 1 base units.
    #[error("{input:?} is too large: amounts are at most 2^256 - 1 base units")]
    TooLarge {
        /// The text given.
        input: String,
    },
}

/// A token amount in base units; [`fmt::Display`] writes it in tokens with the unit
/// (`1.001 LP`) and [`FromStr`] reads what [`parse_amount`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub U256);

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {SYMBOL}", format_tokens(self.0))
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_amount(s).map(Self)
    }
}

impl From<U256> for Amount {
    fn from(v: U256) -> Self {
        Self(v)
    }
}

impl From<Amount> for U256 {
    fn from(a: Amount) -> Self {
        a.0
    }
}

/// How amounts are shown to a person: tokens (the default) or base units (`--wei`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmountStyle {
    /// `1.001 LP`.
    #[default]
    Tokens,
    /// `1001000000000000000 wei`.
    BaseUnits,
}

impl AmountStyle {
    /// `amount` in this style, with its unit.
    pub fn format(self, amount: U256) -> String {
        match self {
            Self::Tokens => format_amount(amount),
            Self::BaseUnits => format!("{amount} {BASE_UNIT}"),
        }
    }
}

/// `amount` base units in tokens with the unit, trailing zeros trimmed: `1.001 LP`, `0 LP`.
pub fn format_amount(amount: U256) -> String {
    Amount(amount).to_string()
}

/// `amount` base units in tokens without the unit, trailing zeros trimmed: `1.001`.
pub fn format_tokens(amount: U256) -> String {
    // Unreachable error: 18 is a valid unit. Base units would still be exact.
    let Ok(text) = format_units(amount, DECIMALS) else {
        return format!("{amount} {BASE_UNIT}");
    };
    match text.split_once('.') {
        Some((whole, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() { whole.to_owned() } else { format!("{whole}.{frac}") }
        }
        None => text,
    }
}

/// Reads an amount: tokens (`1.5`, `.5`, `1.5 LP`, `1.5lp`) or base units
/// (`1500000000000000000 wei`, `1500wei`). No sign, exponent, separators or more than
/// [`DECIMALS`] decimals: such text is refused, never rounded.
pub fn parse_amount(input: &str) -> Result<U256, AmountError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (number, base_units) = split_unit(text);
    let number = number.trim_end();
    let not_a_number = || AmountError::NotANumber { input: input.to_owned() };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(not_a_number());
    }
    if base_units {
        if number.contains('.') {
            return Err(AmountError::FractionalBaseUnits { input: input.to_owned() });
        }
    } else if frac.len() > usize::from(DECIMALS) {
        return Err(AmountError::TooManyDecimals { input: input.to_owned(), decimals: frac.len() });
    }
    let decimals = if base_units { 0 } else { DECIMALS };
    // The text is checked above, so alloy can only fail on overflow here.
    parse_units(number, decimals)
        .map(|units| units.get_absolute())
        .map_err(|_| AmountError::TooLarge { input: input.to_owned() })
}

/// Splits a trailing unit off: `(number, is_base_units)`.
fn split_unit(text: &str) -> (&str, bool) {
    let lower = text.to_ascii_lowercase();
    if lower.ends_with(BASE_UNIT) {
        return (&text[..text.len() - BASE_UNIT.len()], true);
    }
    if lower.ends_with(&SYMBOL.to_ascii_lowercase()) {
        return (&text[..text.len() - SYMBOL.len()], false);
    }
    (text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e18() -> U256 {
        U256::from(10u8).pow(U256::from(18u8))
    }

    #[test]
    fn tokens_and_base_units_parse_exactly() {
        let half = e18() / U256::from(2u8);
        assert_eq!(parse_amount("1"), Ok(e18()));
        assert_eq!(parse_amount("1.5"), Ok(e18() + half));
        assert_eq!(parse_amount("1.5 LP"), Ok(e18() + half));
        assert_eq!(parse_amount(" 1.5lp "), Ok(e18() + half));
        assert_eq!(parse_amount(".5"), Ok(half));
        assert_eq!(parse_amount("2."), Ok(e18() * U256::from(2u8)));
        assert_eq!(parse_amount("0.000000000000000001"), Ok(U256::from(1u8)));
        assert_eq!(parse_amount("1500000000000000000 wei"), Ok(e18() + half));
        assert_eq!(parse_amount("1500wei"), Ok(U256::from(1500u16)));
        assert_eq!(parse_amount("0 WEI"), Ok(U256::ZERO));
        assert_eq!(parse_amount("0"), Ok(U256::ZERO));
    }

    #[test]
    fn what_is_not_exactly_an_amount_is_refused() {
        assert_eq!(parse_amount(""), Err(AmountError::Empty));
        assert_eq!(parse_amount("  "), Err(AmountError::Empty));
        for bad in
            ["-1", "+1", "1e18", "1_000", "1,5", "1.2.3", ".", "LP", "wei", "1 2", "0x10", "1 ETH"]
        {
            assert!(
                matches!(parse_amount(bad), Err(AmountError::NotANumber { .. })),
                "{bad:?}: {:?}",
                parse_amount(bad)
            );
        }
        // alloy alone would round this down to 1 LP.
        assert_eq!(
            parse_amount("1.0000000000000000001"),
            Err(AmountError::TooManyDecimals {
                input: "1.0000000000000000001".into(),
                decimals: 19
            })
        );
        assert!(matches!(parse_amount("1.5 wei"), Err(AmountError::FractionalBaseUnits { .. })));
        let max = U256::MAX.to_string();
        assert_eq!(parse_amount(&format!("{max} wei")), Ok(U256::MAX));
        assert!(matches!(parse_amount(&format!("{max}0 wei")), Err(AmountError::TooLarge { .. })));
        assert!(matches!(parse_amount(&max), Err(AmountError::TooLarge { .. })));
    }

    #[test]
    fn errors_say_what_to_write() {
        let msg = parse_amount("1e18").unwrap_err().to_string();
        assert!(msg.contains("1.5 LP") && msg.contains("1500 wei"), "{msg}");
        let msg = parse_amount("0.0000000000000000001").unwrap_err().to_string();
        assert!(msg.contains("19 decimals") && msg.contains("18"), "{msg}");
    }

    #[test]
    fn amounts_format_in_tokens_with_the_unit() {
        assert_eq!(format_amount(U256::ZERO), "0 LP");
        assert_eq!(format_amount(e18()), "1 LP");
        assert_eq!(format_amount(e18() + e18() / U256::from(1000u16)), "1.001 LP");
        assert_eq!(format_amount(U256::from(1u8)), "0.000000000000000001 LP");
        assert_eq!(format_amount(e18() * U256::from(1_000_000u32)), "1000000 LP");
        assert_eq!(format_tokens(e18() / U256::from(4u8)), "0.25");
        assert_eq!(AmountStyle::BaseUnits.format(U256::from(1500u16)), "1500 wei");
        assert_eq!(AmountStyle::Tokens.format(U256::from(1500u16)), "0.0000000000000015 LP");
        assert_eq!(Amount(e18()).to_string(), "1 LP");
    }

    proptest::proptest! {
        #[test]
        fn formatting_then_parsing_gives_the_same_amount(
            limbs in proptest::array::uniform4(0u64..),
            shift in 0usize..256,
        ) {
            // Shifted so that small amounts (a few wei, a few tokens) are as likely as huge ones.
            let v = U256::from_limbs(limbs) >> shift;
            proptest::prop_assert_eq!(parse_amount(&format_amount(v)), Ok(v));
            proptest::prop_assert_eq!(parse_amount(&AmountStyle::BaseUnits.format(v)), Ok(v));
            proptest::prop_assert_eq!(parse_amount(&format_tokens(v)), Ok(v));
        }
    }
}
