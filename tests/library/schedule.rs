//! The speech scheduler on the fixture models: jobs of every kind (a long script in passes,
//! streamed; a short one decoded by the caller; one continuing a voice) share a continuous
//! batch with fewer slots than jobs, and each gets the codes and audio of its solo run; a
//! cancelled job frees its slot without touching the others.

use std::collections::HashMap;

use crate::common::{asset, max_abs_diff, sampled};
use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{
    DiaModel, GenerationConfig, LongFormOptions, LongFormRequest, ModelOptions, VoicePrompt,
};
use dia_burn::{JobId, SpeechEvent, SpeechJob, SpeechScheduler};

type B = burn_flex::Flex;

const OPTIONS: LongFormOptions = LongFormOptions {
    chunk_seconds: 3.0,
    context_seconds: 2.0,
};

fn config(temperature: f32, seed: u64) -> GenerationConfig {
    sampled(80, temperature, seed)
}

fn jobs() -> Vec<SpeechJob> {
    let voice = VoicePrompt {
        transcript: "[S2] Earlier words.".into(),
        codes: (0..8)
            .map(|t| (0..9).map(|c| ((t * 31 + c * 7) % 1024) as u32).collect())
            .collect(),
    };
    let job = |script: &str, voice: Option<VoicePrompt>, config, stream| SpeechJob {
        script: LongFormRequest {
            script: script.into(),
            voice,
        },
        config,
        stream,
    };
    vec![
        job(
            "[S1] Morning, you ok? [S2] Fine, and you? [S1] Tired (sighs). [S2] Rain all night.",
            None,
            config(1.0, 3),
            true,
        ),
        job("[S1] Short and plain.", None, config(0.0, 0), false),
        job(
            "[S2] Going on in that voice.",
            Some(voice),
            config(1.2, 9),
            true,
        ),
    ]
}

