//! Query strings: decoding and encoding them, and the one rule set every list endpoint pages
//! by (`limit` within the endpoint's bounds, a cursor the previous page gave).

use std::str::FromStr;

use crate::contract::codes::ErrorCode;
use crate::contract::errors::FieldError;
use crate::contract::i18n::Message;

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte); bytes
/// that are not UTF-8 become U+FFFD, so they fail the value's own check.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// `path?k=v&…` from the pairs whose value is not empty, each value encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
        query.append_pair(key, value);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` as one path segment (`a b/c` is `a%20b%2Fc`).
pub fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A refused query parameter, with the message its code implies unless `message` says more.
pub fn query_error(field: &str, code: ErrorCode, message: Option<Message>) -> FieldError {
    FieldError {
        field: field.chars().take(64).collect(),
        code,
        rule: None,
        message: message.unwrap_or_else(|| match code {
            ErrorCode::UnknownField => Message::new("Parámetro desconocido.", "Unknown parameter."),
            _ => Message::new(
                "Valor no válido para este parámetro.",
                "Invalid value for this parameter.",
            ),
        }),
    }
}

/// `value` when nothing was refused, else every refusal.
pub fn unless_refused<T>(value: T, errors: Vec<FieldError>) -> Result<T, Vec<FieldError>> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// The page size of every list without `limit`.
pub const DEFAULT_LIMIT: usize = 50;

/// How one list endpoint pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRules {
    /// The page size without `limit`.
    pub default_limit: usize,
    /// The largest `limit`.
    pub max_limit: usize,
}

/// The parameter of every list that carries where the page starts: the `next_cursor` the
/// previous page answered.
pub const CURSOR: &str = "cursor";

/// `GET /api/v1/dead-letters`: newest first; the cursor is a letter's id.
pub const DEAD_LETTER_PAGES: PageRules = PageRules::up_to(500);

/// `GET /api/v1/webhooks/dead-letters`: newest first; the cursor is a dead letter's id.
pub const WEBHOOK_DEAD_LETTER_PAGES: PageRules = PageRules::up_to(500);

/// `GET /api/v1/audit`: newest first; the cursor is an entry's sequence number.
pub const AUDIT_PAGES: PageRules = PageRules::up_to(500);

/// `GET /api/v1/reviews`: oldest first; the cursor is the last case's queue position.
pub const REVIEW_PAGES: PageRules = PageRules::up_to(200);

/// `GET /api/v1/kpis/windows`: newest first; the cursor is a window's start.
pub const WINDOW_PAGES: PageRules = PageRules::up_to(1000);

/// The page a list query asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<C> {
    pub limit: usize,
    pub cursor: Option<C>,
}

impl<C> Page<C> {
    /// The first page of up to `limit` rows.
    pub fn first(limit: usize) -> Page<C> {
        Page {
            limit,
            cursor: None,
        }
    }

    /// Where the page after `rows` starts: the last row's cursor when this page came back
    /// full, none when it was the last.
    pub fn next<T, N>(&self, rows: &[T], cursor_of: impl Fn(&T) -> N) -> Option<N> {
        (rows.len() == self.limit)
            .then(|| rows.last().map(cursor_of))
            .flatten()
    }
}

impl PageRules {
    /// Pages of [`DEFAULT_LIMIT`] unless `limit` asks for up to `max_limit`.
    pub const fn up_to(max_limit: usize) -> PageRules {
        PageRules {
            default_limit: DEFAULT_LIMIT,
            max_limit,
        }
    }

    /// Reads `limit` and the cursor from `query`; every other parameter goes to `other`,
    /// which returns whether it knew it. Every bad parameter is reported at once: `limit`
    /// outside 1..=`max_limit` is `E_RANGE`, a cursor `C` cannot read is `E_FORMAT`, an
    /// unknown parameter `E_UNKNOWN_FIELD`.
    pub fn parse<C: FromStr>(
        self,
        query: &str,
        mut other: impl FnMut(&str, &str, &mut Vec<FieldError>) -> bool,
    ) -> Result<Page<C>, Vec<FieldError>> {
        let mut page = Page {
            limit: self.default_limit,
            cursor: None,
        };
        let mut errors = Vec::new();
        for (key, value) in parse_query(query) {
            let refusal = if key == "limit" {
                match value.parse::<usize>() {
                    Ok(limit) if (1..=self.max_limit).contains(&limit) => {
                        page.limit = limit;
                        None
                    }
                    _ => Some((
                        ErrorCode::Range,
                        format!("Debe ser un entero de 1 a {}.", self.max_limit),
                        format!("Must be an integer from 1 to {}.", self.max_limit),
                    )),
                }
            } else if key == CURSOR {
                page.cursor = value.parse::<C>().ok();
                page.cursor.is_none().then(|| {
                    (
                        ErrorCode::Format,
                        "Use el next_cursor que dio la página anterior.".to_owned(),
                        "Use the next_cursor the previous page gave.".to_owned(),
                    )
                })
            } else {
                if !other(&key, &value, &mut errors) {
                    errors.push(query_error(&key, ErrorCode::UnknownField, None));
                }
                None
            };
            if let Some((code, es, en)) = refusal {
                errors.push(query_error(&key, code, Some(Message::new(es, en))));
            }
        }
        unless_refused(page, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::errors::field_codes;

    const RULES: PageRules = PageRules::up_to(500);

    fn check(query: &str, expected: Result<Page<u64>, &[(&str, ErrorCode)]>) {
        let got = RULES.parse::<u64>(query, |key, value, errors| match key {
            "status" if value == "open" => true,
            "status" => {
                errors.push(query_error(key, ErrorCode::Enum, None));
                true
            }
            _ => false,
        });
        match (got, expected) {
            (Ok(page), Ok(expected)) => assert_eq!(page, expected, "{query}"),
            (Err(errors), Err(codes)) => assert_eq!(field_codes(&errors), codes, "{query}"),
            (got, expected) => panic!("{query}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn every_list_pages_by_the_same_rules() {
        check(
            "",
            Ok(Page {
                limit: 50,
                cursor: None,
            }),
        );
        check(
            "limit=500&cursor=41&status=open",
            Ok(Page {
                limit: 500,
                cursor: Some(41),
            }),
        );
        check(
            "limit=0&cursor=x&status=shut&sql=1%3BDROP",
            Err(&[
                ("limit", ErrorCode::Range),
                ("cursor", ErrorCode::Format),
                ("status", ErrorCode::Enum),
                ("sql", ErrorCode::UnknownField),
            ]),
        );
        check("limit=501", Err(&[("limit", ErrorCode::Range)]));
        check("limit=2.5", Err(&[("limit", ErrorCode::Range)]));
        check("cursor=-1", Err(&[("cursor", ErrorCode::Format)]));
    }

    #[test]
    fn queries_decode_and_encode_as_forms_do() {
        assert_eq!(
            parse_query("a=1+2&b=%41%42&c&=x&d=%zz&e=%C3%B1&f=%FF"),
            [
                ("a", "1 2"),
                ("b", "AB"),
                ("c", ""),
                ("", "x"),
                ("d", "%zz"),
                ("e", "ñ"),
                ("f", "\u{FFFD}"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            with_query(
                "/api/v1/x",
                &[
                    ("from", "2026-11-23T00:00:00Z"),
                    ("to", ""),
                    ("branch", "a b&c")
                ]
            ),
            "/api/v1/x?from=2026-11-23T00%3A00%3A00Z&branch=a+b%26c"
        );
        assert_eq!(with_query("/api/v1/x", &[("to", "")]), "/api/v1/x");
        assert_eq!(path_segment("id/../a b~ñ"), "id%2F..%2Fa%20b~%C3%B1");
        for text in ["a b&c=d", "ñandú/%", "+"] {
            let url = with_query("/p", &[("q", text)]);
            let (_, query) = url.split_once('?').expect("a query");
            assert_eq!(parse_query(query), [("q".to_owned(), text.to_owned())]);
        }
    }

    #[test]
    fn a_full_page_points_at_the_next_and_a_short_one_ends() {
        let page = Page::<u64> {
            limit: 3,
            cursor: None,
        };
        let seq = |row: &u64| *row;
        assert_eq!(page.next(&[9, 8, 7], seq), Some(7));
        assert_eq!(page.next(&[9, 8], seq), None);
        assert_eq!(page.next(&[], seq), None);
    }
}
