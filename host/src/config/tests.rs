//! What an operator sees from the loader: files and variables merged in the
//! documented order, and every mistake named by its key.

use std::time::Duration;

use super::{Config, ConfigError};

/// Loads `toml` as `./sluice.toml` with `vars` as the only `SLUICE_*`
/// variables, inside a figment `Jail` (its own working directory, and a lock so
/// tests that touch the environment run one at a time).
#[allow(clippy::result_large_err)] // figment's `Jail` closure signature is fixed
fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut result = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("plugins")?;
        jail.create_file("sluice.toml", toml)?;
        for (key, value) in vars {
            jail.set_env(key, value);
        }
        result = Some(Config::load(None));
        Ok(())
    });
    result.expect("the jail ran")
}

fn message(result: Result<Config, ConfigError>) -> String {
    result.expect_err("the config is refused").to_string()
}

#[test]
fn defaults_match_the_documentation() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.database_url, "sqlite://sluice.db");
    assert_eq!(config.slots, 8);
    assert_eq!(config.lease, Duration::from_secs(30));
    assert_eq!(config.reaper_interval, Duration::from_secs(10));
    assert_eq!(config.defaults.timeout, Duration::from_secs(600));
    assert_eq!(config.listen, "127.0.0.1:9464");
    assert_eq!(config.retain_done, Duration::from_secs(86_400));
    assert_eq!(config.retain_outputs, None, "outputs are kept unless asked");
}

#[test]
fn outputs_retention_is_read_from_the_file_or_the_environment() {
    let config = load("retain_outputs = \"30days\"", &[]).unwrap();
    assert_eq!(
        config.retain_outputs,
        Some(Duration::from_secs(30 * 86_400))
    );
    let config = load("", &[("SLUICE_RETAIN_OUTPUTS", "2h")]).unwrap();
    assert_eq!(config.retain_outputs, Some(Duration::from_secs(7200)));
    let err = message(load("retain_outputs = \"200years\"", &[]));
    assert!(
        err.contains("`retain_outputs`") && err.contains("at most"),
        "{err}"
    );
}

#[test]
fn the_environment_overrides_the_file_and_task_sections_override_defaults() {
    let config = load(
        r#"
        slots = 2
        lease = "45s"
        [defaults]
        max_attempts = 7
        [tasks.summary]
        timeout = "20s"
        config = { api_mode = "fast" }
        "#,
        &[
            ("SLUICE_SLOTS", "3"),
            ("SLUICE_DEFAULTS__TIMEOUT", "90s"),
            ("SLUICE_TASKS__SUMMARY__MAX_ATTEMPTS", "2"),
        ],
    )
    .unwrap();
    assert_eq!(config.slots, 3);
    assert_eq!(config.lease, Duration::from_secs(45));
    let summary = config.task("summary");
    assert_eq!(summary.timeout, Duration::from_secs(20));
    assert_eq!(summary.max_attempts, 2);
    let other = config.task("other");
    assert_eq!(other.timeout, Duration::from_secs(90));
    assert_eq!(other.max_attempts, 7);
    assert_eq!(config.tasks["summary"].config["api_mode"], "fast");
}

#[test]
fn an_unknown_key_is_named() {
    let err = message(load("slotz = 3", &[]));
    assert!(err.contains("slotz"), "{err}");
    let err = message(load("[tasks.summary]\ntimeuot = \"1s\"", &[]));
    assert!(err.contains("timeuot"), "{err}");
}

#[test]
fn an_unknown_key_names_the_closest_valid_one() {
    let err = message(load("slotz = 3", &[]));
    assert!(
        err.contains("`slotz`: is not a known key (in ") && err.contains("did you mean `slots`?"),
        "{err}"
    );
    let err = message(load("[tasks.summary]\ntimeuot = \"1s\"", &[]));
    assert!(
        err.contains("`tasks.summary.timeuot`") && err.contains("did you mean `timeout`?"),
        "{err}"
    );
    let err = message(load("", &[("SLUICE_DEFAULTS__MAX_ATEMPTS", "3")]));
    assert!(
        err.contains("the environment variable SLUICE_DEFAULTS__MAX_ATEMPTS")
            && err.contains("did you mean `max_attempts`?"),
        "{err}"
    );
    let err = message(load("slots = = 3", &[]));
    assert!(
        err.starts_with("invalid configuration (in ") && err.contains("TOML parse error"),
        "{err}"
    );
    let err = message(load("[limits]\nqqqq = 1", &[]));
    assert!(
        err.contains("the keys here are") && err.contains("`max_output_bytes`"),
        "nothing is close, so every key is listed: {err}"
    );
}

