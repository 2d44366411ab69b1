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
    run(&mut scheduler, &mut seen, None);
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

fn run(
    scheduler: &mut SpeechScheduler<'_, B>,
    seen: &mut HashMap<JobId, Seen>,
    cancel: Option<(JobId, usize)>,
) {
    let mut step = 0;
    while !scheduler.is_idle() {
        if let Some((job, at)) = cancel
            && at == step
        {
            let partial = scheduler.cancel(job).unwrap();
            seen.get_mut(&job).unwrap().codes = Some(partial.codes());
        }
        scheduler
            .step(|event| match event {
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
            })
            .unwrap();
        assert!(scheduler.running() <= 2, "at most max_batch jobs run");
        step += 1;
        assert!(step < 2000, "the scheduler finishes");
    }
}

#[test]
fn every_job_speaks_as_alone_and_a_cancel_frees_its_slot() {
    let (model, dac) = fixtures();
    let jobs = jobs();
    let mut scheduler = SpeechScheduler::new(&model, &dac, 2, OPTIONS).unwrap();
    let ids: Vec<JobId> = jobs
        .iter()
        .map(|j| scheduler.submit(j.clone()).unwrap())
        .collect();
    assert_eq!((scheduler.jobs(), scheduler.queued()), (3, 3));
    let mut seen = HashMap::new();
    run(&mut scheduler, &mut seen, None);
    for (i, (job, id)) in jobs.iter().zip(&ids).enumerate() {
        let got = &seen[id];
        let (codes, samples) = solo(&model, &dac, job);
        assert!(!codes.is_empty(), "job {i}: solo codes");
        assert_eq!(got.codes.as_ref(), Some(&codes), "job {i}: codes");
        if job.stream {
            let diff = max_abs_diff(&got.samples, &samples);
            assert!(diff <= 1e-5, "job {i}: streamed audio differs by {diff}");
        } else {
            assert!(got.samples.is_empty(), "job {i}: not streamed");
        }
    }
    assert!(
        seen[&ids[0]].passes_started > 1,
        "the long script took several passes"
    );

    // Cancelling the long job mid-way: its output stops short, the others are unchanged.
    let mut scheduler = SpeechScheduler::new(&model, &dac, 2, OPTIONS).unwrap();
    let ids: Vec<JobId> = jobs
        .iter()
        .map(|j| scheduler.submit(j.clone()).unwrap())
        .collect();
    let mut cancelled = HashMap::new();
    run(&mut scheduler, &mut cancelled, Some((ids[0], 30)));
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
