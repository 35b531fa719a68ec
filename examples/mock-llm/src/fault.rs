//! Fault modes: what can go wrong with a reply, and how a request picks one.
//!
//! A fault is chosen per request by the `x-mock-fault` header, or by a model
//! name of the form `fault:<spec>`; or for the whole server by a rule matched
//! against the prompt, or a server-wide default. Plugins cannot set headers on
//! `llm` calls, so the demo relies on model names and server rules.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// One way a reply misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never send the response headers.
    Hang,
    /// Send the headers and a few chunks of the body, then nothing more.
    Stall,
    /// Send the whole (valid) reply, one byte a second.
    Trickle,
    /// Answer 429 with a `Retry-After` of this many seconds, as a number or
    /// as the HTTP date that many seconds from now.
    RateLimited {
        retry_after_secs: u64,
        http_date: bool,
    },
    /// Answer 500.
    ServerError,
    /// Answer 200 with a body that is not valid JSON (or SSE events that are not).
    Malformed,
    /// Answer 200 with a body far larger than any sensible cap (64 MiB).
    Huge,
    /// Reset the TCP connection before any response bytes.
    Reset,
    /// Send the whole (valid) reply without any token usage, as servers that
    /// ignore `stream_options.include_usage` do.
    NoUsage,
    /// Send the whole (valid) reply with rate-limit headers saying that
    /// `limit` has nothing left until it resets in `reset_secs` seconds.
    Exhausted { limit: Limit, reset_secs: u64 },
}

/// A provider's rate limit, as its headers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }
}

/// A fault and how many matching requests it applies to (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub fault: Fault,
    pub times: Option<u32>,
}

impl FromStr for FaultSpec {
    type Err = String;

    /// `MODE` or `MODE*N`, where MODE is `hang`, `stall`, `trickle`, `429`,
    /// `429:SECONDS`, `429:date:SECONDS`, `500`, `malformed`, `huge`, `reset`,
    /// `no-usage`, `exhausted:requests:SECONDS` or `exhausted:tokens:SECONDS`,
    /// and `*N` limits the fault to the first N requests it
    /// matches (then requests succeed).
    fn from_str(spec: &str) -> Result<Self, String> {
        let (mode, times) = match spec.split_once('*') {
            Some((mode, n)) => {
                let n = n
                    .parse::<u32>()
                    .map_err(|_| format!("`{n}` is not a count in fault `{spec}`"))?;
                (mode, Some(n))
            }
            None => (spec, None),
        };
        let fault = match mode {
            "hang" => Fault::Hang,
            "stall" => Fault::Stall,
            "trickle" => Fault::Trickle,
            "429" => Fault::RateLimited {
                retry_after_secs: 1,
                http_date: false,
            },
            "500" => Fault::ServerError,
            "malformed" => Fault::Malformed,
            "huge" => Fault::Huge,
            "reset" => Fault::Reset,
            "no-usage" => Fault::NoUsage,
            other if other.starts_with("exhausted:") => {
                let rest = &other["exhausted:".len()..];
                let (limit, secs) = rest.split_once(':').ok_or_else(|| {
                    format!("fault `{spec}` is not exhausted:requests:SECONDS or exhausted:tokens:SECONDS")
                })?;
                let limit = match limit {
                    "requests" => Limit::Requests,
                    "tokens" => Limit::Tokens,
                    other => {
                        return Err(format!(
                            "`{other}` is not a rate limit (expected requests or tokens)"
                        ));
                    }
                };
                Fault::Exhausted {
                    limit,
                    reset_secs: secs
                        .parse()
                        .map_err(|_| format!("`{secs}` is not a number of seconds"))?,
                }
            }
            other => match other.strip_prefix("429:") {
                Some(after) => {
                    let (secs, http_date) = match after.strip_prefix("date:") {
                        Some(secs) => (secs, true),
                        None => (after, false),
                    };
                    Fault::RateLimited {
                        retry_after_secs: secs
                            .parse()
                            .map_err(|_| format!("`{secs}` is not a number of seconds"))?,
                        http_date,
                    }
                }
                None => {
                    return Err(format!(
                        "unknown fault mode `{other}` (expected hang, stall, trickle, 429, \
                         429:SECONDS, 429:date:SECONDS, 500, malformed, huge, reset, no-usage \
                         or exhausted:requests|tokens:SECONDS, optionally followed by *N)"
                    ));
                }
            },
        };
        Ok(Self { fault, times })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            Fault::Hang => f.write_str("hang")?,
            Fault::Stall => f.write_str("stall")?,
            Fault::Trickle => f.write_str("trickle")?,
            Fault::RateLimited {
                retry_after_secs,
                http_date: false,
            } => write!(f, "429:{retry_after_secs}")?,
            Fault::RateLimited {
                retry_after_secs,
                http_date: true,
            } => write!(f, "429:date:{retry_after_secs}")?,
            Fault::ServerError => f.write_str("500")?,
            Fault::Malformed => f.write_str("malformed")?,
            Fault::Huge => f.write_str("huge")?,
            Fault::Reset => f.write_str("reset")?,
            Fault::NoUsage => f.write_str("no-usage")?,
            Fault::Exhausted { limit, reset_secs } => {
                write!(f, "exhausted:{}:{reset_secs}", limit.name())?
            }
        }
        match self.times {
            Some(n) => write!(f, "*{n}"),
            None => Ok(()),
        }
    }
}

