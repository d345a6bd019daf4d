//! Which environment variables look like credentials: the one rule table
//! behind "secrets are never written".
//!
//! A variable is secret-looking when its **name** matches a name rule
//! (case-insensitive, in the spirit of gitleaks' generic keyword rule and
//! detect-secrets' keyword plugin) or its **value** starts like a known
//! credential (a PEM private key, a provider's token prefix, a URL with a
//! password in it). Such a variable is still given to the program; what
//! jailtrace writes (the manifest, the exports, its output) holds its name
//! only. `docs/security.md` lists the same rules for users.
//!
//! The table errs on the side of redacting: a false positive costs a
//! `--record-env NAME`, a false negative a leaked credential.

/// One rule: an id for people and what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// A short name for the rule, shown to users (`name contains TOKEN`).
    pub id: &'static str,
    matcher: Matcher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matcher {
    /// The upper-cased name contains this.
    NameContains(&'static str),
    /// The upper-cased name ends with this.
    NameEndsWith(&'static str),
    /// The upper-cased name starts with this.
    NameStartsWith(&'static str),
    /// The value is this prefix (case-sensitive) and at least this many
    /// more characters of a token's alphabet (`A-Z a-z 0-9 _ -`).
    ValueToken(&'static str, usize),
    /// The value contains this (case-sensitive).
    ValueContains(&'static str),
    /// The value is a URL with a password: `scheme://user:password@host`.
    ValueUrlPassword,
}

const fn rule(id: &'static str, matcher: Matcher) -> Rule {
    Rule { id, matcher }
}

use Matcher::*;

/// The rules, in the order they are tried.
pub const RULES: &[Rule] = &[
    // Names: the keywords secret scanners look for in variable names.
    rule("name contains TOKEN", NameContains("TOKEN")),
    rule("name contains SECRET", NameContains("SECRET")),
    rule("name contains PASSWORD", NameContains("PASSWORD")),
    rule("name contains PASSWD", NameContains("PASSWD")),
    rule("name contains PASSPHRASE", NameContains("PASSPHRASE")),
    rule("name contains CREDENTIAL", NameContains("CREDENTIAL")),
    rule("name contains API_KEY", NameContains("API_KEY")),
    rule("name contains APIKEY", NameContains("APIKEY")),
    rule("name contains PRIVATE_KEY", NameContains("PRIVATE_KEY")),
    rule("name contains ACCESS_KEY", NameContains("ACCESS_KEY")),
    rule("name contains AUTH_KEY", NameContains("AUTH_KEY")),
    rule("name contains COOKIE", NameContains("COOKIE")),
    rule("name ends with _KEY", NameEndsWith("_KEY")),
    rule("name ends with _KEYS", NameEndsWith("_KEYS")),
    rule("name ends with _PASS", NameEndsWith("_PASS")),
    rule("name ends with _PWD", NameEndsWith("_PWD")),
    rule("name ends with _PAT", NameEndsWith("_PAT")),
    rule("name ends with _AUTH", NameEndsWith("_AUTH")),
    rule("name ends with _DSN", NameEndsWith("_DSN")),
    rule("name ends with _SALT", NameEndsWith("_SALT")),
    rule("name is DATABASE_URL", NameEndsWith("DATABASE_URL")),
    // Cloud providers' key and session variables.
    rule("name starts with AWS_ACCESS", NameStartsWith("AWS_ACCESS")),
    rule(
        "name starts with AWS_SESSION",
        NameStartsWith("AWS_SESSION"),
    ),
    rule(
        "name starts with AWS_SECURITY",
        NameStartsWith("AWS_SECURITY"),
    ),
    rule(
        "name starts with AZURE_CLIENT_",
        NameStartsWith("AZURE_CLIENT_"),
    ),
    // Values: what the credential itself looks like, whatever its name.
    rule(
        "value is a PEM private key",
        ValueContains("PRIVATE KEY-----"),
    ),
    rule("value is a GitHub token", ValueToken("ghp_", 8)),
    rule("value is a GitHub token", ValueToken("gho_", 8)),
    rule("value is a GitHub token", ValueToken("ghs_", 8)),
    rule("value is a GitHub token", ValueToken("ghu_", 8)),
    rule("value is a GitHub token", ValueToken("ghr_", 8)),
    rule("value is a GitHub token", ValueToken("github_pat_", 8)),
    rule("value is a GitLab token", ValueToken("glpat-", 8)),
    rule("value is a Slack token", ValueToken("xoxb-", 8)),
    rule("value is a Slack token", ValueToken("xoxp-", 8)),
    rule("value is an AWS access key id", ValueToken("AKIA", 16)),
    rule("value is an AWS access key id", ValueToken("ASIA", 16)),
    rule("value is a Google API key", ValueToken("AIza", 30)),
    rule("value is a Stripe key", ValueToken("sk_live_", 8)),
    rule("value is a Stripe key", ValueToken("rk_live_", 8)),
    rule("value is an npm token", ValueToken("npm_", 8)),
    rule("value is a URL with a password", ValueUrlPassword),
];

impl Rule {
    fn matches(&self, upper_name: &[u8], value: &[u8]) -> bool {
        match self.matcher {
            NameContains(s) => contains(upper_name, s.as_bytes()),
            NameEndsWith(s) => upper_name.ends_with(s.as_bytes()),
            NameStartsWith(s) => upper_name.starts_with(s.as_bytes()),
            ValueToken(prefix, min) => value.strip_prefix(prefix.as_bytes()).is_some_and(|rest| {
                rest.len() >= min
                    && rest
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }),
            ValueContains(s) => contains(value, s.as_bytes()),
            ValueUrlPassword => url_has_password(value),
        }
    }
}

/// The first rule `name=value` matches, if any.
pub fn rule_for(name: &[u8], value: &[u8]) -> Option<&'static Rule> {
    let upper = name.to_ascii_uppercase();
    RULES.iter().find(|r| r.matches(&upper, value))
}

/// The first rule an environment item `KEY=VALUE` matches (a bare `KEY`
/// is checked by name).
pub fn rule_for_item(item: &[u8]) -> Option<&'static Rule> {
    let (name, value) = split_item(item);
    rule_for(name, value)
}

/// `KEY=VALUE` split at the first `=`; a bare `KEY` has an empty value.
pub fn split_item(item: &[u8]) -> (&[u8], &[u8]) {
    match item.iter().position(|&b| b == b'=') {
        Some(i) => (&item[..i], &item[i + 1..]),
        None => (item, &[]),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `scheme://user:password@host…`, with a non-empty password.
fn url_has_password(value: &[u8]) -> bool {
    let Some(start) = value.windows(3).position(|w| w == b"://") else {
        return false;
    };
    let rest = &value[start + 3..];
    let authority_end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.iter().rposition(|&b| b == b'@') else {
        return false;
    };
    let userinfo = &authority[..at];
    matches!(userinfo.iter().position(|&b| b == b':'), Some(c) if c + 1 < userinfo.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, value: &str) -> Option<&'static str> {
        rule_for(name.as_bytes(), value.as_bytes()).map(|r| r.id)
    }

    #[test]
    fn each_name_rule_matches_a_real_variable() {
        let cases = [
            ("GITHUB_TOKEN", "name contains TOKEN"),
            ("vault_token", "name contains TOKEN"),
            ("SECRET_KEY_BASE", "name contains SECRET"),
            ("MYSQL_ROOT_PASSWORD", "name contains PASSWORD"),
            ("HTPASSWD", "name contains PASSWD"),
            ("GPG_PASSPHRASE", "name contains PASSPHRASE"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "name contains CREDENTIAL"),
            ("OPENAI_API_KEY", "name contains API_KEY"),
            ("SENDGRID_APIKEY", "name contains APIKEY"),
            ("SSH_PRIVATE_KEY_FILE", "name contains PRIVATE_KEY"),
            ("MINIO_ACCESS_KEY_ID", "name contains ACCESS_KEY"),
            ("WP_AUTH_KEY_SALT", "name contains AUTH_KEY"),
            ("ERLANG_COOKIE", "name contains COOKIE"),
            ("STRIPE_SIGNING_KEY", "name ends with _KEY"),
            ("JWT_KEYS", "name ends with _KEYS"),
            ("SMTP_PASS", "name ends with _PASS"),
            ("MYSQL_PWD", "name ends with _PWD"),
            ("GITHUB_PAT", "name ends with _PAT"),
            ("NPM_CONFIG__AUTH", "name ends with _AUTH"),
            ("SENTRY_DSN", "name ends with _DSN"),
            ("NONCE_SALT", "name ends with _SALT"),
            ("DATABASE_URL", "name is DATABASE_URL"),
            ("AWS_ACCESS_KEY_ID", "name contains ACCESS_KEY"),
            ("AWS_SESSION_EXPIRATION", "name starts with AWS_SESSION"),
            ("AWS_SECURITY_TOKEN", "name contains TOKEN"),
            ("AWS_SECRET_ACCESS_KEY", "name contains SECRET"),
            ("AZURE_CLIENT_ID", "name starts with AZURE_CLIENT_"),
        ];
        for (name, rule) in cases {
            assert_eq!(id(name, "x"), Some(rule), "{name}");
        }
    }

    #[test]
    fn each_value_rule_matches_whatever_the_name() {
        let cases = [
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl",
                "value is a PEM private key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----",
                "value is a PEM private key",
            ),
            ("ghp_0123456789abcdef", "value is a GitHub token"),
            ("github_pat_11AAAAAAA0123456789", "value is a GitHub token"),
            ("glpat-xxxxxxxxxxxxxxxxxxxx", "value is a GitLab token"),
            ("xoxb-1234-5678-abcdef", "value is a Slack token"),
            ("AKIAIOSFODNN7EXAMPLE", "value is an AWS access key id"),
            (
                "AIzaSyA-0123456789abcdefghijklmnopqrs",
                "value is a Google API key",
            ),
            ("sk_live_0123456789abcdef", "value is a Stripe key"),
            ("npm_0123456789abcdefABCDEF", "value is an npm token"),
            (
                "postgres://app:hunter2@db/app",
                "value is a URL with a password",
            ),
            ("http://u:p@proxy:3128", "value is a URL with a password"),
        ];
        for (value, rule) in cases {
            assert_eq!(id("SETTING", value), Some(rule), "{value}");
        }
    }

    #[test]
    fn ordinary_variables_are_not_secrets() {
        for (name, value) in [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/root"),
            ("PWD", "/"),
            ("OLDPWD", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("TZ", "Asia/Tokyo"),
            ("KEYMAP", "us"),
            ("KEYBOARD_LAYOUT", "de"),
            ("MONKEY", "banana"),
            ("AWS_REGION", "eu-west-1"),
            ("AUTHOR", "someone"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("APACHE_RUN_USER", "www-data"),
            ("http_proxy", "http://proxy:3128"),
            ("URL", "https://user@example.org/x:y@z"),
            ("PASSENGER", "1"),
            ("GREETING", "ASIAN_FOOD"),
            ("NPM_SCRIPT", "npm_install"),
        ] {
            assert_eq!(id(name, value), None, "{name}={value}");
        }
    }

    #[test]
    fn items_split_at_the_first_equals_sign() {
        assert_eq!(split_item(b"A=b=c"), (&b"A"[..], &b"b=c"[..]));
        assert_eq!(split_item(b"A"), (&b"A"[..], &b""[..]));
        assert!(rule_for_item(b"DB_PASSWORD=x=y").is_some());
        assert!(rule_for_item(b"GITHUB_TOKEN").is_some());
    }
}
