//! Simulation tests: many random seeds, named scenarios, deliberately broken cores, figures.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Endpoint, Fault, Options, Sim};
use crate::core::Bugs;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A run with random faults for `faulty`, then everything repaired (and, for half the seeds, the
/// master killed for good), then `settle` to converge. Returns the simulation for inspection.
fn random_run(seed: u64, sentinels: &[usize], bugs: Bugs) -> Result<Sim, String> {
    random_run_rec(seed, sentinels, bugs, false).map_err(|(e, _)| e)
}

fn random_run_rec(
    seed: u64,
    sentinels: &[usize],
    bugs: Bugs,
    record: bool,
) -> Result<Sim, (String, Sim)> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5EED_F00D);
    let mut o = Options::fast(seed);
    o.sentinels = sentinels[rng.random_range(0..sentinels.len())];
    o.loss = if rng.random_bool(0.5) {
        rng.random_range(0.0..0.05)
    } else {
        0.0
    };
    o.dup = 0.02;
    o.slow = 0.05;
    o.sync_replicas = u8::from(rng.random_bool(0.5));
    o.core.bugs = bugs;
    o.record = record;
    let mut sim = Sim::new(o);
    let n_sentinels = sim.sentinels.len();
    let n_nodes = sim.nodes.len();
    let faults = rng.random_range(1..=4);
    for _ in 0..faults {
        let at = ms(rng.random_range(300..3000));
        let until = at + ms(rng.random_range(100..2500));
        match rng.random_range(0..6) {
            0 => {
                let i = rng.random_range(0..n_sentinels);
                sim.fault_at(at, Fault::CrashSentinel(i));
                sim.fault_at(until, Fault::RestartSentinel(i));
            }
            1 | 2 => {
                let n = if rng.random_bool(0.6) {
                    0
                } else {
                    rng.random_range(0..n_nodes)
                };
                let empty = sim.opts.sync_replicas == 0 && rng.random_bool(0.3);
                sim.fault_at(at, Fault::CrashNode(n));
                sim.fault_at(until, Fault::RestartNode { node: n, empty });
            }
            3 => {
                let n = rng.random_range(0..n_nodes);
                sim.fault_at(at, Fault::PauseNode(n));
                sim.fault_at(until, Fault::ResumeNode(n));
            }
            _ => {
                let mut set = Vec::new();
                for i in 0..n_sentinels {
                    if rng.random_bool(0.4) {
                        set.push(Endpoint::S(i));
                    }
                }
                for n in 0..n_nodes {
                    if rng.random_bool(0.4) {
                        set.push(Endpoint::N(n));
                    }
                }
                sim.fault_at(at, Fault::Partition(set));
                sim.fault_at(until, Fault::Heal);
            }
        }
    }
    sim.run_until(ms(3500));
    sim.heal_all();
    if rng.random_bool(0.5) {
        let m = sim.master_of(0).0 as usize;
        sim.fault(Fault::CrashNode(m));
    }
    sim.run_for(ms(6000));
    if let Err(e) = sim.check_converged() {
        return Err((e, sim));
    }
    Ok(sim)
}

