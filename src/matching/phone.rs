//! Phone values as CRMs hold them: typed by people, in any format. Each is
//! made the same E.164 string (or internal extension) that `crate::phone` makes of a
//! call's own numbers, so a lookup is a plain string comparison.

use phonenumber::country::Id as Country;
use regex::Regex;

/// Longest raw value worth parsing; anything longer is not one phone number.
const MAX_RAW: usize = 64;
/// Longest extension suffix kept (`phone_index.extension`).
const MAX_EXTENSION: usize = 16;
/// Longest internal extension kept as a number (`phone_index.number`).
const MAX_INTERNAL: usize = 32;

/// What a phone value is read with: the default country for national numbers
/// and the pattern of internal extensions (`pbx.extension_pattern`).
#[derive(Debug, Clone)]
pub struct PhoneRules {
    country: Country,
    extension: Regex,
}

impl PhoneRules {
    pub fn new(country: Country, extension: Regex) -> Self {
        PhoneRules { country, extension }
    }

    /// `None` when `pbx.default_country` or `pbx.extension_pattern` is not
    /// usable (a validated config never is).
    pub fn from_config(pbx: &crate::config::PbxConfig) -> Option<Self> {
        let country = crate::phone::parse_country(&pbx.default_country)?;
        let extension = Regex::new(&pbx.extension_pattern).ok()?;
        Some(PhoneRules::new(country, extension))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhoneValue {
    /// NULL, empty or only blanks: there is nothing to count.
    Empty,
    /// `number` is E.164 (`+14155551212`) or, for agents' records, an internal
    /// extension as dialled (`2001`). `extension` is a suffix such as
    /// `ext. 3`, which dialling the number does not reach.
    Valid {
        number: String,
        extension: Option<String>,
    },
    /// Something was written but it is not a phone number.
    Invalid,
}

impl PhoneValue {
    pub fn number(&self) -> Option<&str> {
        match self {
            PhoneValue::Valid { number, .. } => Some(number),
            _ => None,
        }
    }
}

/// Reads one CRM phone value. `agent`: the record is an agent's (a user), so
/// a value matching the extension pattern is that extension; for any other
/// record a short value like `555` is invalid, not an extension.
pub fn parse_crm_phone(raw: &str, rules: &PhoneRules, agent: bool) -> PhoneValue {
    let value = raw.trim();
    if value.is_empty() {
        return PhoneValue::Empty;
    }
    if value.len() > MAX_RAW {
        return PhoneValue::Invalid;
    }
    let value = strip_tel(value);
    let value = value.split(';').next().unwrap_or(value).trim();
    let (main, extension) = split_extension(value);
    if extension.as_ref().is_some_and(|e| e.len() > MAX_EXTENSION) {
        return PhoneValue::Invalid;
    }
    let main = main.trim();
    if main.is_empty() {
        // "ext. 2001" alone: on an agent's record, the extension itself.
        return match extension {
            Some(e) if agent && rules.extension.is_match(&e) => PhoneValue::Valid {
                number: e,
                extension: None,
            },
            _ => PhoneValue::Invalid,
        };
    }
    // "+44 (0)20 …": the national trunk prefix, written for people dialling
    // from inside the country; it is not part of the international number.
    let international = main.starts_with('+') || main.starts_with("00");
    let main_owned;
    let main = if international && main.contains("(0)") {
        main_owned = main.replace("(0)", "");
        main_owned.as_str()
    } else {
        main
    };
    let Some(digits) = dial_digits(main) else {
        return PhoneValue::Invalid;
    };
    if agent
        && extension.is_none()
        && digits.len() <= MAX_INTERNAL
        && (rules.extension.is_match(&digits) || rules.extension.is_match(main))
    {
        return PhoneValue::Valid {
            number: digits,
            extension: None,
        };
    }
    match crate::phone::e164(rules.country, &digits) {
        Some(number) => PhoneValue::Valid { number, extension },
        None => PhoneValue::Invalid,
    }
}

fn strip_tel(value: &str) -> &str {
    match value.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("tel:") => value.get(4..).unwrap_or("").trim_start(),
        _ => value,
    }
}

/// `+1 415-555-1212 ext. 3` → (`+1 415-555-1212`, `3`). Markers: `ext`,
/// `ext.`, `extension`, `x`, `#`, any case, with or without blanks or `:`.
fn split_extension(value: &str) -> (&str, Option<String>) {
    let head = value.trim_end_matches(|c: char| c.is_ascii_digit());
    let tail = value.get(head.len()..).unwrap_or("");
    if tail.is_empty() {
        return (value, None);
    }
    let before = head.trim_end().trim_end_matches(':').trim_end();
    let lower = before.to_ascii_lowercase();
    for marker in ["extension", "ext.", "ext", "x", "#"] {
        if let Some(cut) = lower.strip_suffix(marker) {
            // "x" must not eat the end of a word ("box 12" is text).
            let word_end = marker.starts_with(|c: char| c.is_ascii_alphabetic())
                && cut.ends_with(|c: char| c.is_ascii_alphabetic());
            if word_end {
                continue;
            }
            let main = before.get(..cut.len()).unwrap_or("");
            return (main, Some(tail.to_owned()));
        }
    }
    (value, None)
}

/// Digits and a leading `+`, with visual separators dropped; `None` when
/// anything else (letters, words) is in the value.
fn dial_digits(main: &str) -> Option<String> {
    let mut out = String::with_capacity(main.len());
    for c in main.chars() {
        match c {
            '0'..='9' => out.push(c),
            '+' if out.is_empty() => out.push(c),
            '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\u{2010}'..='\u{2015}' => {}
            c if c.is_whitespace() => {}
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
    use crate::phone::{parse_country, Normalizer};

    fn us() -> PhoneRules {
        PhoneRules::new(
            parse_country("US").unwrap(),
            Regex::new("^[0-9]{2,6}$").unwrap(),
        )
    }

    fn valid(n: &str, ext: Option<&str>) -> PhoneValue {
        PhoneValue::Valid {
            number: n.into(),
            extension: ext.map(str::to_owned),
        }
    }

    #[test]
    fn messy_values_become_e164() {
        let r = us();
        for (raw, want) in [
            ("(415) 555-1212", valid("+14155551212", None)),
            ("415.555.1212", valid("+14155551212", None)),
            ("4155551212", valid("+14155551212", None)),
            ("+1 415-555-1212", valid("+14155551212", None)),
            ("1-415-555-1212", valid("+14155551212", None)),
            ("00 44 20 7946 0958", valid("+442079460958", None)),
            ("+44 (0)20 7946 0958", valid("+442079460958", None)),
            ("tel:+1-415-555-1212", valid("+14155551212", None)),
            ("TEL:4155551212", valid("+14155551212", None)),
            ("  415 555 1212  ", valid("+14155551212", None)),
            ("415\u{a0}555\u{a0}1212", valid("+14155551212", None)),
        ] {
            assert_eq!(parse_crm_phone(raw, &r, false), want, "{raw:?}");
        }
    }

    #[test]
    fn extension_suffixes_are_kept_apart() {
        let r = us();
        for raw in [
            "+1 415-555-1212 ext. 3",
            "+1 415-555-1212 ext 3",
            "+1 415-555-1212 EXT.3",
            "+1 415-555-1212 extension 3",
            "+1 415-555-1212 Extension: 3",
            "415-555-1212x3",
            "415-555-1212 x 3",
            "415-555-1212 #3",
        ] {
            assert_eq!(
                parse_crm_phone(raw, &r, false),
                valid("+14155551212", Some("3")),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn empty_and_text() {
        let r = us();
        for raw in ["", "   ", "\t"] {
            assert_eq!(parse_crm_phone(raw, &r, false), PhoneValue::Empty);
        }
        for raw in [
            "call me maybe",
            "n/a",
            "none",
            "tel:",
            "+",
            "box 12",
            "555",
            "12",
            "ext. 3",
            "415-555-12",
            "123456789012345678",
            "1-800-FLOWERS",
            "415-555-1212 x 12345678901234567890",
            &"1".repeat(200),
        ] {
            assert_eq!(
                parse_crm_phone(raw, &r, false),
                PhoneValue::Invalid,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn agents_extensions_are_extensions() {
        let r = us();
        assert_eq!(parse_crm_phone("2001", &r, true), valid("2001", None));
        assert_eq!(parse_crm_phone(" 2001 ", &r, true), valid("2001", None));
        assert_eq!(parse_crm_phone("ext. 2001", &r, true), valid("2001", None));
        assert_eq!(parse_crm_phone("2001", &r, false), PhoneValue::Invalid);
        assert_eq!(
            parse_crm_phone("+1 415 555 9001", &r, true),
            valid("+14155559001", None)
        );
        assert_eq!(parse_crm_phone("Ann", &r, true), PhoneValue::Invalid);
    }

    /// A CRM value and a call's number that read the same must be the same
    /// string, or the call would never find its record.
    #[test]
    fn agrees_with_the_call_number_normaliser() {
        let r = us();
        let n = Normalizer::new(
            parse_country("US").unwrap(),
            Regex::new("^[0-9]{2,6}$").unwrap(),
        );
        for raw in [
            "4155550101",
            "+1 (415) 555-0101",
            "14155550101",
            "00493012345678",
            "+1-415-555-0101",
            "(650) 555-0100",
            "2001",
        ] {
            let crm = parse_crm_phone(raw, &r, true);
            assert_eq!(crm.number(), n.normalize(raw).as_deref(), "{raw:?}");
        }
    }
}
