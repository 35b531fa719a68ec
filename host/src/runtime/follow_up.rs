//! Which task types a call may enqueue follow-up items for.
//!
//! Follow-up items are a channel from one plugin to another: without a policy,
//! a plugin with no grants could feed payloads of its choosing to a task type
//! that has them (the webhook plugin's HTTP grant), a confused deputy. So each
//! task type may enqueue only what the operator allows in
//! `[tasks.<type>] may_enqueue`, and by default only the task types of its own
//! plugin (whose author already controls what those task types do).

use std::collections::BTreeSet;
use std::sync::Arc;

/// Wildcard in `may_enqueue`: any task type.
pub const ANY_TASK_TYPE: &str = "*";

/// The task types a call may enqueue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EnqueuePolicy {
    /// The task types its own plugin handles (the default).
    #[default]
    OwnPlugin,
    /// Exactly these task types (`may_enqueue = [...]`; empty allows none).
    Only(Arc<BTreeSet<String>>),
    /// Any task type (`may_enqueue = ["*"]`).
    Any,
}

impl EnqueuePolicy {
    /// The policy a `may_enqueue` list sets; `None` keeps the default.
    pub fn from_list(list: Option<&[String]>) -> Self {
        match list {
            None => Self::OwnPlugin,
            Some(list) if list.iter().any(|t| t == ANY_TASK_TYPE) => Self::Any,
            Some(list) => Self::Only(Arc::new(list.iter().cloned().collect())),
        }
    }

    /// Why a call of `task_type` (handled by a plugin with `own` task types)
    /// may not enqueue `target`, or `None` when it may.
    pub(crate) fn refusal(&self, task_type: &str, own: &[String], target: &str) -> Option<String> {
        let allowed = match self {
            Self::Any => return None,
            Self::OwnPlugin if own.iter().any(|t| t == target) => return None,
            Self::Only(list) if list.contains(target) => return None,
            Self::OwnPlugin => format!(
                "by default only its own plugin's task types ({})",
                own.join(", ")
            ),
            Self::Only(list) if list.is_empty() => "none (`may_enqueue = []`)".to_string(),
            Self::Only(list) => list.iter().cloned().collect::<Vec<_>>().join(", "),
        };
        Some(format!(
            "task type `{task_type}` may not enqueue items for task type `{target}` (it may enqueue: {allowed}); \
             an operator who trusts this flow adds \"{target}\" to `[tasks.{task_type}] may_enqueue`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn by_default_a_plugin_may_feed_only_its_own_task_types() {
        let policy = EnqueuePolicy::from_list(None);
        assert_eq!(policy.refusal("a", &own(), "b"), None);
        let refusal = policy.refusal("a", &own(), "webhook").unwrap();
        assert!(refusal.contains("`webhook`"), "{refusal}");
        assert!(refusal.contains("[tasks.a] may_enqueue"), "{refusal}");
    }

    #[test]
    fn an_operator_list_replaces_the_default() {
        let policy = EnqueuePolicy::from_list(Some(&["webhook".to_string()]));
        assert_eq!(policy.refusal("a", &own(), "webhook"), None);
        assert!(policy.refusal("a", &own(), "b").is_some());
        let none = EnqueuePolicy::from_list(Some(&[]));
        assert!(none.refusal("a", &own(), "a").unwrap().contains("none"));
        let any = EnqueuePolicy::from_list(Some(&["*".to_string()]));
        assert_eq!(any.refusal("a", &own(), "anything"), None);
    }
}
