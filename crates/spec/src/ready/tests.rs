//! Tests of [`super`].
use super::*;

fn parse(s: &str) -> Condition {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
}

fn error(s: &str) -> String {
    match s.parse::<Condition>() {
        Ok(c) => panic!("`{s}` should not parse, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_every_form() {
    assert!(matches!(parse("exit"), Condition::Exit));
    for addr in [
        "127.0.0.1:8080",
        "[::1]:80",
        "localhost:5432",
        "db_1.local:1",
    ] {
        match parse(&format!("tcp:{addr}")) {
            Condition::Tcp { addr: a } => assert_eq!(a, addr),
            c => panic!("{c:?}"),
        }
    }
    let http = |s: &str| match parse(s) {
        Condition::Http(HttpUrl { host, port, path }) => (host, port, path),
        c => panic!("{c:?}"),
    };
    assert_eq!(
        http("http://localhost"),
        ("localhost".into(), 80, "/".into())
    );
    assert_eq!(
        http("http:http://127.0.0.1:8080/health?x=1#top"),
        ("127.0.0.1".into(), 8080, "/health?x=1".into())
    );
    assert_eq!(
        http("HTTP://[::1]:81/a/b"),
        ("[::1]".into(), 81, "/a/b".into())
    );
    assert_eq!(http("http://h?q"), ("h".into(), 80, "/?q".into()));
    match parse("log:^listening on port \\d+$") {
        Condition::Log(re) => assert!(re.is_match("listening on port 80")),
        c => panic!("{c:?}"),
    }
    // A regex may hold colons.
    assert!(matches!(parse("log:a:b"), Condition::Log(re) if re.as_str() == "a:b"));
    assert!(matches!(parse("alive:2s"), Condition::Alive(d) if d == Duration::from_secs(2)));
}

#[test]
fn display_gives_back_the_cli_form() {
    for s in [
        "exit",
        "tcp:127.0.0.1:8080",
        "tcp:[::1]:22",
        "http://localhost/",
        "http://127.0.0.1:8080/health?x=1",
        "http://[::1]:81/",
        "log:^ready$",
        "alive:500ms",
        "alive:2s",
        "alive:5m",
        "alive:1h",
    ] {
        assert_eq!(parse(s).to_string(), s);
    }
    assert_eq!(parse("http://h:80").to_string(), "http://h/");
    assert_eq!(parse("alive:90").to_string(), "alive:90s");
    assert_eq!(parse("alive:1m30s").to_string(), "alive:90s");
    assert_eq!(parse("alive:1.5s").to_string(), "alive:1500ms");
}

#[test]
fn parse_errors_say_what_is_wrong() {
    assert_eq!(
        error("foo"),
        "unknown readiness condition `foo` (expected exit, tcp:HOST:PORT, http:URL, log:REGEX, alive:DURATION, notify or pidfile:PATH)"
    );
    assert!(error("").starts_with("unknown readiness condition ``"));
    assert!(error("port:80").starts_with("unknown readiness condition `port:80`"));
    assert!(error("exit:0").contains("takes no argument"));
    assert!(error("tcp").contains("expected tcp:HOST:PORT"));
    assert!(error("tcp:8080").contains("missing port"));
    assert!(error("tcp::8080").contains("missing host"));
    assert!(error("tcp:h:").contains("missing port"));
    assert!(error("tcp:h:0").contains("invalid port `0`"));
    assert!(error("tcp:h:99999").contains("invalid port `99999`"));
    assert!(error("tcp:h:http").contains("invalid port `http`"));
    assert!(error("tcp:::1:80").contains("goes in brackets"));
    assert!(error("tcp:[::g]:80").contains("not an IPv6 address"));
    assert!(error("tcp:a b:80").contains("not a host name"));
    let https = error("https://example.org/");
    assert!(
        https.contains("https is not supported") && https.contains("TLS"),
        "{https}"
    );
    assert!(error("http:https://example.org/").contains("https is not supported"));
    assert!(error("http:ftp://h/").contains("not supported"));
    assert!(error("http:localhost:8080").contains("not an http:// URL"));
    assert!(error("http://").contains("missing host"));
    assert!(error("http://u:p@h/").contains("passwords"));
    assert!(error("http://h:x/").contains("invalid port"));
    assert!(error("http://h/a b").contains("percent-encode"));
    assert!(error("log:").contains("empty regex"));
    let re = error("log:(unclosed");
    assert!(
        re.starts_with("invalid regex in readiness condition `log:(unclosed`"),
        "{re}"
    );
    assert!(error("alive").contains("alive:DURATION"));
    assert!(error("alive:soon").contains("invalid duration `soon`"));
}

#[test]
fn durations() {
    let ms = |s: &str| parse_duration(s).map(|d| d.as_millis());
    assert_eq!(ms("500ms"), Ok(500));
    assert_eq!(ms("30s"), Ok(30_000));
    assert_eq!(ms("5m"), Ok(300_000));
    assert_eq!(ms("5min"), Ok(300_000));
    assert_eq!(ms("1h"), Ok(3_600_000));
    assert_eq!(ms("2"), Ok(2_000));
    assert_eq!(ms(" 0.25 "), Ok(250));
    assert_eq!(ms("1.5s"), Ok(1_500));
    assert_eq!(ms("1m30s"), Ok(90_000));
    assert_eq!(ms("0s"), Ok(0));
    for bad in [
        "",
        "s",
        "5x",
        "1.2.3s",
        "0.0001s",
        "1m30",
        "-1s",
        "99999999999999999999h",
        "6000000000000h",
    ] {
        let e = parse_duration(bad).expect_err(bad);
        assert!(e.starts_with(&format!("invalid duration `{bad}`")), "{e}");
    }
}

#[test]
fn notify_and_pidfile() {
    assert!(matches!(parse("notify"), Condition::Notify));
    assert!(
        matches!(parse("pidfile:/run/nginx.pid"), Condition::PidFile(p) if p == std::path::Path::new("/run/nginx.pid"))
    );
    for c in ["notify", "pidfile:/run/x.pid"] {
        assert_eq!(parse(c).to_string(), c);
    }
    assert!("notify:x".parse::<Condition>().is_err());
    assert!("pidfile:run/x".parse::<Condition>().is_err());
    assert!("pidfile".parse::<Condition>().is_err());
}