#[test]
fn a_bad_duration_says_which_forms_are_accepted() {
    for (toml, key) in [
        ("lease = \"soon\"", "`lease`: \"soon\" is not a duration"),
        (
            "[defaults]\ntimeout = 30",
            "`defaults.timeout`: signed int `30` is not a duration",
        ),
        (
            "[llm.timeouts]\nidle = \"5 parsecs\"",
            "`llm.timeouts.idle`",
        ),
        (
            "[tasks.a]\ngate_max_wait = \"1x\"",
            "`tasks.a.gate_max_wait`",
        ),
    ] {
        let err = message(load(toml, &[]));
        assert!(
            err.contains(key) && err.contains("\"500ms\", \"30s\", \"10m\""),
            "{toml}: {err}"
        );
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment's `Jail` closure signature is fixed
fn relative_paths_in_the_file_start_at_its_folder() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("etc")?;
        jail.create_dir("etc/plugins")?;
        jail.create_file(
            "etc/sluice.toml",
            "plugins_dir = \"plugins\"\ncache_dir = \"/var/cache/sluice\"\ndatabase_url = \"sqlite:q.db?mode=rwc\"",
        )?;
        let config = Config::load(Some(std::path::Path::new("etc/sluice.toml"))).unwrap();
        assert_eq!(config.plugins_dir, std::path::Path::new("etc/plugins"));
        assert_eq!(
            config.cache_dir.as_deref(),
            Some(std::path::Path::new("/var/cache/sluice")),
            "absolute paths stay"
        );
        assert_eq!(config.database_url, "sqlite://etc/q.db?mode=rwc");
        jail.set_env("SLUICE_PLUGINS_DIR", "mine");
        let config = Config::load(Some(std::path::Path::new("etc/sluice.toml"))).unwrap();
        assert_eq!(
            config.plugins_dir,
            std::path::Path::new("mine"),
            "the environment's paths are the working directory's"
        );
        Ok(())
    });
}

#[test]
fn an_empty_llm_section_is_refused_with_what_is_missing() {
    let err = message(load("[tasks.my-task.llm]\n", &[]));
    assert!(
        err.contains("tasks.my-task.llm") && err.contains("`provider`") && err.contains("`model`"),
        "{err}"
    );
    // No section at all: the task type simply has no LLM access.
    load("[tasks.my-task]\nmax_attempts = 2\n", &[]).unwrap();
}

#[test]
fn a_bad_value_is_named_with_its_key() {
    let err = message(load("lease = \"soon\"", &[]));
    assert!(err.contains("lease"), "{err}");
    let err = message(load("", &[("SLUICE_SLOTS", "many")]));
    assert!(
        err.contains("SLOTS") && err.contains("environment"),
        "{err}"
    );
    let err = message(load("slots = 0", &[]));
    assert!(err.contains("`slots`"), "{err}");
    for share in ["0", "1.5", "nan"] {
        let err = message(load(&format!("suspect_share = {share}"), &[]));
        assert!(
            err.contains("`suspect_share`") && err.contains("at most 1"),
            "{err}"
        );
    }
    let err = message(load("[tasks.summary]\nmax_attempts = 0", &[]));
    assert!(err.contains("tasks.summary.max_attempts"), "{err}");
    let err = message(load("lease = \"10s\"\nheartbeat_interval = \"8s\"", &[]));
    assert!(err.contains("heartbeat_interval"), "{err}");
    let err = message(load("listen = \"everywhere\"", &[]));
    assert!(err.contains("listen"), "{err}");
    let err = message(load("database_url = \"mysql://x\"", &[]));
    assert!(err.contains("database_url"), "{err}");
    let err = message(load("lease = \"2m\"", &[]));
    assert!(
        err.contains("`stall_after`"),
        "a lease longer than stall_after: {err}"
    );
    let err = message(load("max_connections = 1", &[]));
    assert!(
        err.contains("`max_connections`") && err.contains("at least 2"),
        "too few connections: {err}"
    );
    let err = message(load("lease = \"400days\"", &[]));
    assert!(err.contains("`lease`") && err.contains("at most"), "{err}");
    let err = message(load("retain_done = \"200years\"", &[]));
    assert!(
        err.contains("`retain_done`") && err.contains("at most"),
        "{err}"
    );
    let err = message(load("[tasks.summary]\ntimeout = \"30days\"", &[]));
    assert!(err.contains("tasks.summary.timeout"), "{err}");
}

#[test]
fn a_missing_plugins_folder_is_named() {
    let config = load("plugins_dir = \"/nonexistent/plugins\"", &[]).unwrap();
    let err = config.check_plugins_dir().unwrap_err().to_string();
    assert!(err.contains("plugins_dir") && err.contains("/nonexistent/plugins"));
}