/// A server-wide rule: requests whose prompt contains `text` get `fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub text: String,
    pub fault: FaultSpec,
}

impl FromStr for FaultRule {
    type Err = String;

    /// `TEXT=SPEC`, split at the last `=`.
    fn from_str(rule: &str) -> Result<Self, String> {
        let (text, spec) = rule
            .rsplit_once('=')
            .ok_or_else(|| format!("fault rule `{rule}` is not TEXT=MODE"))?;
        if text.is_empty() {
            return Err(format!("fault rule `{rule}` has no text to match"));
        }
        Ok(Self {
            text: text.to_owned(),
            fault: spec.parse()?,
        })
    }
}

/// Where a request's fault came from; counted faults (`*N`) count per source.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    Header,
    Model,
    Rule(usize),
    Server,
}

impl Source {
    fn key(self) -> String {
        match self {
            Self::Header => "header".into(),
            Self::Model => "model".into(),
            Self::Rule(i) => format!("rule {i}"),
            Self::Server => "server".into(),
        }
    }
}

/// Counts how often each counted fault has fired.
///
/// A rule names the content it targets, so a rule's count is the rule's own:
/// `TEXT=hang*1` hangs the first request that mentions TEXT and answers every
/// later one, whatever else its prompt holds (a host that retries the item in
/// a smaller batch sends a different prompt). Header, model and server-wide
/// faults count per prompt, so `fault:500*1` fails the first request of every
/// distinct call and lets its retry through.
#[derive(Debug, Default)]
pub(crate) struct Counters(Mutex<HashMap<String, u32>>);

impl Counters {
    /// Whether `spec` still applies to this request (and counts it if so).
    pub(crate) fn fires(&self, source: Source, spec: &FaultSpec, prompt: &str) -> bool {
        let Some(limit) = spec.times else {
            return true;
        };
        let scope = match source {
            Source::Rule(_) => "",
            Source::Header | Source::Model | Source::Server => prompt,
        };
        let key = format!("{}\u{0}{spec}\u{0}{scope}", source.key());
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count < limit {
            *count += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for spec in [
            "hang",
            "stall*2",
            "429:7",
            "429:date:3*1",
            "500*1",
            "reset",
            "huge",
            "trickle",
            "no-usage",
            "exhausted:requests:3",
            "exhausted:tokens:60*2",
        ] {
            let parsed: FaultSpec = spec.parse().unwrap();
            let expected = if spec == "429" { "429:1" } else { spec };
            assert_eq!(parsed.to_string(), expected);
        }
        assert_eq!(
            "429".parse::<FaultSpec>().unwrap().fault,
            Fault::RateLimited {
                retry_after_secs: 1,
                http_date: false,
            }
        );
        assert!("melt".parse::<FaultSpec>().is_err());
        assert!("exhausted:bytes:3".parse::<FaultSpec>().is_err());
        assert!("exhausted:requests".parse::<FaultSpec>().is_err());
        assert!("hang*x".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn rules_split_at_the_last_equals_sign() {
        let rule: FaultRule = "a=b=hang*1".parse().unwrap();
        assert_eq!(rule.text, "a=b");
        assert_eq!(rule.fault.times, Some(1));
        assert!("=hang".parse::<FaultRule>().is_err());
    }

    #[test]
    fn counted_faults_fire_per_prompt_but_per_rule_for_rules() {
        let counters = Counters::default();
        let spec: FaultSpec = "hang*1".parse().unwrap();
        assert!(counters.fires(Source::Model, &spec, "one"));
        assert!(!counters.fires(Source::Model, &spec, "one"));
        assert!(counters.fires(Source::Model, &spec, "two"));
        assert!(counters.fires(Source::Rule(0), &spec, "carol: a, b, c"));
        assert!(!counters.fires(Source::Rule(0), &spec, "carol: a, b"));
        assert!(counters.fires(Source::Rule(1), &spec, "carol: a, b"));
    }
}
