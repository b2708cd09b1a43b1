//! Turning the user part of a SIP URI into something a CRM can match on:
//! E.164, or an internal extension. A leaf: config, matching and report all
//! use it, and it uses none of the crate.

use std::str::FromStr;

use phonenumber::country::Id as Country;
use regex::Regex;

pub fn parse_country(code: &str) -> Option<Country> {
    if code.len() != 2 {
        return None;
    }
    Country::from_str(&code.to_ascii_uppercase()).ok()
}

/// Normalises numbers with one country and extension rule, built once.
#[derive(Debug, Clone)]
pub struct Normalizer {
    country: Country,
    extension: Regex,
}

impl Normalizer {
    pub fn new(country: Country, extension: Regex) -> Self {
        Normalizer { country, extension }
    }

    /// E.164 (`+14155551212`) for a valid number, the extension as written for
    /// an internal extension, otherwise `None`: an invalid number is never stored
    /// as if it were one, and the raw value is kept beside it by the caller.
    pub fn normalize(&self, raw: &str) -> Option<String> {
        let digits = dial_string(raw)?;
        if self.extension.is_match(&digits) || self.extension.is_match(raw) {
            return Some(digits);
        }
        e164(self.country, &digits)
    }
}

/// A dial string (digits, maybe a leading `+`) as E.164 when it is a valid
/// number; a leading `00` is the international prefix. CRM phone values go
/// through here too, so a number written alike in both ends up identical.
pub(crate) fn e164(country: Country, digits: &str) -> Option<String> {
    let candidate = match digits.strip_prefix("00") {
        Some(rest) if !digits.starts_with('+') => format!("+{rest}"),
        _ => digits.to_owned(),
    };
    let parsed = phonenumber::parse(Some(country), &candidate).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    Some(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Strips visual separators (`tel:+1-201-555-0123`, `(415) 555 0101`) and URI
/// parameters; `None` when what is left is not a dial string.
fn dial_string(raw: &str) -> Option<String> {
    let raw = raw.split(';').next().unwrap_or(raw).trim();
    let mut out = String::with_capacity(raw.len());
    for (i, c) in raw.chars().enumerate() {
        match c {
            '0'..='9' | '*' | '#' => out.push(c),
            '+' if i == 0 => out.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    if out.is_empty() || out == "+" {
        None
    } else {
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Normalizer {
        Normalizer::new(
            parse_country("US").unwrap(),
            Regex::new("^[0-9]{3,5}$").unwrap(),
        )
    }

    #[test]
    fn national_and_international_forms_become_e164() {
        let n = us();
        assert_eq!(n.normalize("4155550101").as_deref(), Some("+14155550101"));
        assert_eq!(
            n.normalize("+1 (415) 555-0101").as_deref(),
            Some("+14155550101")
        );
        assert_eq!(n.normalize("14155550101").as_deref(), Some("+14155550101"));
        assert_eq!(
            n.normalize("00493012345678").as_deref(),
            Some("+493012345678")
        );
        assert_eq!(
            n.normalize("+1-415-555-0101;phone-context=x").as_deref(),
            Some("+14155550101")
        );
    }

    #[test]
    fn extensions_stay_and_junk_is_dropped() {
        let n = us();
        assert_eq!(n.normalize("2001").as_deref(), Some("2001"));
        assert_eq!(n.normalize("alice"), None);
        assert_eq!(n.normalize("123456789012345678"), None);
        assert_eq!(n.normalize("+"), None);
    }
}
