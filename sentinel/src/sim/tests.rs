//! Simulation tests: many random seeds, named scenarios, deliberately broken cores, figures.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Endpoint, Fault, Options, Sim};
use crate::core::{Bugs, MembersEpoch, SentinelId};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A run with random faults for 3.5 s, then everything repaired (and, for half the seeds, the
/// master killed for good), then 5 s to converge. `Err` is a violated safety invariant (1, 2, 3
/// or 5, checked after every event); convergence (4) and durability (6) are checked by the caller
/// with `Sim::check_converged`.
fn random_run_rec(
    seed: u64,
    sentinels: &[usize],
    bugs: Bugs,
    record: bool,
) -> Result<Sim, Box<(String, Sim)>> {
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
    o.spares = 2;
    let mut sim = Sim::new(o);
    let n_sentinels = sim.opts.sentinels;
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
    // Operators' changes, drawn apart so that the schedules above stay those of their seeds.
    let mut admin = SmallRng::seed_from_u64(seed ^ 0xAD_0B5E);
    if admin.random_bool(0.3) {
        let at = ms(admin.random_range(300..3000));
        sim.fault_at(at, Fault::AdminSet(admin.random_range(0..n_sentinels)));
    }
    // Voter-set changes, drawn apart too: sentinels that died for good forgotten (two at once
    // from different sentinels, at five and more), spares joining, or both.
    let mut member = SmallRng::seed_from_u64(seed ^ 0x3E3B_E125);
    if member.random_bool(0.3) {
        let kind = member.random_range(0..3);
        if kind != 1 {
            let victims = if n_sentinels >= 5 && member.random_bool(0.5) {
                2
            } else {
                1
            };
            let mut order: Vec<usize> = (0..n_sentinels).collect();
            for k in 0..order.len() {
                let j = member.random_range(k..order.len());
                order.swap(k, j);
            }
            let at = ms(member.random_range(300..2500));
            for v in 0..victims {
                sim.fault_at(at, Fault::KillSentinel(order[v]));
                let by = order[victims + v];
                let when = at + ms(member.random_range(50..1000));
                sim.fault_at(
                    when,
                    Fault::Forget {
                        at: by,
                        victim: order[v],
                    },
                );
            }
        }
        if kind != 0 {
            let joins = member.random_range(1..=2);
            for k in 0..joins {
                let at = ms(member.random_range(300..3000));
                sim.fault_at(at, Fault::Join(n_sentinels + k));
            }
        }
    }
    sim.run_until(ms(3500));
    sim.heal_all();
    if rng.random_bool(0.5) {
        let m = sim.master_of(0).0 as usize;
        sim.fault(Fault::CrashNode(m));
    }
    sim.run_for(ms(5000));
    if let Err(e) = sim.result() {
        return Err(Box::new((e, sim)));
    }
    Ok(sim)
}

/// Outcome of a batch of random seeds.
struct Batch {
    runs: u64,
    /// Seeds that did not converge (invariant 4) or lost an acknowledged write (invariant 6).
    unconverged: Vec<String>,
}

/// Seeds of the debug suite that do not converge today (liveness only; every safety
/// invariant holds on them). Empty: add a seed only with a FIXME naming its cause.
const KNOWN_UNCONVERGED: &[u64] = &[];

/// Runs `seeds`; panics with the seed on the first safety violation.
fn batch(seeds: std::ops::Range<u64>, sentinels: &[usize]) -> Batch {
    let mut b = Batch {
        runs: 0,
        unconverged: Vec::new(),
    };
    for seed in seeds {
        b.runs += 1;
        match random_run_rec(seed, sentinels, Bugs::default(), false) {
            Err(failed) => panic!(
                "{} (replay: SEED={seed} SIZES={} cargo test -p vigil-sentinel replay_seed -- --ignored --nocapture)",
                failed.0,
                sizes_arg(sentinels)
            ),
            Ok(sim) => {
                let known = KNOWN_UNCONVERGED.contains(&seed);
                match sim.check_converged() {
                    Err(e) if !known => b
                        .unconverged
                        .push(format!("{e} (SIZES={})", sizes_arg(sentinels))),
                    Ok(()) if known => b.unconverged.push(format!(
                        "seed {seed} converges now: drop it from KNOWN_UNCONVERGED"
                    )),
                    _ => {}
                }
            }
        }
    }
    b
}

/// Safety (invariants 1, 2, 3, 5) must hold on every seed, and so must convergence and
/// durability (4, 6) once the faults heal. Replay a failing seed with `SEED=<n> SIZES=<counts>
/// cargo test -p vigil-sentinel replay_seed -- --ignored --nocapture`.
fn assert_converged(b: &Batch) {
    assert!(
        b.unconverged.is_empty(),
        "{} of {} seeds did not converge:\n{}",
        b.unconverged.len(),
        b.runs,
        b.unconverged.join("\n")
    );
}

#[test]
fn random_faults_three_sentinels_seeds_0_to_3000() {
    assert_converged(&batch(0..3000, &[3]));
}

#[test]
fn random_faults_five_sentinels_seeds_3000_to_6000() {
    assert_converged(&batch(3000..6000, &[5]));
}

#[test]
fn random_faults_three_to_nine_sentinels_seeds_6000_to_8500() {
    assert_converged(&batch(6000..8500, &[3, 5, 7, 9]));
}

#[test]
fn random_faults_mixed_sentinels_seeds_8500_to_10500() {
    assert_converged(&batch(8500..10500, &[3, 4, 5]));
}

// ---- Seeds that once failed, grouped by root cause; each must now converge. ----

fn assert_seeds_converge(cases: &[(u64, &[usize])]) {
    for (seed, sizes) in cases {
        match random_run_rec(*seed, sizes, Bugs::default(), false) {
            Err(failed) => panic!("{}", failed.0),
            Ok(sim) => sim.check_converged().unwrap_or_else(|e| panic!("{e}")),
        }
    }
}

/// A paused replica answered the INFO requests of a sentinel's previous incarnation after the
/// sentinel restarted; with its counter restarted, those high sequence numbers passed for fresh
/// and a stale offset won the selection (the simulator now drops replies to a dead process).
#[test]
fn replies_to_a_previous_sentinel_incarnation_are_never_fresh() {
    assert_seeds_converge(&[(350, &[3])]);
}

/// The master restarted with its data under a new replication id and a replica resynchronised
/// with it; the leader only knew the old id, excluded that replica and promoted a shorter log.
#[test]
fn a_replica_resynced_with_a_master_restarted_with_data_stays_in_its_lineage() {
    assert_seeds_converge(&[
        (342, &[3]),
        (1318, &[3]),
        (1558, &[3]),
        (2310, &[3]),
        (3545, &[5]),
    ]);
}

/// An old master restarted with its data (or a replica that never resynchronised) holds an
/// older id of the lineage: it is credited along the `replid2` chain, not left out.
#[test]
fn an_old_master_restarted_with_data_is_compared_along_the_lineage() {
    assert_seeds_converge(&[(81, &[3]), (194, &[3]), (1383, &[3]), (2634, &[3])]);
}

/// Every replica restarted empty and the data holder died: the empty replica promoted because
/// nothing better was left was taken for a master that restarted empty (on the dead holder's
/// stale offset), so the group failed over between empty nodes for ever.
#[test]
fn a_knowingly_promoted_empty_replica_is_not_failed_over_again() {
    assert_seeds_converge(&[
        (2489, &[3]),
        (2899, &[3]),
        (2913, &[3]),
        (3452, &[5]),
        (5537, &[5]),
        (5816, &[5]),
        (6350, &[3, 5, 7, 9]),
        (6748, &[3, 5, 7, 9]),
        (7036, &[3, 5, 7, 9]),
        (7335, &[3, 5, 7, 9]),
    ]);
}

/// A leader that never read the dead master took the history a replica merely cached (it was
/// told to follow the master but never synchronised, so it still reported its own old id) for
/// the master's, credited that stale log and promoted it over a replica holding acknowledged
/// writes. Only replicas with their link up stand in for an unread master now.
#[test]
fn a_replica_that_never_synced_does_not_stand_in_for_the_master_history() {
    assert_seeds_converge(&[
        (1_013_256, &[3, 4, 5, 6, 7, 8, 9]),
        (1_017_397, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// The master kept writing under its id after a sibling history branched from it earlier (an
/// older epoch's promotion); "the only continuation seen" was taken for the master's data and
/// its stale writes won. Continuations are no longer guessed: a master gets a lease only once
/// its id is in the granting sentinels' durable lineage, which their votes hand to the leader.
#[test]
fn a_branch_off_the_master_history_is_never_taken_for_it() {
    assert_seeds_converge(&[(1_015_531, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// Leaders that restarted, or were partitioned from the master, never read its history and
/// could not prove anything, so the group stayed without a master; voters now send theirs
/// (and every history edge they read) with their vote.
#[test]
fn a_leader_learns_the_master_history_from_its_voters() {
    assert_seeds_converge(&[
        (1_014_633, &[3, 4, 5, 6, 7, 8, 9]),
        (1_000_507, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// A sentinel whose config was behind (it had been partitioned with the old master) told a
/// replica holding the newer master's acknowledged writes to follow the old master, and the
/// full resync discarded them (3619: the just-promoted master itself, 2 ms after the new config
/// was installed elsewhere). Convergence now confirms, in a round trip sent after the INFO it
/// acts on, that no voter of a majority knows a newer config or is fenced by a vote above it.
#[test]
fn a_sentinel_with_an_old_config_confirms_it_before_reconfiguring_a_node() {
    assert_seeds_converge(&[(3619, &[5])]);
    assert_seeds_converge(&[
        (1_024_233, &[3, 4, 5, 6, 7, 8, 9]),
        (1_033_081, &[3, 4, 5, 6, 7, 8, 9]),
        (1_035_313, &[3, 4, 5, 6, 7, 8, 9]),
        (1_061_185, &[3, 4, 5, 6, 7, 8, 9]),
        (1_065_608, &[3, 4, 5, 6, 7, 8, 9]),
        (1_079_720, &[3, 4, 5, 6, 7, 8, 9]),
        (1_092_957, &[3, 4, 5, 6, 7, 8, 9]),
        (1_096_609, &[3, 4, 5, 6, 7, 8, 9]),
        (1_097_348, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// The leader of term 1 saw its promotion confirmed only after term 2 had promoted another
/// replica (its node was paused), and told that new master to follow its own: a replication
/// cycle nobody repaired. A leader that learned of a term above its epoch leaves the remaining
/// reconfigurations to convergence (which confirms the config first).
#[test]
fn a_leader_overtaken_by_a_newer_term_leaves_reconfiguration_to_convergence() {
    assert_seeds_converge(&[(1_006_846, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// Leaders that could not prove which replica holds every acknowledged write were preempted
/// by their voters `failover_timeout` after the vote, just before their own deadline (which
/// started after the lease wait), so no failover ever ended and the group kept its dead master
/// (7402, 1090136). A leader now gives up a little before its voters' patience runs out, and
/// checks its deadline on time rather than at the next 100 ms poll.
#[test]
fn a_leader_that_cannot_select_gives_up_before_its_voters_preempt_it() {
    assert_seeds_converge(&[(7402, &[3, 5, 7, 9]), (1_090_136, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// A vote abandoned after a lower config epoch had been installed never settled (`fence_from`
/// still pointed at the vote the epoch settled), so the sentinel stayed fenced for good; with
/// convergence waiting for unfenced confirmations, two such sentinels of four blocked it.
/// Votes at or below the config epoch no longer keep a fence.
#[test]
fn a_vote_abandoned_after_a_newer_config_lifts_the_fence() {
    assert_seeds_converge(&[
        (1_000_365, &[3, 4, 5, 6, 7, 8, 9]),
        (1_000_595, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// A candidate that adopted a newer config while collecting votes dropped its candidacy
/// without telling its voters, who stayed fenced (with it) for good (1002106). It now
/// abandons the term.
#[test]
fn a_candidate_overtaken_by_a_newer_config_abandons_its_term() {
    assert_seeds_converge(&[
        (1_002_106, &[3, 4, 5, 6, 7, 8, 9]),
        (1_004_127, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// Fenced sentinels (their leader gave up after `REPLICAOF NO ONE` timed out, and later
/// split votes kept their fence) outnumbered `voters - majority`: their fence-settling
/// elections needed votes from unfenced voters, who refused while the master looked healthy,
/// so no majority of unfenced confirmations was left for convergence (1006756). Any voter
/// now votes in a fence-settling election, whose leader reaffirms a healthy master.
#[test]
fn a_fenced_minority_is_settled_with_the_unfenced_voters() {
    assert_seeds_converge(&[
        (1_006_756, &[3, 4, 5, 6, 7, 8, 9]),
        (1_007_607, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// The leader of term 1 told the master just promoted in term 2 to follow its own (it had not
/// heard of term 2 yet), so nobody ever read that master as a master: the lineage of epoch 2
/// (cleared at the promotion, filled only by reading the master) stayed empty everywhere, and
/// the failovers away from the demoted master could credit no replica and aborted for ever
/// (1144983). The promoting leader now starts the lineage from the reply that confirmed the
/// promotion and sends it with the new config.
#[test]
fn the_history_of_a_master_demoted_before_anyone_read_it_travels_with_its_config() {
    assert_seeds_converge(&[(1_144_983, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// A replica promoted empty (the holder of the unacknowledged writes died) was taken for a
/// master that restarted empty because an old master of an earlier epoch, holding a write
/// nobody acknowledged on a stale branch, answered as a replica with data; no failover could
/// promote that branch, so the group failed over for ever (1108598). Once the master's
/// history is known, only replica data on it says an empty master lost anything (pinned by
/// `core::tests::an_empty_master_is_taken_for_restarted_only_if_a_replica_holds_its_history`:
/// with the lineage now seeded at the promotion, leases start earlier and this seed takes
/// another path).
#[test]
fn a_stale_branch_does_not_make_a_knowingly_promoted_empty_master_look_restarted() {
    assert_seeds_converge(&[(1_108_598, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// Two leaders of consecutive terms promoted at once and pointed each other's master at their
/// own (1222038): the master of the newer epoch was demoted into a replication cycle, so the
/// failover away from it had to prove, with `sync_replicas = 1`, that `R - N + 1` replicas
/// were accounted for; one never was (the old master restarted twice before anyone read the
/// id in between), and the leader rightly refused to guess, for ever. But the demoted master
/// itself was alive with its data intact (its own id, link down, and the secondary id a full
/// resync would have cleared): it holds every acknowledged write, so it is now a candidate,
/// promoted again under a new epoch, and no count of replicas is needed.
#[test]
fn a_master_demoted_by_a_stale_command_with_its_data_intact_is_promoted_again() {
    assert_seeds_converge(&[(1_222_038, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// These seeds did not converge with a 2 s convergence grace and INFO once a second for a
/// disagreeing node; with 500 ms and fast INFO, the stale demotion below no longer happens in
/// them, so they converge. The limitation described below still stands in principle.
#[test]
fn seeds_once_stuck_on_an_unprovable_first_master_converge_with_faster_convergence() {
    assert_seeds_converge(&[
        (1_121_920, &[3, 4, 5, 6, 7, 8, 9]),
        (1_427_300, &[3, 4, 5, 6, 7, 8, 9]),
    ]);
}

/// FIXME: 1661795 kept every safety invariant but did not converge: n0 still reported
/// `role:master` at the end while the agreed master was n1 (a stale fence settled late in the
/// run, at 7.9 s of 8.5 s, by re-confirming the master; not diagnosed further). Since a
/// sentinel reads a node again as soon as it acknowledges `REPLICAOF`, the run's timing
/// changed and the seed converges; the cause was never found, so the case may still occur
/// under other timings.
///
/// The limitation 1121920 and 1427300 once showed is also open: a stale
/// `REPLICAOF` (in 1121920 a convergence command confirmed before the election but delivered
/// after the promotion) demoted the master just promoted, n0, towards the master of an earlier
/// epoch that then died for good and stays in the replica set (n1 in 1121920, n2 in 1427300).
/// The failover away from n0 needs `R - N + 1 = 2` decisive replica reads and only one replica
/// answers; n0 is alive, on its own id, link down, with as much data as that replica, but it
/// is the group's first master and never had a secondary id, so nothing it reports rules out
/// a full resync from a lagging replica of its own history (which keeps that id and clears
/// nothing visible), and `intact_master` rightly declines. Converging needs a proof that the
/// dead node acknowledged no write of n0's last reign (n0 accepted none: its offset never
/// moved, but only a "no lease in that epoch" fact could say so), which leases that carry no
/// epoch cannot give: a sentinel stale at epoch 0 could grant n0 (same run, same id) leases
/// during the later epoch, and a node counts every unexpired lease of its run.
#[test]
fn a_master_once_left_disagreeing_at_the_end_of_a_late_settled_run_converges_now() {
    assert_seeds_converge(&[(1_661_795, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// The cause of 1222038, forced: once the failover away from a dead master promoted a replica
/// and writes were acknowledged under it, a stale `REPLICAOF` points the new master at the dead
/// old master, which stays in the replica set and never answers. With `sync_replicas = 1` no
/// `R - N + 1` replicas can be read; the demoted master, alive with its data intact, is
/// promoted again (or a replica holding as much), and no acknowledged write is lost. A
/// quarter of the seeds point it at one of its own replicas instead (a cycle): it may then
/// fully resync from that lagging replica, is not provably intact, and only safety holds.
#[test]
fn a_new_master_demoted_towards_the_dead_old_master_is_promoted_again() {
    for seed in 0..100 {
        let mut o = Options::fast(seed);
        o.sync_replicas = 1;
        o.sentinels = [3, 4, 5][(seed % 3) as usize];
        o.replicas = [2, 3][(seed % 2) as usize];
        o.record = std::env::var("DUMP").is_ok();
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        sim.fault(Fault::CrashNode(0));
        let mut t = ms(1000);
        let new = loop {
            t += ms(10);
            sim.run_until(t);
            let m = sim.master_of(0);
            if m != crate::core::NodeId(0) {
                break m;
            }
            assert!(t < ms(6000), "seed {seed}: no promotion");
        };
        sim.run_for(ms(100 + seed % 7 * 100));
        let acked = sim.check.acked.get(&sim.groups[0]).map_or(0, |a| a.len());
        // The dead old master, or (a cycle, as in 1222038) a replica of the new master.
        let target = if seed % 4 == 3 {
            (1..=sim.opts.replicas as u32)
                .map(crate::core::NodeId)
                .find(|n| *n != new)
                .expect("two replicas or more")
        } else {
            crate::core::NodeId(0)
        };
        sim.send(
            Endpoint::S(0),
            Endpoint::N(new.0 as usize),
            // From no live incarnation: a stale command gets no answer anyone reads.
            super::Msg::Reconfigure {
                master: target,
                from: 0,
                inc: u64::MAX,
            },
        );
        sim.run_for(ms(5000));
        if std::env::var("DUMP").is_ok() && sim.check_converged().is_err() {
            dump(&sim);
        }
        if target != crate::core::NodeId(0) {
            // A cycle: the demoted master may fully resync from its lagging replica (the
            // simulator, like Redis, keeps that replica's link up), losing unacknowledged
            // writes under its own id; it is then not provably intact, and is not promoted
            // again while the dead old master cannot be read. Only safety is required.
            sim.result().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            continue;
        }
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let (_, m) = sim
            .agreed_config(0)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_ne!(m.0, 0, "seed {seed}: the dead old master is the master");
        let after = sim.check.acked.get(&sim.groups[0]).map_or(0, |a| a.len());
        assert!(
            acked > 0 && after > acked,
            "seed {seed}: no write acknowledged ({acked}, {after})"
        );
    }
}

/// A million seeds by default; `SOAK=<from>..<to>` and `SIZES=<counts>` pick others, e.g.
/// `SOAK=0..10500 SIZES=3,5 cargo test -p vigil-sentinel --release soak -- --ignored --nocapture`.
#[test]
#[ignore = "soak: a million seeds, run by hand"]
fn soak_a_million_seeds() {
    let range = std::env::var("SOAK")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(1_000_000..2_000_000);
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "3,4,5,6,7,8,9".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let b = batch(range, &sizes);
    eprintln!("{} unconverged of {} seeds", b.unconverged.len(), b.runs);
    for u in &b.unconverged {
        eprintln!("{u}");
    }
    assert_converged(&b);
}

/// Replays one seed with its event trace: `SEED=<n> SIZES=<sentinel counts> cargo test -p
/// vigil-sentinel replay_seed -- --ignored --nocapture`.
#[test]
#[ignore = "replays the seed in $SEED with a trace, run by hand"]
fn replay_seed() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "3,5,7,9".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let sim = match random_run_rec(seed, &sizes, Bugs::default(), true) {
        Ok(sim) => sim,
        Err(failed) => {
            dump(&failed.1);
            panic!("{}", failed.0);
        }
    };
    dump(&sim);
    sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
}

fn sizes_arg(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn dump(sim: &Sim) {
    let mut lines: Vec<(Duration, String)> = sim
        .events
        .iter()
        .map(|(t, s, e)| (*t, format!("{s} {e:?}")))
        .chain(sim.trace.iter().map(|(t, l)| (*t, format!("-- {l}"))))
        .collect();
    lines.sort_by_key(|(t, _)| *t);
    for (t, l) in lines {
        eprintln!("{t:?} {l}");
    }
    for n in &sim.nodes {
        eprintln!(
            "{} up={} paused={} role={:?} link={:?} log={}",
            n.id,
            n.up,
            n.paused,
            n.role,
            n.link,
            n.log.len()
        );
    }
    for s in &sim.sentinels {
        let Some(core) = &s.core else { continue };
        eprintln!(
            "{} members={:?} voters={:?} voting={}",
            s.id,
            core.members(),
            core.voters(),
            core.voting()
        );
        for g in &sim.groups {
            eprintln!("  {:?}", core.group_view(g));
        }
    }
}

// ---- The checker must be able to fail: deliberately broken cores. ----

/// The first seed in `seeds` whose run violates an invariant, with the violation.
fn first_violation(seeds: std::ops::Range<u64>, run: impl Fn(u64) -> Sim) -> Option<(u64, String)> {
    for seed in seeds {
        let sim = run(seed);
        if let Err(e) = sim.result() {
            return Some((seed, e));
        }
    }
    None
}

#[test]
fn checker_catches_a_vote_sent_before_it_is_durable() {
    let bugs = Bugs {
        skip_vote_persist: true,
        ..Bugs::default()
    };
    let found = first_violation(0..50, |seed| {
        match random_run_rec(seed, &[3, 5], bugs, false) {
            Ok(sim) => sim,
            Err(failed) => failed.1,
        }
    });
    let (_, e) = found.expect("a vote sent before fsync is caught within 50 seeds");
    assert!(
        e.contains("invariant 1") && e.contains("before it was durable"),
        "{e}"
    );
}

#[test]
fn checker_catches_two_votes_in_one_term() {
    let bugs = Bugs {
        double_vote: true,
        ..Bugs::default()
    };
    // Simultaneous candidates (no jitter) make two requests of one term reach the same voter.
    let found = first_violation(0..200, |seed| {
        let mut o = Options::fast(seed);
        o.sentinels = 5;
        o.core.election_jitter = Duration::ZERO;
        o.core.bugs = bugs;
        let mut sim = Sim::new(o);
        sim.run_until(ms(500));
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(3000));
        sim
    });
    let (_, e) = found.expect("a double vote is caught within 200 seeds");
    assert!(
        e.contains("invariant 1") || e.contains("invariant 2"),
        "{e}"
    );
}

/// Two operators forget different sentinels of four at once, each at another sentinel, then a
/// partition splits {0, 1} from {2, 3} and the master dies. Applied locally (how forgets worked
/// before membership epochs), the views {0, 1, 2} and {1, 2, 3} have disjoint majorities, {0, 1}
/// and {2, 3}, and each side elects a leader of the same term.
fn concurrent_forgets(seed: u64, bugs: Bugs) -> Sim {
    let mut o = Options::fast(seed);
    o.sentinels = 4;
    o.quorum = Some(2);
    o.core.bugs = bugs;
    let mut sim = Sim::new(o);
    // The harm itself, not the broken voter-set epoch (invariant 7) that leads to it.
    sim.check.skip_members = true;
    sim.run_until(ms(500));
    sim.fault(Fault::Forget { at: 0, victim: 3 });
    sim.fault(Fault::Forget { at: 3, victim: 0 });
    sim.run_for(ms(5));
    sim.fault(Fault::Partition(vec![Endpoint::S(0), Endpoint::S(1)]));
    sim.fault(Fault::CrashNode(0));
    sim.run_for(ms(3000));
    sim
}

#[test]
fn checker_catches_concurrent_forgets_applied_without_agreement() {
    let bugs = Bugs {
        local_membership: true,
        ..Bugs::default()
    };
    let found = first_violation(0..50, |seed| concurrent_forgets(seed, bugs));
    let (_, e) = found.expect("two leaders of one term are caught within 50 seeds");
    assert!(e.contains("invariant 2"), "{e}");
}

#[test]
fn concurrent_forgets_agreed_through_membership_epochs_keep_one_leader_per_term() {
    assert_eq!(
        first_violation(0..50, |seed| concurrent_forgets(seed, Bugs::default())),
        None
    );
}

/// Two of three sentinels die for good, one after the other. Forgetting the first and admitting
/// a new sentinel keeps a majority alive, so the master's death is still failed over: without
/// the changes, one sentinel of three could not elect anyone.
#[test]
fn dead_sentinels_are_replaced_and_failover_still_works() {
    for seed in 0..20 {
        let mut o = Options::fast(seed);
        o.spares = 1;
        o.quorum = Some(2);
        let mut sim = Sim::new(o);
        sim.run_until(ms(500));
        sim.fault(Fault::KillSentinel(2));
        sim.fault(Fault::Forget { at: 0, victim: 2 });
        sim.run_for(ms(2000));
        sim.fault(Fault::Join(3));
        sim.run_for(ms(2000));
        let (epoch, voters) = sim.agreed_members().expect("one voter set");
        assert_eq!(epoch, MembersEpoch(3), "seed {seed}");
        assert_eq!(
            voters,
            vec![SentinelId(0), SentinelId(1), SentinelId(3)],
            "seed {seed}"
        );
        sim.fault(Fault::KillSentinel(1));
        let old = sim.master_of(0);
        sim.fault(Fault::CrashNode(old.0 as usize));
        sim.run_for(ms(4000));
        assert_eq!(sim.result(), Ok(()));
        assert_ne!(sim.master_of(0), old, "seed {seed}: no failover");
        assert_eq!(sim.check_converged(), Ok(()), "seed {seed}");
    }
}

/// The master is cut off from every sentinel and replica (not from its clients) while its
/// leases outlive `down_after`, so the leader must wait for them before promoting.
fn isolated_master_with_long_leases(seed: u64, bugs: Bugs) -> Sim {
    let mut o = Options::fast(seed);
    o.core.lease_ttl = ms(1500);
    o.core.bugs = bugs;
    let mut sim = Sim::new(o);
    sim.run_until(ms(1000));
    sim.fault(Fault::Partition(vec![Endpoint::N(0)]));
    sim.run_for(ms(4000));
    sim
}

#[test]
fn checker_catches_a_promotion_before_leases_expire() {
    let bugs = Bugs {
        skip_lease_wait: true,
        ..Bugs::default()
    };
    let found = first_violation(0..20, |seed| isolated_master_with_long_leases(seed, bugs));
    let (_, e) = found.expect("a promotion under valid leases is caught within 20 seeds");
    assert!(e.contains("invariant 5"), "{e}");
}

#[test]
fn the_same_isolated_master_is_fenced_with_the_lease_wait() {
    for seed in 0..20 {
        let mut sim = isolated_master_with_long_leases(seed, Bugs::default());
        sim.heal_all();
        sim.run_for(ms(3000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            sim.agreed_config(0).map(|c| c.1),
            Ok(crate::core::NodeId(0)),
            "seed {seed}"
        );
    }
}

/// A manual failover on a network that holds messages back for long, so that lease grants
/// sent before the election arrive after the master revoked its leases; the leases would
/// outlive the whole failover. `buggy_node`: the master forgets the revocation for such grants.
fn manual_failover_with_late_grants(seed: u64, buggy_node: bool) -> Sim {
    let mut o = Options::fast(seed);
    o.core.lease_ttl = ms(1500);
    o.slow = 0.5;
    o.slow_max = ms(300);
    o.revoke_keeps_older_grants = buggy_node;
    o.record = true;
    let mut sim = Sim::new(o);
    sim.run_until(ms(1000));
    let group = sim.groups[0].clone();
    sim.admin(0, crate::core::Input::FailoverRequested { group });
    sim.run_for(ms(3000));
    sim
}

#[test]
fn checker_catches_a_revocation_that_lets_older_grants_count() {
    let found = first_violation(0..40, |seed| manual_failover_with_late_grants(seed, true));
    let (_, e) = found.expect("a late grant counted after a revocation is caught within 40 seeds");
    assert!(e.contains("invariant 5"), "{e}");
}

#[test]
fn the_same_manual_failovers_with_a_faithful_revocation_are_safe_and_quick() {
    for seed in 0..40 {
        let mut sim = manual_failover_with_late_grants(seed, false);
        sim.result().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Selected well before the 1.5 s leases granted before the election could expire.
        let selected = events_of(&sim, |e| {
            matches!(e, crate::core::Event::SelectedReplica { .. })
        });
        let elected = events_of(&sim, |e| matches!(e, crate::core::Event::Elected { .. }));
        let (at, leader) = selected[0];
        let won = elected
            .iter()
            .filter(|(t, s)| *t <= at && *s == leader)
            .map(|(t, _)| *t)
            .max()
            .expect("the leader was elected before selecting");
        assert!(
            at - won < ms(1000),
            "seed {seed}: selected {:?} after the election",
            at - won
        );
        sim.heal_all();
        sim.run_for(ms(3000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            sim.agreed_config(0).map(|c| c.1),
            Ok(crate::core::NodeId(0)),
            "seed {seed}"
        );
    }
}

/// Switchovers (to the best replica or to a chosen one) and manual failovers under message
/// loss, duplication and reordering, sentinel and data-node crashes: the revocation path and
/// the lease wait it replaces must keep every invariant.
fn planned_failovers_under_faults(seed: u64) -> Result<Sim, String> {
    use crate::core::Input;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5717_C40F);
    let mut o = Options::fast(seed);
    o.sentinels = [3, 4, 5][rng.random_range(0..3)];
    o.loss = rng.random_range(0.0..0.03);
    o.dup = 0.02;
    o.slow = 0.1;
    o.slow_max = ms(200);
    o.sync_replicas = u8::from(rng.random_bool(0.5));
    let mut sim = Sim::new(o);
    let n_sentinels = sim.sentinels.len();
    let n_nodes = sim.nodes.len();
    let mut at = ms(rng.random_range(600..1200));
    for _ in 0..rng.random_range(1..=3) {
        sim.run_until(at);
        let group = sim.groups[0].clone();
        let who = rng.random_range(0..n_sentinels);
        let input = match rng.random_range(0..3) {
            0 => Input::FailoverRequested { group },
            1 => Input::SwitchoverRequested {
                group,
                target: None,
            },
            _ => {
                let master = sim.master_of(0).0 as usize;
                let target = (master + rng.random_range(1..n_nodes)) % n_nodes;
                Input::SwitchoverRequested {
                    group,
                    target: Some(crate::core::NodeId(target as u32)),
                }
            }
        };
        if sim.sentinels[who].core.is_some() {
            sim.admin(who, input);
        }
        if rng.random_bool(0.3) {
            let crash = ms(rng.random_range(0..300));
            let n = rng.random_range(0..n_nodes);
            sim.fault_at(at + crash, Fault::CrashNode(n));
            sim.fault_at(
                at + crash + ms(rng.random_range(100..1500)),
                Fault::RestartNode {
                    node: n,
                    empty: false,
                },
            );
        }
        if rng.random_bool(0.3) {
            let i = rng.random_range(0..n_sentinels);
            let crash = ms(rng.random_range(0..300));
            sim.fault_at(at + crash, Fault::CrashSentinel(i));
            sim.fault_at(
                at + crash + ms(rng.random_range(100..1500)),
                Fault::RestartSentinel(i),
            );
        }
        at += ms(rng.random_range(200..2500));
    }
    sim.run_until(at);
    sim.heal_all();
    sim.run_for(ms(5000));
    sim.result()?;
    Ok(sim)
}

/// More seeds of `planned_failovers_under_faults`: `SOAK=<from>..<to> cargo test -p
/// vigil-sentinel --release soak_planned -- --ignored --nocapture`.
#[test]
#[ignore = "soak: planned failovers, run by hand"]
fn soak_planned_failovers() {
    let range = std::env::var("SOAK")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(0..100_000u64);
    let runs = range.end.saturating_sub(range.start);
    let mut unconverged = Vec::new();
    for seed in range {
        let sim =
            planned_failovers_under_faults(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if let Err(e) = sim.check_converged() {
            unconverged.push(e);
        }
    }
    eprintln!("{} unconverged of {runs} seeds", unconverged.len());
    assert!(unconverged.is_empty(), "{}", unconverged.join("\n"));
}

#[test]
fn planned_failovers_under_faults_keep_every_invariant() {
    let mut unconverged = Vec::new();
    for seed in 0..300 {
        let sim =
            planned_failovers_under_faults(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if let Err(e) = sim.check_converged() {
            unconverged.push(e);
        }
    }
    assert!(unconverged.is_empty(), "{}", unconverged.join("\n"));
}

#[test]
fn manual_failover_moves_the_master_and_demotes_the_old_one() {
    for seed in 0..20 {
        let mut sim = Sim::new(Options::fast(seed));
        sim.run_until(ms(1000));
        sim.admin(
            0,
            crate::core::Input::FailoverRequested {
                group: sim.groups[0].clone(),
            },
        );
        sim.run_for(ms(4000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            sim.agreed_config(0).map(|c| c.1),
            Ok(crate::core::NodeId(0)),
            "seed {seed}"
        );
    }
}

// ---- Named scenarios, after the known Redis Sentinel failures. ----

fn events_of(
    sim: &Sim,
    f: impl Fn(&crate::core::Event) -> bool,
) -> Vec<(Duration, crate::core::SentinelId)> {
    sim.events
        .iter()
        .filter(|(_, _, e)| f(e))
        .map(|(t, s, _)| (*t, *s))
        .collect()
}

#[test]
fn split_vote_is_retried_within_a_few_round_trips() {
    use crate::core::Event;
    let mut splits = 0;
    for seed in 0..40 {
        let mut o = Options::fast(seed);
        o.sentinels = 4;
        // Everyone becomes candidate at the same instant: the worst case for split votes.
        o.core.election_jitter = Duration::ZERO;
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(3000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let split = events_of(&sim, |e| matches!(e, Event::SplitVote { .. }));
        let promoted = events_of(&sim, |e| matches!(e, Event::Promoted { .. }));
        assert!(!promoted.is_empty(), "seed {seed}: no promotion");
        if let Some((t, _)) = split.first() {
            splits += 1;
            assert!(
                promoted[0].0 - *t < ms(1000),
                "seed {seed}: split vote took over a second"
            );
        }
    }
    assert!(splits > 0, "the scenario never produced a split vote");
}

#[test]
fn jepsen_partition_with_the_master_on_the_minority_side() {
    for seed in 0..20 {
        let mut o = Options::fast(seed);
        o.sentinels = 5;
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        // {n1, n2} | {n3, n4, n5}: two sentinels and the master against three and the replicas.
        sim.fault(Fault::Partition(vec![
            Endpoint::S(0),
            Endpoint::S(1),
            Endpoint::N(0),
        ]));
        sim.run_for(ms(3000));
        sim.result().unwrap_or_else(|e| panic!("{e}"));
        for s in 2..5 {
            let core = sim.sentinels[s].core.as_ref().expect("majority side is up");
            let (_, m) = core.config_of(&sim.groups[0]).expect("group is watched");
            assert_ne!(
                m,
                crate::core::NodeId(0),
                "seed {seed}: majority kept the isolated master"
            );
        }
        assert!(
            !sim.nodes[0].accepts_writes(sim.now),
            "seed {seed}: isolated master still writable"
        );
        sim.heal_all();
        sim.run_for(ms(3000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn sentinel_restarting_mid_election_keeps_its_vote() {
    for seed in 0..30 {
        let mut o = Options::fast(seed);
        o.sentinels = 5;
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        sim.fault(Fault::CrashNode(0));
        // ODOWN comes about 600 ms later; crash two sentinels in the middle of the election.
        let at = ms(1600) + ms(seed % 10 * 15);
        sim.run_until(at);
        sim.fault(Fault::CrashSentinel((seed % 5) as usize));
        sim.fault(Fault::CrashSentinel(((seed + 1) % 5) as usize));
        sim.run_for(ms(200));
        sim.fault(Fault::RestartSentinel((seed % 5) as usize));
        sim.fault(Fault::RestartSentinel(((seed + 1) % 5) as usize));
        sim.run_for(ms(4000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn old_master_returning_after_failover_becomes_a_replica() {
    use crate::core::Event;
    for seed in 0..20 {
        let mut o = Options::fast(seed);
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(2000));
        sim.fault(Fault::RestartNode {
            node: 0,
            empty: false,
        });
        sim.run_for(ms(3000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let converted = events_of(
            &sim,
            |e| matches!(e, Event::ConvertedToReplica { node, .. } if node.0 == 0),
        );
        assert!(
            !converted.is_empty(),
            "seed {seed}: old master never converted"
        );
        assert_ne!(sim.nodes[0].role, super::node::Role::Master, "seed {seed}");
    }
}

#[test]
fn master_restarted_empty_is_down_and_never_a_sync_source() {
    use crate::core::Event;
    for seed in 0..20 {
        let mut o = Options::fast(seed);
        o.sync_replicas = 1;
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(1000));
        // Back within `down_after`: a naive sentinel sees a healthy (empty) master.
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(50));
        sim.fault(Fault::RestartNode {
            node: 0,
            empty: true,
        });
        sim.run_for(ms(4000));
        if std::env::var("DUMP").is_ok() {
            dump(&sim);
        }
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let restarted = events_of(&sim, |e| matches!(e, Event::RestartedEmpty { .. }));
        assert!(
            !restarted.is_empty(),
            "seed {seed}: empty restart not noticed"
        );
        let (_, m) = sim
            .agreed_config(0)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_ne!(m.0, 0, "seed {seed}: the empty master kept its role");
        assert!(
            !sim.check
                .acked
                .get(&sim.groups[0])
                .is_none_or(|a| a.is_empty()),
            "seed {seed}: no write was acknowledged"
        );
    }
}

#[test]
fn hundred_groups_failing_at_once_are_all_promoted() {
    let mut o = Options::fast(1);
    o.groups = 100;
    o.replicas = 1;
    o.writes = false;
    o.record = std::env::var("DUMP").is_ok();
    let mut sim = Sim::new(o);
    sim.run_until(ms(1000));
    for g in 0..100 {
        sim.fault(Fault::CrashNode(g * 2));
    }
    sim.run_for(ms(3000));
    if std::env::var("DUMP").is_ok() {
        dump(&sim);
    }
    sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
    for g in 0..100 {
        let (_, m) = sim.agreed_config(g).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.0 as usize, g * 2 + 1, "group {g}");
    }
}

// ---- Figures: `cargo test -p vigil-sentinel --release -- --ignored --nocapture figures`. ----

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "n=0".to_string();
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        v.len(),
        p(0.5),
        p(0.99),
        v[v.len() - 1]
    )
}

#[test]
#[ignore = "figures: run with --release -- --ignored --nocapture figures"]
fn figures() {
    use crate::core::Event;
    let mut to_promotion = Vec::new();
    let mut to_everyone = Vec::new();
    for seed in 0..1000 {
        let mut o = Options::lan(seed);
        o.sentinels = 5;
        o.record = true;
        let mut sim = Sim::new(o);
        let crash = ms(2000) + Duration::from_micros(seed * 997 % 100_000);
        sim.run_until(crash);
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(4000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let promoted = events_of(&sim, |e| matches!(e, Event::Promoted { .. }));
        let (t, _) = promoted
            .first()
            .unwrap_or_else(|| panic!("seed {seed}: no promotion"));
        to_promotion.push(*t - crash);
        let switched = events_of(&sim, |e| matches!(e, Event::SwitchMaster { .. }));
        let last = switched
            .iter()
            .map(|(t, _)| *t)
            .max()
            .expect("switch events exist");
        to_everyone.push(last - crash);
    }
    let mut split_recovery = Vec::new();
    for seed in 0..1000 {
        let mut o = Options::lan(seed);
        o.sentinels = 4;
        o.core.election_jitter = Duration::ZERO;
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(2000));
        sim.fault(Fault::CrashNode(0));
        sim.run_for(ms(4000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        let split = events_of(&sim, |e| matches!(e, Event::SplitVote { .. }));
        let elected = events_of(&sim, |e| matches!(e, Event::Elected { .. }));
        if let (Some((s, _)), Some((e, _))) = (split.first(), elected.last()) {
            split_recovery.push(e.saturating_sub(*s));
        }
    }
    let mut hundred = Vec::new();
    for seed in 0..10 {
        let mut o = Options::lan(seed);
        o.sentinels = 5;
        o.groups = 100;
        o.replicas = 2;
        o.writes = false;
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(2000));
        for g in 0..100 {
            sim.fault(Fault::CrashNode(g * 3));
        }
        sim.run_for(ms(5000));
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
        // The first promotion of each group (a preempted leader may promote again later).
        let mut first: std::collections::BTreeMap<crate::core::GroupName, Duration> =
            std::collections::BTreeMap::new();
        for (t, _, e) in &sim.events {
            if let Event::Promoted { group, .. } = e {
                first.entry(group.clone()).or_insert(*t);
            }
        }
        assert_eq!(first.len(), 100, "seed {seed}");
        let last = first.values().max().copied().expect("100 promotions");
        hundred.push(last - ms(2000));
    }
    eprintln!(
        "master down -> promotion (down_after 1 s, 5 sentinels): {}",
        percentiles(to_promotion)
    );
    eprintln!(
        "master down -> config known to every sentinel: {}",
        percentiles(to_everyone)
    );
    eprintln!(
        "split vote -> leader elected (4 sentinels, no jitter): {}",
        percentiles(split_recovery)
    );
    // Voter-set changes under write load: a dead sentinel forgotten, a new one admitted.
    let (mut forget, mut join) = (Vec::new(), Vec::new());
    for seed in 0..200 {
        let mut o = Options::lan(seed);
        o.sentinels = 5;
        o.spares = 1;
        o.record = true;
        let mut sim = Sim::new(o);
        sim.run_until(ms(2000));
        sim.fault(Fault::KillSentinel(4));
        let asked = sim.now;
        sim.fault(Fault::Forget { at: 0, victim: 4 });
        sim.run_for(ms(3000));
        let (t, _) = *events_of(&sim, |e| matches!(e, Event::MembershipConfirmed { .. }))
            .first()
            .unwrap_or_else(|| panic!("seed {seed}: forget not confirmed"));
        forget.push(t - asked);
        let started = sim.now;
        sim.fault(Fault::Join(5));
        sim.run_for(ms(3000));
        let admitted = events_of(
            &sim,
            |e| matches!(e, Event::MembersChanged { voters, .. } if voters.contains(&crate::core::SentinelId(5))),
        );
        let (t, _) = *admitted
            .first()
            .unwrap_or_else(|| panic!("seed {seed}: spare not admitted"));
        join.push(t - started);
        sim.check_converged().unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!(
        "100 groups down at once -> all promoted (5 sentinels): {}",
        percentiles(hundred)
    );
    eprintln!(
        "forget of a dead sentinel -> confirmed (5 sentinels, lease 800 ms): {}",
        percentiles(forget)
    );
    eprintln!(
        "new sentinel starts -> admitted (4 voters): {}",
        percentiles(join)
    );
}

/// A spare's admission was decided from another voter's accepted value (its own proposer was
/// preempted) and the commit never reached it: every voter must recognise its incarnation
/// (carried with the value and the commit) and hand it the set, or it stays outside for good.
#[test]
fn a_joiner_that_missed_its_commit_is_admitted_by_any_voter() {
    assert_seeds_converge(&[(1_152_942, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// The master died while one sentinel was finishing an earlier failover and the other was
/// running for an operator's change: each ignored the ODOWN transition, being busy, and
/// nothing else started an election, so the group kept a dead master. A heartbeat now starts
/// one for any group still objectively down with nothing under way.
#[test]
fn a_group_left_objectively_down_while_sentinels_were_busy_is_failed_over() {
    assert_seeds_converge(&[(1_060_859, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// An operator's change voted for while a sentinel waited to retry an aborted failover (the
/// master restarted empty, so it stayed objectively down with no transition) used to cancel
/// that retry, and the group was left without a master for good; the retry is now put off,
/// never dropped.
#[test]
fn an_operators_change_does_not_cancel_a_pending_failover_retry() {
    assert_seeds_converge(&[(1_166_768, &[3, 4, 5, 6, 7, 8, 9])]);
}

/// Operators' changes injected into random runs (`Fault::AdminSet`, about a third of the
/// seeds): a change reported confirmed is in force on every sentinel once the faults healed
/// (a later leader carries it), and most changes are confirmed despite the faults.
#[test]
fn confirmed_operator_changes_survive_random_faults() {
    let (mut confirmed, mut failed) = (0, 0);
    for seed in 0..400 {
        let sim = match random_run_rec(seed, &[3, 5], Bugs::default(), true) {
            Ok(sim) => sim,
            Err(failed) => panic!("{}", failed.0),
        };
        let ok = sim
            .events
            .iter()
            .any(|(_, _, e)| matches!(e, crate::core::Event::AdminConfirmed { .. }));
        let refused = sim
            .events
            .iter()
            .any(|(_, _, e)| matches!(e, crate::core::Event::AdminFailed { .. }));
        if ok {
            confirmed += 1;
            let group = sim.groups[0].clone();
            for s in &sim.sentinels {
                let Some(core) = &s.core else { continue };
                let o = core.group_options(&group).expect("group 0 is monitored");
                assert_eq!(
                    o.parallel_syncs.get(),
                    2,
                    "seed {seed}: change lost on {}",
                    s.id
                );
            }
        } else if refused {
            failed += 1;
        }
    }
    eprintln!("operator changes over 400 seeds: {confirmed} confirmed, {failed} failed");
    assert!(
        confirmed >= 60,
        "only {confirmed} changes confirmed ({failed} failed)"
    );
    assert!(
        confirmed > failed * 3,
        "{confirmed} confirmed, {failed} failed"
    );
}

/// Voter-set changes injected into random runs (dead sentinels forgotten, spares joining,
/// about a third of the seeds): every confirmed forget holds on every voter once the faults
/// healed, every started spare was admitted, and most changes are decided despite the faults.
#[test]
fn voter_set_changes_survive_random_faults() {
    let (mut forgotten, mut failed, mut joined) = (0, 0, 0);
    for seed in 0..300 {
        let sim = match random_run_rec(seed, &[3, 5], Bugs::default(), true) {
            Ok(sim) => sim,
            Err(failed) => panic!("{}", failed.0),
        };
        let (_, voters) = sim
            .agreed_members()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for (_, _, e) in &sim.events {
            match e {
                crate::core::Event::MembershipConfirmed { .. } => forgotten += 1,
                crate::core::Event::MembershipFailed { .. } => failed += 1,
                _ => {}
            }
        }
        for s in &sim.sentinels {
            if s.gone {
                // Forgotten unless its forget failed (its sentinel was down, say).
                continue;
            }
            if s.core.is_some() {
                assert!(voters.contains(&s.id), "seed {seed}: {} not a voter", s.id);
                if s.id.0 as usize >= sim.opts.sentinels {
                    joined += 1;
                }
            }
        }
    }
    eprintln!(
        "voter-set changes over 300 seeds: {forgotten} forgets confirmed, {failed} failed, {joined} spares admitted"
    );
    assert!(forgotten >= 20, "only {forgotten} forgets confirmed");
    assert!(joined >= 20, "only {joined} spares admitted");
    assert!(
        forgotten > failed * 2,
        "{forgotten} confirmed, {failed} failed"
    );
}