/// The tiny model and codec.
fn fixtures() -> (DiaModel<B>, Dac<B>) {
    let device = Default::default();
    let model = DiaModel::<B>::load(&asset("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let dac = Dac::<B>::load(asset("dac-tiny/weights.safetensors"), &device).unwrap();
    (model, dac)
}

/// A job's codes and streamed samples from a solo run (a scheduler of one slot, nothing else
/// submitted).
fn solo(model: &DiaModel<B>, dac: &Dac<B>, job: &SpeechJob) -> (Vec<Vec<u32>>, Vec<f32>) {
    let mut scheduler = SpeechScheduler::new(model, dac, 1, OPTIONS).unwrap();
    let id = scheduler.submit(SpeechJob {
        stream: true,
        ..job.clone()
    });
    let id = id.unwrap();
    let mut seen = HashMap::new();
    run(&mut scheduler, &mut seen, untouched);
    let seen = seen.remove(&id).unwrap();
    (seen.codes.unwrap(), seen.samples)
}

/// What the scheduler reported for each job.
#[derive(Default)]
struct Seen {
    samples: Vec<f32>,
    codes: Option<Vec<Vec<u32>>>,
    passes_started: usize,
}

/// Runs `scheduler` until idle; `before(scheduler, step)` may cancel or hold jobs before each
/// step and names a job held for it (which must report nothing in that step).
fn run(
    scheduler: &mut SpeechScheduler<'_, B>,
    seen: &mut HashMap<JobId, Seen>,
    mut before: impl FnMut(
        &mut SpeechScheduler<'_, B>,
        &mut HashMap<JobId, Seen>,
        usize,
    ) -> Option<JobId>,
) {
    let mut step = 0;
    while !scheduler.is_idle() {
        let held = before(scheduler, seen, step);
        scheduler
            .step(|event| {
                let job = match &event {
                    SpeechEvent::Started { job, .. }
                    | SpeechEvent::Audio { job, .. }
                    | SpeechEvent::Done { job, .. }
                    | SpeechEvent::Failed { job, .. } => *job,
                };
                assert_ne!(Some(job), held, "a held job reports nothing (step {step})");
                match event {
                    SpeechEvent::Started { job, .. } => {
                        seen.entry(job).or_default().passes_started += 1
                    }
                    SpeechEvent::Audio { job, samples } => seen
                        .entry(job)
                        .or_default()
                        .samples
                        .extend_from_slice(samples),
                    SpeechEvent::Done { job, output } => {
                        seen.entry(job).or_default().codes = Some(output.codes())
                    }
                    SpeechEvent::Failed { job, error } => panic!("{job:?} failed: {error}"),
                }
            })
            .unwrap();
        assert!(scheduler.running() <= 2, "at most max_batch jobs run");
        step += 1;
        assert!(step < 4000, "the scheduler finishes");
    }
}

/// A scheduler of two slots with every job of [`jobs`] submitted, and their ids.
fn submitted<'a>(
    model: &'a DiaModel<B>,
    dac: &'a Dac<B>,
    jobs: &[SpeechJob],
) -> (SpeechScheduler<'a, B>, Vec<JobId>) {
    let mut scheduler = SpeechScheduler::new(model, dac, 2, OPTIONS).unwrap();
    let ids = jobs
        .iter()
        .map(|j| scheduler.submit(j.clone()).unwrap())
        .collect();
    (scheduler, ids)
}

/// Each job's codes (and a streamed job's audio) in `seen` are those of its solo run.
fn assert_as_alone(
    model: &DiaModel<B>,
    dac: &Dac<B>,
    jobs: &[SpeechJob],
    ids: &[JobId],
    seen: &HashMap<JobId, Seen>,
) {
    for (i, (job, id)) in jobs.iter().zip(ids).enumerate() {
        let got = &seen[id];
        let (codes, samples) = solo(model, dac, job);
        assert!(!codes.is_empty(), "job {i}: solo codes");
        assert_eq!(got.codes.as_ref(), Some(&codes), "job {i}: codes");
        if job.stream {
            let diff = max_abs_diff(&got.samples, &samples);
            assert!(diff <= 1e-5, "job {i}: streamed audio differs by {diff}");
        } else {
            assert!(got.samples.is_empty(), "job {i}: not streamed");
        }
    }
}

/// Nothing done before a step.
fn untouched(
    _: &mut SpeechScheduler<'_, B>,
    _: &mut HashMap<JobId, Seen>,
    _: usize,
) -> Option<JobId> {
    None
}

#[test]
fn every_job_speaks_as_alone_and_a_cancel_frees_its_slot() {
    let (model, dac) = fixtures();
    let jobs = jobs();
    let (mut scheduler, ids) = submitted(&model, &dac, &jobs);
    assert_eq!((scheduler.jobs(), scheduler.queued()), (3, 3));
    let mut seen = HashMap::new();
    run(&mut scheduler, &mut seen, untouched);
    assert_as_alone(&model, &dac, &jobs, &ids, &seen);
    assert!(
        seen[&ids[0]].passes_started > 1,
        "the long script took several passes"
    );

    // Cancelling the long job mid-way: its output stops short, the others are unchanged.
    let (mut scheduler, ids) = submitted(&model, &dac, &jobs);
    let mut cancelled = HashMap::new();
    run(&mut scheduler, &mut cancelled, |scheduler, seen, step| {
        if step == 30 {
            let partial = scheduler.cancel(ids[0]).unwrap();
            seen.entry(ids[0]).or_default().codes = Some(partial.codes());
        }
        None
    });
    assert!(scheduler.cancel(ids[0]).is_none(), "gone");
    let full = seen[&ids[0]].codes.as_ref().unwrap();
    let cut = cancelled[&ids[0]].codes.as_ref().unwrap();
    assert!(
        cut.len() < full.len() && cut[..] == full[..cut.len()],
        "a prefix"
    );
    for id in &ids[1..] {
        assert_eq!(cancelled[id].codes, seen[id].codes, "{id:?} unchanged");
    }
}

/// A streamed long script held two steps in three (as a server holds a listener that falls
/// behind), in mid-pass and between passes, speaks exactly as alone, and so do the jobs beside
/// it, which go on while it is held.
#[test]
fn a_held_job_speaks_as_alone() {
    let (model, dac) = fixtures();
    let jobs = jobs();
    let (mut scheduler, ids) = submitted(&model, &dac, &jobs);
    let mut seen = HashMap::new();
    let mut held_steps = 0;
    run(&mut scheduler, &mut seen, |scheduler, _, step| {
        let held = step >= 10 && step % 3 != 0;
        if !scheduler.hold(ids[0], held) {
            return None;
        }
        assert_eq!(scheduler.held(), usize::from(held));
        held_steps += usize::from(held);
        held.then_some(ids[0])
    });
    assert!(held_steps > 100, "held for {held_steps} steps");
    assert!(seen[&ids[0]].passes_started > 1, "held across passes");
    assert_as_alone(&model, &dac, &jobs, &ids, &seen);
    assert!(!scheduler.hold(ids[0], true), "a finished job is unknown");
}

#[test]
fn bad_jobs_are_refused_at_submission() {
    let (model, dac) = fixtures();
    assert!(
        SpeechScheduler::new(&model, &dac, 0, OPTIONS).is_err(),
        "no slot"
    );
    let bad_options = LongFormOptions {
        chunk_seconds: 0.0,
        ..OPTIONS
    };
    assert!(SpeechScheduler::new(&model, &dac, 2, bad_options).is_err());
    let mut scheduler = SpeechScheduler::new(&model, &dac, 2, OPTIONS).unwrap();
    let mut job = jobs().remove(1);
    job.script.script = "   ".into();
    assert!(scheduler.submit(job.clone()).is_err(), "nothing to say");
    job.script.script = "[S1] Fine.".into();
    job.config.max_tokens = Some(100_000);
    assert!(scheduler.submit(job).is_err(), "over the model's length");
    assert!(scheduler.is_idle(), "refused jobs take no place");
}
