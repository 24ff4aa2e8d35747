//! Bilingual text. Spanish is the cooperative's working language and the default;
//! every user-facing sentence carries its English twin so the page can switch without a round trip.

use serde::{Deserialize, Serialize};

/// The two languages Valle speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Formats a money amount the same way on every target: no grouping, at most two decimals.
pub fn format_money(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_formatting_is_plain_and_stable() {
        let check = |value: f64, expected: &str| assert_eq!(format_money(value), expected);
        check(0.0, "0");
        check(1_000_000.0, "1000000");
        check(12.5, "12.5");
        check(12.25, "12.25");
        check(0.01, "0.01");
    }

    #[test]
    fn lang_toggle_round_trips() {
        assert_eq!(Lang::default(), Lang::Es);
        assert_eq!(Lang::Es.other(), Lang::En);
        assert_eq!(Lang::En.other().tag(), "es");
    }
}
