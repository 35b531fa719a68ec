//! An audit log of plugin side effects, written by the test rather than read
//! back from the store: an [`Outbound`] whose `llm` import records which host
//! called it for which item, when the call began and when it ended.
//!
//! The adversary plugin's `llm-call` task type sends its payload's messages
//! to the `llm` import, so an item whose payload is [`payload`]`(key, n)`
//! makes one audited call per attempt. The end of a call is recorded by a
//! drop guard, so a call the host cancels (the unit timed out, its claim was
//! lost, the host shut down) is closed too, at the moment it was dropped.
//!
//! From the log a test can prove what the final state alone cannot show: that
//! two calls for one unit never ran at the same moment (a unit was never held
//! twice), and how many times each item's side effect really happened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice::imports::{CallContext, Outbound};
use sluice::runtime::bindings::{http, llm};

/// The `llm-call` payload for item `n` of unit `key`.
pub fn payload(key: &str, n: usize) -> String {
    serde_json::json!({
        "messages": [{ "role": "user", "content": format!("{key}/{n}") }]
    })
    .to_string()
}

/// Which audited call an `llm-call` output came from (its reply was `call-{seq}`).
pub fn call_of(output: Option<&str>) -> Option<usize> {
    let output: serde_json::Value = serde_json::from_str(output?).ok()?;
    output["content"]
        .as_str()?
        .strip_prefix("call-")?
        .parse()
        .ok()
}

/// One audited `llm` call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its position in the log; the reply's content is `call-{seq}`.
    pub seq: usize,
    pub host: String,
    /// The unit and the item's position in it, from the payload.
    pub key: String,
    pub n: usize,
    pub start: Instant,
    /// When the call returned or was dropped; `None` while it runs.
    pub end: Option<Instant>,
    /// Whether it returned a reply (rather than being dropped mid-call).
    pub answered: bool,
}

/// The shared log, with the delay each call takes.
pub struct AuditLog {
    calls: Mutex<Vec<Call>>,
    delay: Duration,
    pub origin: Instant,
}

impl AuditLog {
    /// Each audited call takes `delay` (a sleep: the window in which a second
    /// holder of the same unit would show up as an overlap).
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            delay,
            origin: Instant::now(),
        })
    }

    /// The `Outbound` for host `host`: every call it makes is logged under that name.
    pub fn outbound(self: &Arc<Self>, host: &str) -> Arc<dyn Outbound> {
        Arc::new(Audited {
            host: host.to_string(),
            log: self.clone(),
        })
    }

    /// A copy of every call so far, in the order they began.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls running now.
    pub fn open(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.end.is_none())
            .collect()
    }

    /// How many calls began at or after `since`.
    pub fn started_since(&self, since: Instant) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.start >= since)
            .collect()
    }

    /// Calls per item, keyed by (unit key, position in the unit).
    pub fn per_item(&self) -> BTreeMap<(String, usize), Vec<Call>> {
        let mut items: BTreeMap<(String, usize), Vec<Call>> = BTreeMap::new();
        for call in self.calls() {
            items
                .entry((call.key.clone(), call.n))
                .or_default()
                .push(call);
        }
        items
    }

    /// Calls that answered but whose outcome is not among the written ones
    /// (`written`: call numbers, from [`call_of`]): finished work thrown away.
    pub fn thrown_away(&self, written: &std::collections::BTreeSet<usize>) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.answered && !written.contains(&c.seq))
            .collect()
    }

    /// A call, for messages: `key/n by host at start..end`.
    pub fn describe(&self, call: &Call) -> String {
        format!(
            "{}/{} by {} at {:.3}s..{}",
            call.key,
            call.n,
            call.host,
            self.at(call.start),
            self.end_text(call)
        )
    }

    /// Seconds since the log was created, for messages.
    pub fn at(&self, instant: Instant) -> f64 {
        instant.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// Every pair of calls for one unit whose intervals overlap (a call still
    /// open overlaps everything after its start), described for a message.
    pub fn overlaps(&self) -> Vec<String> {
        let mut by_key: BTreeMap<String, Vec<Call>> = BTreeMap::new();
        for call in self.calls() {
            by_key.entry(call.key.clone()).or_default().push(call);
        }
        let mut found = Vec::new();
        for (key, mut calls) in by_key {
            calls.sort_by_key(|c| c.start);
            for (i, a) in calls.iter().enumerate() {
                for b in &calls[i + 1..] {
                    if a.end.is_none_or(|end| b.start < end) {
                        found.push(format!(
                            "{key}: call #{} by {} (item {}, {:.3}s..{}) overlaps call #{} by {} (item {}, {:.3}s..{})",
                            a.seq,
                            a.host,
                            a.n,
                            self.at(a.start),
                            self.end_text(a),
                            b.seq,
                            b.host,
                            b.n,
                            self.at(b.start),
                            self.end_text(b),
                        ));
                    }
                }
            }
        }
        found
    }

    fn end_text(&self, call: &Call) -> String {
        match call.end {
            Some(end) => format!("{:.3}s", self.at(end)),
            None => "still open".into(),
        }
    }

    fn begin(&self, host: &str, key: String, n: usize) -> usize {
        let mut calls = self.calls.lock().unwrap();
        let seq = calls.len();
        calls.push(Call {
            seq,
            host: host.to_string(),
            key,
            n,
            start: Instant::now(),
            end: None,
            answered: false,
        });
        seq
    }

    fn finish(&self, seq: usize, answered: bool) {
        let mut calls = self.calls.lock().unwrap();
        let call = &mut calls[seq];
        call.end = Some(Instant::now());
        call.answered = answered;
    }
}

/// Closes its call when dropped: answered if [`Self::answered`] was called,
/// otherwise cancelled mid-call.
struct Open {
    log: Arc<AuditLog>,
    seq: usize,
    answered: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.log.finish(self.seq, self.answered);
    }
}

struct Audited {
    host: String,
    log: Arc<AuditLog>,
}

#[async_trait::async_trait]
impl Outbound for Audited {
    async fn llm(
        &self,
        _: &CallContext,
        request: llm::Request,
    ) -> Result<llm::Response, llm::Error> {
        let content = request
            .messages
            .first()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        let Some((key, n)) = content
            .rsplit_once('/')
            .and_then(|(key, n)| Some((key.to_string(), n.parse().ok()?)))
        else {
            return Err(llm::Error::InvalidRequest(format!(
                "the audit expects `key/n` as the message, got {content:?}"
            )));
        };
        let seq = self.log.begin(&self.host, key, n);
        let mut open = Open {
            log: self.log.clone(),
            seq,
            answered: false,
        };
        tokio::time::sleep(self.log.delay).await;
        open.answered = true;
        drop(open);
        Ok(llm::Response {
            content: format!("call-{seq}"),
            model: "audit".into(),
            usage: llm::Usage {
                input_tokens: 1,
                output_tokens: 1,
            },
            finish_reason: llm::FinishReason::Stop,
        })
    }

    async fn http(&self, _: &CallContext, _: http::Request) -> Result<http::Response, http::Error> {
        Err(http::Error::Denied("the audit allows no http".into()))
    }
}
