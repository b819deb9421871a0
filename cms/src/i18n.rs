//! Vietnamese first, English on request. The language comes from `?lang=`, then the `lang`
//! cookie, then `Accept-Language`; Vietnamese when none says otherwise.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().get(..2)?.to_ascii_lowercase().as_str() {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// From the request: explicit choice (query or cookie) beats the browser's header.
    pub fn choose(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| {
                accept
                    .and_then(|a| a.split(',').next())
                    .and_then(Lang::parse)
            })
            .unwrap_or_default()
    }

    /// Picks the string for this language.
    pub fn t<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_order() {
        assert_eq!(Lang::choose(None, None, None), Lang::Vi);
        assert_eq!(Lang::choose(None, None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, Some("vi"), Some("en-US")), Lang::Vi);
        assert_eq!(Lang::choose(Some("en"), Some("vi"), None), Lang::En);
        assert_eq!(Lang::choose(Some("x"), None, Some("fr")), Lang::Vi);
        assert_eq!(Lang::choose(Some("é"), None, None), Lang::Vi);
    }
}
