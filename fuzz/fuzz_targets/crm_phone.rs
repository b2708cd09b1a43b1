//! Any text as a CRM phone value, for an agent's record and anyone else's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::matching::phone::{parse_crm_phone, PhoneRules, PhoneValue};
use pbxbridge::phone::parse_country;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let (Some(country), Ok(ext)) = (parse_country("US"), regex::Regex::new("^[0-9]{2,6}$")) else {
        return;
    };
    let rules = PhoneRules::new(country, ext.clone());
    for agent in [false, true] {
        match parse_crm_phone(raw, &rules, agent) {
            PhoneValue::Valid { number, extension } => {
                assert!(
                    number.starts_with('+') || (agent && ext.is_match(&number)),
                    "{raw:?} → {number:?}"
                );
                assert!(number.len() <= 32);
                if let Some(e) = extension {
                    assert!(
                        !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_digit())
                    );
                }
            }
            PhoneValue::Empty => assert!(raw.trim().is_empty()),
            PhoneValue::Invalid => {}
        }
    }
});
