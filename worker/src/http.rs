//! Plain HTTP values, so routing and error mapping are tested on the host without a runtime.

/// What the router needs to know before the body is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    /// The query string without its `?`, undecoded.
    pub query: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// A head for `target`, a path with an optional `?query`.
    pub fn new(method: &str, target: &str) -> RequestHead {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        RequestHead {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> RequestHead {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// An answer, turned into a platform response by the edge glue: the whole body, or the
/// body's first bytes and a stream that follows them.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Rows the edge streams after `body`, a page at a time.
    pub stream: Option<crate::routes::ExportStream>,
}

impl HttpResponse {
    /// A JSON answer with the headers every API response carries.
    pub fn json(status: u16, body: &impl serde::Serialize, request_id: &str) -> HttpResponse {
        // Serializing our own wire types cannot fail; an empty object keeps the answer valid JSON if it ever did.
        let body = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
        HttpResponse {
            status,
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("cache-control".into(), "no-store".into()),
                ("x-content-type-options".into(), "nosniff".into()),
                ("x-request-id".into(), request_id.into()),
            ],
            body,
            stream: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> HttpResponse {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}
