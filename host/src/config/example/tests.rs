//! The example cannot drift: it is the checked-in file, it is a valid
//! configuration as it stands and with every sample uncommented, and every
//! field of every configuration struct has a row.

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{KEYS, Show, default_values, example, lookup};
use crate::config::{ApiConfig, ApiToken, Config, Limits, TaskSection, TaskSettings};
use crate::outbound::{
    LlmConfig, LlmTimeouts, ModelConfig, ProviderConfig, RetryConfig, TaskHttpConfig,
    TaskLlmConfig, TimeoutOverrides,
};

/// Reads TOML the way `Config::load` reads a file, without the environment.
fn parse(text: &str) -> Config {
    let config: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(text))
        .extract()
        .unwrap_or_else(|err| panic!("the example does not parse: {err}\n{text}"));
    config
        .validate()
        .unwrap_or_else(|err| panic!("the example is refused: {err}"));
    config
}

#[test]
fn the_checked_in_example_is_what_sluice_prints() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sluice.toml");
    let checked_in = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let generated = example();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "deploy/sluice.toml differs from `sluice config --example` from line {}: \
             regenerate it with `cargo run --bin sluice -- config --example > deploy/sluice.toml`",
            line + 1
        );
    }
}

#[test]
fn the_example_as_it_stands_changes_only_the_paths() {
    let config = parse(&example());
    assert_eq!(config.database_url, "sqlite:///var/lib/sluice/sluice.db");
    assert_eq!(
        config.plugins_dir,
        Path::new("/usr/local/lib/sluice/plugins")
    );
    assert_eq!(
        config.cache_dir.as_deref(),
        Some(Path::new("/var/cache/sluice"))
    );
    let expected = Config {
        database_url: config.database_url.clone(),
        plugins_dir: config.plugins_dir.clone(),
        cache_dir: config.cache_dir.clone(),
        ..Config::default()
    };
    assert_eq!(
        toml::Value::try_from(&config).unwrap(),
        toml::Value::try_from(&expected).unwrap()
    );
}

#[test]
fn every_row_is_a_key_of_its_section_when_uncommented() {
    let uncommented: String = example()
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let parsed = toml::Value::try_from(parse(&uncommented)).unwrap();
    for row in KEYS {
        assert!(
            lookup(&parsed, row.path).is_some(),
            "`{}` is not where the example puts it",
            row.path
        );
    }
}

#[test]
fn every_default_row_shows_a_default_value() {
    let defaults = default_values();
    for row in KEYS {
        if let Show::Default = row.show {
            let value = lookup(&defaults, row.path);
            assert!(
                value.is_some_and(|value| !value.is_table()),
                "`{}` has no default value to show: give it a sample",
                row.path
            );
        }
    }
}

#[test]
fn every_field_of_the_configuration_has_a_row() {
    // Each struct of the configuration and the sections its fields may be
    // documented in (an override section may rely on the section it overrides).
    let structs: &[(&str, &[&str], &[&str])] = &[
        ("Config", fields::<Config>(), &[""]),
        ("TaskSettings", fields::<TaskSettings>(), &["defaults"]),
        (
            "TaskSection",
            fields::<TaskSection>(),
            &["tasks.summary", "tasks.webhook", "defaults"],
        ),
        (
            "TaskLlmConfig",
            fields::<TaskLlmConfig>(),
            &["tasks.summary.llm"],
        ),
        (
            "TaskHttpConfig",
            fields::<TaskHttpConfig>(),
            &["tasks.webhook.http"],
        ),
        ("LlmConfig", fields::<LlmConfig>(), &["llm"]),
        ("LlmTimeouts", fields::<LlmTimeouts>(), &["llm.timeouts"]),
        ("RetryConfig", fields::<RetryConfig>(), &["llm.retry"]),
        (
            "ProviderConfig",
            fields::<ProviderConfig>(),
            &["llm.providers.openai"],
        ),
        (
            "ModelConfig",
            fields::<ModelConfig>(),
            &["llm.providers.openai.models.gpt-4o-mini"],
        ),
        (
            "TimeoutOverrides",
            fields::<TimeoutOverrides>(),
            &["llm.providers.openai.timeouts", "llm.timeouts"],
        ),
        ("Limits", fields::<Limits>(), &["limits"]),
        ("ApiConfig", fields::<ApiConfig>(), &["api"]),
        (
            "ApiToken",
            fields::<ApiToken>(),
            &["api.tokens.producer", "api.tokens.ops"],
        ),
    ];
    for (name, fields, sections) in structs {
        assert!(!fields.is_empty(), "{name} has no fields?");
        for field in *fields {
            let documented = sections.iter().any(|section| {
                let path = if section.is_empty() {
                    (*field).to_string()
                } else {
                    format!("{section}.{field}")
                };
                // A map of sections (`tasks`) is documented by its sample sections.
                let under = format!("{path}.");
                KEYS.iter()
                    .any(|row| row.path == path || row.path.starts_with(&under))
            });
            assert!(
                documented,
                "{name}.{field} has no row in config/example.rs (looked in {sections:?}): \
                 add one and regenerate deploy/sluice.toml"
            );
        }
    }
}

/// The field names serde knows for `T`, read from the list its derived
/// `Deserialize` hands to `deserialize_struct`.
fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Introspect(&'static [&'static str]);

    impl<'de> Deserializer<'de> for &mut Introspect {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut introspect = Introspect(&[]);
    let _ = T::deserialize(&mut introspect);
    introspect.0
}
