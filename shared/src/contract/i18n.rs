//! Bilingual text. Spanish is the cooperative's working language and the default;
//! every user-facing sentence carries its English twin so the page can switch without a round trip.

use serde::{Deserialize, Serialize};

/// The two languages Valle speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Es,
    En,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    /// The other language, for the toggle.
    pub fn other(self) -> Lang {
        match self {
            Lang::Es => Lang::En,
            Lang::En => Lang::Es,
        }
    }
}

/// One sentence in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Message {
    pub es: String,
    pub en: String,
}

impl Message {
    pub fn new(es: impl Into<String>, en: impl Into<String>) -> Message {
        Message {
            es: es.into(),
            en: en.into(),
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Es => &self.es,
            Lang::En => &self.en,
        }
    }
}

/// Formats an amount the same way on every target, as each language writes it: thousands
/// grouped (`1.000.000` / `1,000,000`), at most two decimals (`12,5` / `12.5`).
pub fn format_money(value: f64, lang: Lang) -> String {
    let (group, decimal) = match lang {
        Lang::Es => ('.', ','),
        Lang::En => (',', '.'),
    };
    let plain = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    let (sign, unsigned) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(digit);
    }
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}{decimal}{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_as_each_language_writes_it() {
        let check = |value: f64, es: &str, en: &str| {
            assert_eq!(format_money(value, Lang::Es), es);
            assert_eq!(format_money(value, Lang::En), en);
        };
        check(0.0, "0", "0");
        check(100.0, "100", "100");
        check(1_000.0, "1.000", "1,000");
        check(100_000_000.0, "100.000.000", "100,000,000");
        check(12.5, "12,5", "12.5");
        check(1234.25, "1.234,25", "1,234.25");
        check(0.01, "0,01", "0.01");
        check(-1500.5, "-1.500,5", "-1,500.5");
    }

    #[test]
    fn lang_toggle_round_trips() {
        assert_eq!(Lang::default(), Lang::Es);
        assert_eq!(Lang::Es.other(), Lang::En);
        assert_eq!(Lang::En.other().tag(), "es");
    }
}
