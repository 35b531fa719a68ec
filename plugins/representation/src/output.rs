//! The output a representation call commits: every observation of the batch,
//! which models answered and what they cost, and the items that were skipped.

use serde::Serialize;

use crate::messages::Skipped;
use crate::reply::Observation;

/// The output document (see README.md for an example).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub observations: Vec<Observation>,
    /// The models that answered, in order of first use (a fallback model may
    /// answer some calls).
    pub models: Vec<String>,
    pub usage: Usage,
    /// Later items of the batch whose payload was malformed.
    pub skipped: Vec<Skipped>,
}

/// Token use summed over the call's LLM requests.
#[derive(Debug, Default, Serialize)]
pub struct Usage {
    pub llm_calls: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Report {
    /// Adds one LLM call's observations and cost.
    pub fn add_call(
        &mut self,
        observations: Vec<Observation>,
        model: &str,
        input_tokens: u32,
        output_tokens: u32,
    ) {
        self.observations.extend(observations);
        if !self.models.iter().any(|m| m == model) {
            self.models.push(model.to_string());
        }
        self.usage.llm_calls += 1;
        self.usage.input_tokens += u64::from(input_tokens);
        self.usage.output_tokens += u64::from(output_tokens);
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report of strings and numbers always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Attribution;

    #[test]
    fn sums_calls_and_lists_each_model_once() {
        let mut report = Report::default();
        let observation = |content: &str| Observation {
            observed: "alice".into(),
            content: content.into(),
            item_ids: vec![1],
            attribution: Attribution::Cited,
        };
        report.add_call(vec![observation("a")], "m1", 10, 2);
        report.add_call(vec![observation("b")], "m1", 5, 1);
        report.skipped.push(Skipped {
            item_id: 3,
            error: "bad".into(),
        });
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "observations": [
                    {"observed": "alice", "content": "a", "item_ids": [1], "attribution": "cited"},
                    {"observed": "alice", "content": "b", "item_ids": [1], "attribution": "cited"},
                ],
                "models": ["m1"],
                "usage": {"llm_calls": 2, "input_tokens": 15, "output_tokens": 3},
                "skipped": [{"item_id": 3, "error": "bad"}],
            })
        );
    }
}
