//! How this process shows token amounts: in tokens with the unit (`1.001 LP`), or in
//! base units with the global `--wei` flag. JSON output is always base units.
//!
//! The choice is set once in `main` from the parsed arguments and read wherever an
//! amount is printed, like a colour setting: threading it through every command's
//! argument struct would add a parameter to dozens of functions for one flag.

use std::sync::OnceLock;

use lilypad_sdk::core::{
    U256,
    amount::{AmountError, AmountStyle, parse_amount},
};

static STYLE: OnceLock<AmountStyle> = OnceLock::new();

/// Sets the style for this process (the first call wins).
pub fn set_base_units(wei: bool) {
    let _ = STYLE.set(if wei { AmountStyle::BaseUnits } else { AmountStyle::Tokens });
}

/// The style in effect.
pub fn style() -> AmountStyle {
    STYLE.get().copied().unwrap_or_default()
}

/// `amount` as a person reads it: `1.001 LP`, or `1001000000000000000 wei` with `--wei`.
pub fn show(amount: U256) -> String {
    style().format(amount)
}

/// The value parser of every amount flag: `1.5`, `1.5 LP`, `1500wei`.
pub fn parse(s: &str) -> Result<U256, AmountError> {
    parse_amount(s)
}
