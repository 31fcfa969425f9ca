#![no_main]
//! The real reducer against a small reference model, step by step.
//!
//! The model below is the oracle: a few lines per rule, written without
//! looking at the reducer's code. The two must agree on every accept or
//! reject, and on the roster, epoch and flags after it.

use std::collections::BTreeMap;

use meshlog::fuzzing::{Hostile, Op, POOL, make, member, rebuild_matches};
use meshlog::{MemberId, MeshState, Role};

#[derive(Default)]
struct Model {
    founded: bool,
    epoch: u64,
    roster: BTreeMap<MemberId, Role>,
    enabled: BTreeMap<MemberId, bool>,
}

impl Model {
    fn can_act(&self, who: MemberId) -> bool {
        self.roster.contains_key(&who) && self.enabled.get(&who) == Some(&true)
    }

    /// Predicts the verdict and applies it; true when the event is accepted.
    fn step(&mut self, op: &Op) -> bool {
        let id = |n: u8| member(n % POOL as u8);
        match *op {
            Op::Found { founder } if !self.founded => {
                self.founded = true;
                self.roster.insert(id(founder), Role::Admin);
                self.enabled.insert(id(founder), false);
                true
            }
            _ if !self.founded => false,
            Op::Found { .. } | Op::Hostile(_) => false,
            Op::SetEnabled { who, enabled } => {
                let ok = self.roster.contains_key(&id(who));
                if ok {
                    self.enabled.insert(id(who), enabled);
                }
                ok
            }
            Op::App { who, .. } => self.can_act(id(who)),
            Op::Rotate { who, members, admins } => {
                let roster: BTreeMap<MemberId, Role> = (0..POOL as u8)
                    .filter(|i| members & (1 << i) != 0)
                    .map(|i| (id(i), if admins & (1 << i) != 0 { Role::Admin } else { Role::Member }))
                    .collect();
                let ok = self.can_act(id(who))
                    && self.roster.get(&id(who)) == Some(&Role::Admin)
                    && roster.values().any(|role| *role == Role::Admin);
                if ok {
                    self.enabled = roster
                        .keys()
                        .map(|m| (*m, self.enabled.get(m).copied().unwrap_or(false)))
                        .collect();
                    self.roster = roster;
                    self.epoch += 1;
                }
                ok
            }
        }
    }

    fn matches(&self, state: &MeshState) -> bool {
        let Some(epoch) = state.current_epoch() else {
            return !self.founded;
        };
        let roster: BTreeMap<MemberId, Role> = epoch.roster.iter().map(|e| (e.id, e.role)).collect();
        epoch.epoch == self.epoch && roster == self.roster && *state.enabled_flags() == self.enabled
    }
}

libfuzzer_sys::fuzz_target!(|ops: Vec<Op>| {
    let mut model = Model::default();
    let mut state = MeshState::default();
    let mut accepted = Vec::new();
    for (step, op) in ops.iter().take(64).enumerate() {
        let event = make(&state, op, step as u64);
        let expected = model.step(op);
        let before = state.clone();
        let verdict = state.reduce(&event);
        assert_eq!(verdict.is_ok(), expected, "step {step}: {op:?} gave {verdict:?}");
        if verdict.is_ok() {
            accepted.push(event);
        } else {
            assert_eq!(state, before, "a rejection changed the state");
        }
        assert!(model.matches(&state), "step {step}: state differs from the model after {op:?}");
        if let Op::Hostile(Hostile::WrongSigner { .. }) = op {
            assert!(verdict.is_err());
        }
    }
    rebuild_matches(&accepted, &state);
});