#[test]
fn a_missing_config_file_is_an_error() {
    let err = Config::load(Some(std::path::Path::new("/nonexistent/sluice.toml")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/sluice.toml"), "{err}");
}

#[test]
fn secrets_are_redacted_for_printing() {
    let config = load(
        r#"
        database_url = "postgres://app:hunter2@db/queue"
        [tasks.webhook.config]
        url = "https://hooks.example.com/x"
        signing_secret = "s3cr3t"
        "#,
        &[],
    )
    .unwrap();
    let shown = toml::to_string(&config.redacted().unwrap()).unwrap();
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cr3t"),
        "{shown}"
    );
    assert!(shown.contains("https://hooks.example.com/x"), "{shown}");
}

#[test]
fn credentials_are_redacted_in_every_url_and_secret_key() {
    let config = load(
        r#"
        database_url = "postgres://app@db/queue?password=hunter2"
        [tasks.webhook.config]
        url = "https://bot:t0ken@hooks.example.com/x?sig=abc123"
        delivery_token = "tok3n"
        db_password = "pw"
        max_tokens = "256"
        [llm.providers.main]
        kind = "openai"
        base_url = "https://user:pa55@llm.example/v1"
        api_key_env = "MAIN_KEY"
        "#,
        &[],
    )
    .unwrap();
    let shown = config.redacted().unwrap();
    let text = toml::to_string(&shown).unwrap();
    for secret in ["hunter2", "t0ken", "abc123", "tok3n", "\"pw\"", "pa55"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(
        shown["database_url"].as_str(),
        Some("postgres://app@db/queue?password=***")
    );
    let webhook = &shown["tasks"]["webhook"]["config"];
    assert_eq!(
        webhook["url"].as_str(),
        Some("https://***:***@hooks.example.com/x?sig=***")
    );
    assert_eq!(webhook["max_tokens"].as_str(), Some("256"));
    assert_eq!(
        shown["llm"]["providers"]["main"]["api_key_env"].as_str(),
        Some("MAIN_KEY")
    );
}

#[test]
fn limits_and_the_follow_up_policy_reach_each_call() {
    use crate::runtime::EnqueuePolicy;

    let config = load(
        r#"
        [limits]
        max_output_depth = 64
        log_bytes_per_call = 4096
        schema_max_patterns = 8
        [tasks.summary]
        may_enqueue = ["webhook"]
        "#,
        &[("SLUICE_LIMITS__MAX_ENQUEUE_ITEMS", "5")],
    )
    .unwrap();
    let summary = config.call_limits("summary");
    assert_eq!(summary.max_output_depth, 64);
    assert_eq!(summary.log_bytes_per_call, 4096);
    assert_eq!(summary.max_enqueue_items, 5);
    assert!(
        matches!(summary.may_enqueue, EnqueuePolicy::Only(ref list) if list.contains("webhook"))
    );
    assert_eq!(
        config.call_limits("other").may_enqueue,
        EnqueuePolicy::OwnPlugin
    );
    assert_eq!(config.limits.schema().max_patterns, 8);

    let err = message(load("[limits]\nmax_output_depth = 500", &[]));
    assert!(
        err.contains("limits.max_output_depth") && err.contains("at most 100"),
        "{err}"
    );
    let err = message(load("[limits]\nschema_timeout = \"0s\"", &[]));
    assert!(err.contains("limits.schema_timeout"), "{err}");
    let err = message(load("[tasks.summary]\nmay_enqueue = [\"\"]", &[]));
    assert!(err.contains("tasks.summary.may_enqueue[0]"), "{err}");
}

#[test]
fn suspects_get_a_share_of_the_slots_but_at_least_one() {
    let slots = |slots: u32, suspect_share: f64| {
        Config {
            slots,
            suspect_share,
            ..Config::default()
        }
        .suspect_slots()
    };
    assert_eq!(slots(8, 0.25), 2);
    assert_eq!(slots(4, 0.25), 1);
    assert_eq!(slots(2, 0.25), 1, "at least one");
    assert_eq!(slots(6, 1.0), 6);
}

#[test]
fn a_budget_of_zero_is_refused_with_its_key() {
    let provider = "[llm.providers.p]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n";
    for (section, key) in [
        (
            "[llm.providers.p.budget]\nmax_concurrent = 0",
            "llm.providers.p.budget.max_concurrent",
        ),
        (
            "[llm.providers.p.models.m.budget]\nrequests_per_minute = 0",
            "llm.providers.p.models.m.budget.requests_per_minute",
        ),
        (
            "[llm.providers.p.models.\"gpt-4.1\".budget]\ntokens_per_minute = 0",
            "llm.providers.p.models.gpt-4.1.budget.tokens_per_minute",
        ),
    ] {
        let config = load(&format!("{provider}{section}\n"), &[]).unwrap();
        let err = config.network().expect_err("refused").to_string();
        assert!(
            err.contains(key) && err.contains("leave it unset for no limit"),
            "{err}"
        );
    }
    let config = load(
        &format!("{provider}[llm.providers.p.models.m.budget]\nrequests_per_minute = 10\n"),
        &[],
    )
    .unwrap();
    assert!(config.network().is_ok());
    let err = message(load(
        &format!("{provider}[llm.providers.p.models.m]\nrpm = 10\n"),
        &[],
    ));
    assert!(err.contains("rpm"), "an unknown key of a model: {err}");
}
