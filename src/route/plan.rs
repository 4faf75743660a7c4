//! The route decision before its last step: groups of targets that balance may still reorder,
//! and the rules that turn them into [`Candidates`].

use super::sort::{Soft, SortKey};
use crate::context::{Candidates, Target};
use crate::health::Health;
use std::sync::Arc;

/// How much of each group `allow_fallbacks: false` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Everything (`allow_fallbacks` true).
    All,
    /// Only the `order` list.
    Head,
    /// Only the first endpoint of each model.
    First,
    /// Everything, but no more (the `only` allow-list is the whole list).
    Listed,
}

/// One group of candidates: a model's endpoints (partition `model`) or every listed model's
/// (partition `none`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    /// Fixed prefix: the `order` matches, or the sticky pin.
    pub(crate) head: Vec<Target>,
    /// The rest, in default order.
    pub(crate) rest: Vec<Target>,
    /// True when the default policy applies: balance may reorder `rest`.
    pub(crate) balance: bool,
    /// The strict sort the group was admitted with, if any.
    pub(crate) key: Option<SortKey>,
}

impl Group {
    /// A group of admitted endpoints, not yet ordered.
    pub(crate) fn admitted(rest: Vec<Target>, key: Option<SortKey>) -> Group {
        Group {
            rest,
            key,
            ..Group::default()
        }
    }
}

/// The route layer's decision, inserted in the request extensions next to the
/// [`Candidates`] it produced, so the balance layer can redo the default ordering and rebuild
/// them. See the [module docs](super) for the steps.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) groups: Vec<Group>,
    pub(crate) soft: Soft,
    pub(crate) keep: Keep,
    pub(crate) strategy: &'static str,
    pub(crate) health: Option<Arc<Health>>,
}

impl Plan {
    /// True when the default policy (no `order`, no sort) applies to some group: the balance
    /// layer may reorder its non-pinned endpoints.
    pub fn balanced(&self) -> bool {
        self.groups.iter().any(|g| g.balance)
    }

    /// The reorderable part of each group under the default policy, for the balance layer.
    pub(crate) fn rests_mut(&mut self) -> impl Iterator<Item = &mut Vec<Target>> {
        self.groups
            .iter_mut()
            .filter(|g| g.balance)
            .map(|g| &mut g.rest)
    }

    /// Every target in trial order, before soft preferences and `allow_fallbacks`.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.groups
            .iter()
            .flat_map(|g| g.head.iter().chain(&g.rest))
    }

    /// The final candidates: per group, head then rest; soft preferences move misses to the
    /// group's end; `allow_fallbacks: false` keeps only the head (or the first endpoint).
    pub fn candidates(&self) -> Candidates {
        let mut out = Candidates::new(Vec::with_capacity(self.targets().count()));
        self.candidates_into(&mut out);
        out
    }

    /// [`Self::candidates`] written over `out`, reusing its buffer (the balance layer rewrites
    /// the route layer's list in place).
    pub fn candidates_into(&self, out: &mut Candidates) {
        let mut targets = std::mem::take(&mut out.targets);
        targets.clear();
        for g in &self.groups {
            // Each group is appended in place; only soft preferences need it apart.
            let start = targets.len();
            targets.extend(g.head.iter().cloned());
            if self.keep != Keep::Head {
                targets.extend(g.rest.iter().cloned());
            }
            if !self.soft.is_empty() {
                let mut seq = targets.split_off(start);
                self.soft.apply(&mut seq, self.health.as_deref());
                targets.append(&mut seq);
            }
            if self.keep == Keep::First {
                targets.truncate(start + 1);
            }
        }
        out.limit = (self.keep != Keep::All).then_some(targets.len());
        out.targets = targets;
        out.strategy = Some(self.strategy);
    }
}
